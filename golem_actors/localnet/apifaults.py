"""A fault-injecting HTTP proxy between a requestor and yagna's REST API (testing only).

    with ApiFaultProxy("http://127.0.0.1:7465", FaultPlan(rate=0.1, seed=7)) as proxy:
        config = ApiConfig(app_key=key, api_url=proxy.url)   # the requestor talks to the proxy

Each request, with probability ``rate`` (or a per-path rate: the first ``paths`` pattern that
matches), suffers one fault drawn from ``kinds`` with a seeded random generator:

* ``error``      503 at once, nothing forwarded (yagna never saw it);
* ``error_after`` forwarded, then 500 instead of yagna's answer (it happened; we say it failed);
* ``reset``      the connection reset before anything is forwarded;
* ``lost``       forwarded, then the connection reset (it happened; the answer is lost);
* ``timeout``    forwarded, then no answer for ``hang_s`` and a closed connection;
* ``malformed``  forwarded, then a 200 whose body is not JSON;
* ``slow``       forwarded after ``slow_s`` (a slow answer, otherwise correct).

The ``after``/``lost``/``timeout``/``malformed`` kinds are the dangerous ones: the action took
effect, the requestor cannot know. It binds 127.0.0.1. It never logs headers (the app key is one).
"""

from __future__ import annotations

import http.client
import logging
import random
import re
import socket
import struct
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

from golem_actors import arguments

__all__ = ["KINDS", "ApiFaultProxy", "FaultPlan"]

log = logging.getLogger(__name__)

KINDS = ("error", "error_after", "reset", "lost", "timeout", "malformed", "slow")
_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host"})


@dataclass(frozen=True)
class FaultPlan:
    rate: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = KINDS
    paths: tuple[tuple[str, float], ...] = ()  # (regex on the path, rate) overrides, first wins
    hang_s: float = 6.0
    slow_s: float = 1.0

    def __post_init__(self) -> None:
        for rate in (self.rate, *(r for _, r in self.paths)):
            arguments.number("a fault rate (a probability)", rate, ge=0, le=1)
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be some of {KINDS}, got {self.kinds}")
        arguments.number("hang_s", self.hang_s, ge=0)
        arguments.number("slow_s", self.slow_s, ge=0)
        for pattern, _ in self.paths:
            re.compile(pattern)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that drops its connection (a requestor stopping, SIGKILLed) is routine
        here: a debug line, not a traceback on stderr."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("a client of the proxy dropped its connection: %s", sys.exc_info()[1])
            return
        super().handle_error(request, client_address)


@dataclass
class _Stats:
    requests: int = 0
    faults: Counter[str] = field(default_factory=Counter)


class ApiFaultProxy:
    """The proxy server; ``plan`` may be replaced while it runs (``set_plan``)."""

    def __init__(self, upstream: str, plan: FaultPlan | None = None, *, port: int = 0) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self.upstream = (parts.hostname, parts.port or 80)
        self.stats = _Stats()
        self._plan = plan or FaultPlan()
        self._random = random.Random(self._plan.seed)  # noqa: S311 - test faults, not crypto
        self._lock = threading.Lock()
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = _Server(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="api-fault-proxy", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def set_plan(self, plan: FaultPlan) -> None:
        with self._lock:
            self._plan = plan
            self._random = random.Random(plan.seed)  # noqa: S311

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _draw(self, path: str) -> tuple[str | None, FaultPlan]:
        with self._lock:
            plan = self._plan
            self.stats.requests += 1
            rate = next((r for p, r in plan.paths if re.search(p, path)), plan.rate)
            if rate <= 0 or self._random.random() >= rate:
                return None, plan
            kind = self._random.choice(plan.kinds)
            self.stats.faults[kind] += 1
            return kind, plan


class _Handler(BaseHTTPRequestHandler):
    owner: ApiFaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Silent: the base logs request lines to stderr; nothing here may log headers."""

    def do_GET(self) -> None:
        self._proxy()

    def do_POST(self) -> None:
        self._proxy()

    def do_PUT(self) -> None:
        self._proxy()

    def do_DELETE(self) -> None:
        self._proxy()

    def _proxy(self) -> None:
        try:
            self._relay()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up on us (its own timeout)

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        kind, plan = self.owner._draw(self.path.split("?", 1)[0])  # noqa: SLF001
        if kind == "error":
            self._answer(503, b'{"message": "injected: service unavailable"}')
            return
        if kind == "reset":
            self._reset()
            return
        if kind == "slow":
            time.sleep(plan.slow_s)
        try:
            status, headers, answer = self._forward(body)
        except OSError as exc:
            self._answer(502, f'{{"message": "proxy: upstream {type(exc).__name__}"}}'.encode())
            return
        if kind == "error_after":
            self._answer(500, b'{"message": "injected: internal error after the fact"}')
        elif kind == "lost":
            self._reset()
        elif kind == "timeout":
            time.sleep(plan.hang_s)
            self._reset()
        elif kind == "malformed":
            self._answer(200, b'{"this is": not json')
        else:
            self._answer(status, answer, headers)

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        host, port = self.owner.upstream
        conn = http.client.HTTPConnection(host, port, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP]
            return response.status, kept, data
        finally:
            conn.close()

    def _answer(
        self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None
    ) -> None:
        self.send_response(status)
        sent = set()
        for key, value in headers or [("Content-Type", "application/json")]:
            if key.lower() != "content-length":
                self.send_header(key, value)
                sent.add(key.lower())
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        """Close with RST (SO_LINGER 0), as a crashed peer or a dropped connection does."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
