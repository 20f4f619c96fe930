"""Typed errors for yagna REST calls.

Every error carries the HTTP method, the path (never the full URL with a query that could hold
secrets, and never the app key), the status and yagna's own message, so a log line or a traceback
says exactly which call failed and why.
"""

from __future__ import annotations

from golem_actors.errors import GolemActorsError

__all__ = [
    "YagnaBadRequestError",
    "YagnaConflictError",
    "YagnaConnectionError",
    "YagnaError",
    "YagnaGoneError",
    "YagnaNotFoundError",
    "YagnaResponseError",
    "YagnaServerError",
    "YagnaTimeoutError",
    "YagnaUnauthorizedError",
    "error_for_status",
]


class YagnaError(GolemActorsError):
    """Base of every error raised by the yagna client."""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        status: int | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        where = f"{method} {path}".strip()
        head = f"{where} -> {status}" if status is not None else where
        super().__init__(f"{head}: {message}" if head else message)


class YagnaConnectionError(YagnaError):
    """yagna could not be reached (refused, reset, DNS) or the connection broke mid-call."""


class YagnaTimeoutError(YagnaError):
    """The call timed out: yagna answered 408, or our read/connect timeout expired."""


class YagnaResponseError(YagnaError):
    """yagna answered with an error status or a body we could not parse."""


class YagnaBadRequestError(YagnaResponseError):
    """400: yagna rejected the request (malformed id, body or query)."""


class YagnaUnauthorizedError(YagnaResponseError):
    """401/403: missing or invalid app key, or the key may not do this."""


class YagnaNotFoundError(YagnaResponseError):
    """404: the object (demand, agreement, activity, batch, ...) does not exist."""


class YagnaGoneError(YagnaNotFoundError):
    """410: the object existed but is gone (e.g. an agreement already terminated)."""


class YagnaConflictError(YagnaResponseError):
    """409: the call conflicts with the object's current state."""


class YagnaServerError(YagnaResponseError):
    """5xx: yagna failed internally (or a provider behind it did)."""


_BY_STATUS: dict[int, type[YagnaError]] = {
    400: YagnaBadRequestError,
    401: YagnaUnauthorizedError,
    403: YagnaUnauthorizedError,
    404: YagnaNotFoundError,
    408: YagnaTimeoutError,
    409: YagnaConflictError,
    410: YagnaGoneError,
}


def error_for_status(status: int, message: str, *, method: str, path: str) -> YagnaError:
    """Map an HTTP status from yagna to the most specific error class."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = YagnaServerError if status >= 500 else YagnaResponseError  # noqa: PLR2004
    return cls(message, method=method, path=path, status=status)
