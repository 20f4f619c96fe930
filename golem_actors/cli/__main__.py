"""``python -m golem_actors.cli``: the console script without its installed wrapper."""

import sys

from golem_actors.cli import main

sys.exit(main())
