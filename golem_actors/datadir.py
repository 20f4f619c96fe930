"""Where golem-actors keeps its files unless told otherwise.

One directory serves localnet (its daemon, providers and images) and the CLI's run journals
(``runs/``), so a run and the network it ran on are found together. It lives outside the localnet
package because a run on your own yagna, with no localnet installed, keeps its journal there too.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_data_dir"]


def default_data_dir() -> Path:
    """``$XDG_CACHE_HOME/golem-actors/localnet`` (``~/.cache/...``): reused between runs."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "golem-actors" / "localnet"
