"""What can go wrong on the bus, from the wire up to a callee's refusal.

Apart from the codec and the client because both raise them (a frame too large to be real is a
lost connection) and because a service implementation raises ``ReplyError`` without needing
either.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CONFLICT",
    "GsbCallError",
    "GsbConnectionError",
    "GsbError",
    "GsbRegisterError",
    "GsbTimeoutError",
    "ReplyError",
]

CONFLICT = 409  # the Register reply code when another connection owns the address


class GsbError(Exception):
    code: int | None = None  # the GSB reply code, when the router or a callee gave one


class GsbConnectionError(GsbError):
    pass


class GsbTimeoutError(GsbError, TimeoutError):
    pass


class GsbCallError(GsbError):
    """A non-zero ``CallReply`` code: the router (400 no endpoint, 500 lost connection) or the
    callee (500 bad content) refused the call; application errors come as ``{"Err": ..}``."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"GSB call failed with code {code}: {text}")
        self.code = code
        self.text = text


class GsbRegisterError(GsbError):
    """A non-zero Register/Unregister reply: 409 = another connection owns the address."""

    def __init__(self, kind: str, address: str, code: int, message: str) -> None:
        what = "owned by another connection" if code == CONFLICT else "refused"
        super().__init__(f"GSB {kind} {address}: {what} (code {code}) {message}".rstrip())
        self.code = code


class ReplyError(Exception):
    """Raise from a handler to answer ``{"Err": error}`` (code 0), as yagna services do."""

    def __init__(self, error: Any) -> None:
        super().__init__(repr(error))
        self.error = error
