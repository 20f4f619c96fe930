"""The one root of every error golem_actors raises on purpose.

``except GolemActorsError`` catches them all, from the yagna client to localnet (as httpx's
``HTTPError``). Each class keeps the builtin it subclassed before the root existed (``ValueError``,
``RuntimeError``, ``TimeoutError`` ...) as a second base, so code that caught those still does.
This module imports nothing: every layer, the yagna client and localnet included, may use it.
"""

from __future__ import annotations

__all__ = ["ArgumentError", "GolemActorsError"]


class GolemActorsError(Exception):
    """Base of every error raised by golem_actors."""


class ArgumentError(GolemActorsError, ValueError):
    """A bad argument or setting; the message names it, the bound it breaks and the value given.

    Raised by :mod:`golem_actors.arguments`; a ``ValueError``, as the checks it replaced raised.
    """
