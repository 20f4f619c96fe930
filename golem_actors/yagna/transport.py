"""HTTP to yagna: one ``requests.Session``, timeouts on every call, safe retries, typed errors.

Every call has a connect and a read timeout. A long-poll passes its ``timeout`` to yagna and reads
for a little longer than that, so the server, not the socket, ends the poll.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Self

import requests
import requests.adapters
import urllib3.exceptions

from golem_actors import arguments
from golem_actors.yagna.config import ApiConfig
from golem_actors.yagna.errors import (
    YagnaConnectionError,
    YagnaError,
    YagnaResponseError,
    YagnaTimeoutError,
    error_for_status,
)
from golem_actors.yagna.retry import Failure, RetryPolicy

__all__ = ["MAX_EVENTS", "CallRecord", "Cancel", "Transport", "check_max_events", "redact"]

log = logging.getLogger("golem_actors.yagna.api")

_NO_BODY: Any = object()

#: Extra read time beyond a long-poll's own ``timeout``, so yagna answers before we give up.
LONG_POLL_MARGIN = 5.0
_MAX_MESSAGE = 500


#: yagna rejects an event poll asking for more (400 "should be between 1 and 100").
MAX_EVENTS = 100


def check_max_events(value: int) -> int:
    """Validate an event poll's ``maxEvents`` before yagna rejects it."""
    return arguments.whole("max_events", value, ge=1, le=MAX_EVENTS)


_WHOLE_TOKEN_BELOW = 8


def redact(text: str, secret: str) -> str:
    """Remove a secret from text meant for logs or exceptions.

    A short secret (a test key like ``x``) is removed only where it stands as a whole token, so
    that it does not eat every such letter of a message; real keys are removed wherever they are.
    """
    if not secret:
        return text
    if len(secret) >= _WHOLE_TOKEN_BELOW:
        return text.replace(secret, "<redacted>")
    pattern = rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])"
    return re.sub(pattern, "<redacted>", text)


@dataclass(frozen=True)
class CallRecord:
    """One finished yagna call, for logs and metrics. Holds no secrets."""

    api: str
    method: str
    path: str
    status: int | None
    outcome: str  # "ok", "error" (an error status) or "failed" (no answer)
    duration: float
    attempt: int


def _message_of(response: requests.Response) -> str:
    """yagna's error text: ``message``, problem-JSON ``detail``/``internalError``, or raw text.

    Untruncated: callers redact secrets first, so a cut never leaves half a key behind.
    """
    try:
        body = response.json()
    except ValueError:
        return response.text or response.reason or ""
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("message", "detail", "internalError") if body.get(k)]
        if parts:
            return " | ".join(parts)
    if isinstance(body, str):
        return body
    return response.text


class Cancel:
    """Ends a streamed read from another thread: sets a flag and shuts the socket's reading
    side, so a read blocked on a silent stream returns at once instead of at its timeout."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._closers: list[Callable[[], object]] = []

    def set(self) -> None:
        with self._lock:
            self._set = True
            closers, self._closers = self._closers, []
        for closer in closers:
            with contextlib.suppress(Exception):  # already closed, released: nothing to end
                closer()

    def is_set(self) -> bool:
        return self._set

    def on_cancel(self, closer: Callable[[], object]) -> None:
        """Call ``closer`` when cancelled (at once if it already is)."""
        with self._lock:
            if not self._set:
                self._closers.append(closer)
                return
        with contextlib.suppress(Exception):
            closer()


class Transport:
    """Sends requests to one yagna; the API modules build on it."""

    def __init__(
        self,
        config: ApiConfig,
        *,
        session: requests.Session | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pool_maxsize: int = 64,
    ) -> None:
        self.config = config
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        if session is None:
            session = requests.Session()
            # One pooled connection per concurrent call: long-polls hold theirs for the whole wait.
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self._session = session
        # Proxies from the environment must never see our app key; yagna is local or explicit.
        self._session.trust_env = False
        self._session.headers["Authorization"] = f"Bearer {config.app_key}"
        self.observers: list[Callable[[CallRecord], None]] = []

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(
        self,
        api: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = _NO_BODY,
        poll_timeout: float | None = None,
        read_timeout: float | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Call ``method path`` on ``api`` and return the decoded JSON body (``None`` if empty).

        ``poll_timeout`` is a long-poll's server-side timeout in seconds: it is sent as the
        ``timeout`` query parameter and the read timeout is set above it. ``idempotent`` defaults to
        True for GET/PUT/DELETE and False for POST.
        """
        url = self.config.base_url(api) + path
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        read = read_timeout if read_timeout is not None else self.read_timeout
        if poll_timeout is not None:
            query["timeout"] = _query_value(poll_timeout)
            read = max(read, poll_timeout + LONG_POLL_MARGIN)
        if idempotent is None:
            idempotent = method in ("GET", "PUT", "DELETE", "HEAD")
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                response = self._session.request(
                    method,
                    url,
                    params=query,
                    json=None if json is _NO_BODY else json,
                    timeout=(self.connect_timeout, read),
                )
            except requests.RequestException as exc:
                failure, error = self._classify(exc, method, path)
                self._notify(api, method, path, None, "failed", started, attempt)
                if self.retry.should_retry(attempt, failure, idempotent=idempotent):
                    self._sleep(self.retry.delay(attempt))
                    continue
                raise error from None
            status = response.status_code
            if status < 400:  # noqa: PLR2004
                self._notify(api, method, path, status, "ok", started, attempt)
                try:
                    return self._decode(response, method, path)
                except YagnaResponseError:
                    # A garbled answer (a proxy, a cut body) to a read: asking again is safe.
                    if self.retry.should_retry(attempt, Failure.BROKEN, idempotent=idempotent):
                        self._sleep(self.retry.delay(attempt))
                        continue
                    raise
            self._notify(api, method, path, status, "error", started, attempt)
            if self.retry.should_retry(
                attempt, Failure.STATUS, idempotent=idempotent, status=status
            ):
                self._sleep(self.retry.delay(attempt))
                continue
            message = redact(_message_of(response), self.config.app_key)[:_MAX_MESSAGE]
            raise error_for_status(status, message, method=method, path=path)

    @contextlib.contextmanager
    def stream(
        self,
        api: str,
        path: str,
        *,
        read_timeout: float,
        accept: str = "text/event-stream",
        cancel: Cancel | None = None,
    ) -> Iterator[Iterator[bytes]]:
        """``GET path`` as a stream: yields an iterator of its lines as they arrive.

        ``read_timeout`` bounds each silence, not the whole stream. Never retried (a stream
        replayed from a second connection could repeat or miss events: the caller decides).
        A ``cancel`` set from another thread ends the reading with ``YagnaConnectionError``.
        """
        url = self.config.base_url(api) + path
        started = time.monotonic()
        try:
            response = self._session.get(
                url,
                headers={"Accept": accept},
                stream=True,
                timeout=(self.connect_timeout, read_timeout),
            )
        except requests.RequestException as exc:
            _, error = self._classify(exc, "GET", path)
            self._notify(api, "GET", path, None, "failed", started, 1)
            raise error from None
        with response:
            status = response.status_code
            if status >= 400:  # noqa: PLR2004
                self._notify(api, "GET", path, status, "error", started, 1)
                message = redact(_message_of(response), self.config.app_key)[:_MAX_MESSAGE]
                raise error_for_status(status, message, method="GET", path=path)
            self._notify(api, "GET", path, status, "ok", started, 1)
            if cancel is not None and hasattr(response.raw, "shutdown"):
                cancel.on_cancel(response.raw.shutdown)
            yield self._lines(response, path)

    def _lines(self, response: requests.Response, path: str) -> Iterator[bytes]:
        raw = response.raw
        chunks: Iterator[bytes]
        if getattr(raw, "chunked", False):  # yagna's: each chunk as it comes
            chunks = raw.read_chunked(decode_content=True)
        elif hasattr(raw, "read1"):  # what has arrived, never waiting for a whole buffer
            chunks = iter(lambda: raw.read1(65536), b"")
        else:  # a body already read (a test double)
            chunks = iter([response.content])
        pending = b""
        try:
            for chunk in chunks:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                yield from lines
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            reason = redact(f"{type(exc).__name__}: {exc}", self.config.app_key)[:_MAX_MESSAGE]
            timed_out = isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError)
            kind = YagnaTimeoutError if timed_out else YagnaConnectionError
            raise kind(f"the stream broke: {reason}", method="GET", path=path) from None

    def _classify(
        self, exc: requests.RequestException, method: str, path: str
    ) -> tuple[Failure, YagnaError]:
        # Never str(exc) the request itself: keep only the exception type and the reason text.
        reason = redact(f"{type(exc).__name__}: {exc}", self.config.app_key)[:_MAX_MESSAGE]
        if isinstance(exc, requests.ConnectTimeout):
            return Failure.CONNECT, YagnaTimeoutError(reason, method=method, path=path)
        if isinstance(exc, requests.ReadTimeout):
            return Failure.READ_TIMEOUT, YagnaTimeoutError(reason, method=method, path=path)
        if isinstance(exc, requests.ConnectionError) and _never_connected(exc):
            return Failure.CONNECT, YagnaConnectionError(reason, method=method, path=path)
        return Failure.BROKEN, YagnaConnectionError(reason, method=method, path=path)

    def _decode(self, response: requests.Response, method: str, path: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            text = redact(response.text, self.config.app_key)[:200]
            raise YagnaResponseError(
                f"malformed JSON in a {response.status_code} answer: {text!r}",
                method=method,
                path=path,
                status=response.status_code,
            ) from None

    def _notify(  # noqa: PLR0917 - a private recorder called from three places
        self,
        api: str,
        method: str,
        path: str,
        status: int | None,
        outcome: str,
        started: float,
        attempt: int,
    ) -> None:
        record = CallRecord(api, method, path, status, outcome, time.monotonic() - started, attempt)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s %s -> %s in %.1f ms",
                api,
                method,
                path,
                status if status is not None else outcome,
                record.duration * 1000,
            )
        for observer in self.observers:
            observer(record)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when the TCP connection was never established, so nothing reached yagna."""
    text = str(exc)
    markers = (
        "Connection refused",
        "NewConnectionError",
        "Failed to establish",
        "Name or service",
        "NameResolutionError",
        "Failed to resolve",
    )
    return any(marker in text for marker in markers)
