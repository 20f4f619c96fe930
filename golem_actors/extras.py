"""Parts of golem-actors that need a pip extra, and the error that names the one to install.

``pip install golem-actors`` is the runtime for your own yagna; ``golem-actors[localnet]`` adds
what localnet needs (the ``golem-node`` wheel with yagna, protobuf for yagna's
native bus, psutil). A part that needs an extra calls ``require_extra`` before its imports, so a
missing module is reported as the extra to install rather than as a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from golem_actors.errors import GolemActorsError

__all__ = ["MissingExtraError", "install_hint", "require_extra"]


class MissingExtraError(GolemActorsError, ImportError):
    """A part of golem-actors needs an extra that is not installed; the message says which."""


def install_hint(extra: str) -> str:
    """The command that installs ``extra``, quoted for a shell."""
    return f"pip install 'golem-actors[{extra}]'"


def require_extra(extra: str, modules: Sequence[str], *, part: str) -> None:
    """Raise ``MissingExtraError`` naming ``extra`` if any of ``modules`` cannot be imported."""
    missing = [name for name in modules if not _importable(name)]
    if missing:
        raise MissingExtraError(
            f"{part} needs the [{extra}] extra, which is not installed (missing: "
            f"{', '.join(missing)}): {install_hint(extra)}",
            name=missing[0],
        )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # its parent package is missing, or a None in sys.modules
        return False
