"""localnet: a local Golem network — a real yagna plus provider nodes written in Python.

It needs the ``[localnet]`` extra (``pip install 'golem-actors[localnet]'``): importing any part of
it without the extra raises ``MissingExtraError`` naming it. ``LocalNet`` is exported here,
loaded on first use so the provider processes that import this package do not pay for it (typed
code imports it from ``localnet.network``: a type-checking import here would close a circle).
"""

from __future__ import annotations

import importlib
from typing import Any

from golem_actors.extras import require_extra

__all__ = ["LocalNet"]

# The Python modules of the extra; its yagna binary is looked for when a node starts (find_yagna).
require_extra("localnet", ("google.protobuf", "psutil"), part="localnet")


def __getattr__(name: str) -> Any:
    if name == "LocalNet":
        return importlib.import_module("golem_actors.localnet.network").LocalNet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
