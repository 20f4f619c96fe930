"""A native client for yagna's service bus (GSB): serve addresses, make calls, survive restarts.

localnet's Python exe-units and providers must serve ``/public/exeunit/<act>/*`` and report
``/local/activity/*`` on the provider daemon's ``GSB_URL``; the REST GSB-API cannot do the latter.
The bytes on the wire are ``codec``'s; this module is the session on top of them (see
``/work/shared/notes/gsb-native.md``). Threads, not asyncio: the rest of localnet is thread/actor
based, and one reader thread per connection keeps ordering simple.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Self

from golem_actors.localnet.gsb.codec import (
    PARTIAL,
    FrameDecoder,
    Hello,
    decode_body,
    encode_body,
    encode_frame,
    new_packet,
)
from golem_actors.localnet.gsb.connection import Connection, Waiter, open_socket
from golem_actors.localnet.gsb.errors import (
    CONFLICT,
    GsbCallError,
    GsbConnectionError,
    GsbError,
    GsbRegisterError,
    GsbTimeoutError,
)
from golem_actors.localnet.gsb.serving import Handler, Sink, serve

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["GsbClient"]

log = logging.getLogger(__name__)
_VERSION = "0.1"


class GsbClient:
    """One connection to a GSB router, serving registered addresses and making calls.

    Register/unregister replies carry no id and come back FIFO, so waiters are queued in send
    order. Calls are matched by ``request_id``; each has its own timeout because the router never
    reports a callee that dies mid-call. Handlers run in a bounded pool since some long-poll.
    ``on_disconnect`` is called (from the reader thread) when the connection is lost, not on
    ``close()``; ``reconnect()`` then restores the connection and its registrations.

    A ``Sink`` (``register_sink``) takes raw bodies on the reader thread itself, each call
    answered at once with an empty reply: VPN frames, where the sender waits for every reply
    under central net and order matters; ``push`` sends such bodies, expecting no reply.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "golem-actors-localnet",
        max_handlers: int = 32,
        on_disconnect: Callable[[GsbConnectionError], None] | None = None,
    ) -> None:
        self.url = url
        self.name = name
        self.on_disconnect = on_disconnect
        self._handlers: dict[str, Handler] = {}
        self._sinks: dict[str, Sink] = {}
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._closed = False
        self._pool = ThreadPoolExecutor(max_handlers, thread_name_prefix="gsb-handler")

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def router_hello(self) -> Hello | None:
        conn = self._conn
        return conn.hello if conn else None

    @property
    def connected(self) -> bool:
        conn = self._conn
        return conn is not None and not conn.lost

    def connect(self, timeout: float = 5.0) -> None:
        """Open the socket, exchange Hello (ours first, unique id) and wait for the router's."""
        if self._closed:
            raise GsbConnectionError("client is closed")
        if self.connected:
            raise GsbError("already connected; use reconnect()")
        sock = open_socket(self.url, timeout)
        sock.settimeout(None)
        conn = Connection(sock)
        hello = new_packet("hello", name=self.name, version=_VERSION, instance_id=os.urandom(16))
        try:
            conn.send(hello)
        except OSError as e:
            sock.close()
            raise GsbConnectionError(f"GSB hello to {self.url} failed: {e}") from e
        with self._lock:
            self._conn = conn
        conn.reader = threading.Thread(
            target=self._read_loop, args=(conn,), name="gsb-reader", daemon=True
        )
        conn.reader.start()
        if not conn.hello_seen.wait(timeout) or conn.lost:
            self._drop(
                conn, GsbConnectionError(f"no Hello from GSB router at {self.url}"), notify=False
            )
            raise GsbConnectionError(f"no Hello from GSB router at {self.url}")
        log.debug("GSB connected to %s (router %s)", self.url, conn.hello)

    def reconnect(self, timeout: float = 5.0) -> None:
        """Drop the current connection (if any), connect again and re-register every address.

        The router unregisters a closed connection's addresses asynchronously, so a 409 right
        after reconnecting is retried until ``timeout``.
        """
        conn = self._conn
        if conn is not None:
            self._drop(conn, GsbConnectionError("reconnecting"), notify=False)
        deadline = time.monotonic() + timeout
        self.connect(timeout)
        for address in [*self._handlers, *self._sinks]:
            while True:
                try:
                    self._control("register", address, max(deadline - time.monotonic(), 0.1))
                    break
                except GsbError as e:
                    if e.code != CONFLICT or time.monotonic() >= deadline:
                        raise
                    log.debug("GSB %s still owned by our old connection; retrying", address)
                    time.sleep(0.05)  # nothing to wait on: the router's cleanup is not signalled

    def close(self, *, unregister: bool = True, timeout: float = 1.0) -> None:
        """Unregister every address (pipelined, bounded by ``timeout``), then shut the socket.

        A bare close races: a call the router routes before it has seen our EOF is lost without
        a reply. After an acknowledged unregister, callers get 400 at once.
        """
        self._closed = True
        conn = self._conn
        if conn is None:
            return
        if unregister and not conn.lost:
            deadline = time.monotonic() + timeout
            waiters = []
            with contextlib.suppress(GsbError):
                addresses = [*self._handlers, *self._sinks]
                waiters = [self._send_control(conn, "unregister", a) for a in addresses]
            for waiter in waiters:
                with contextlib.suppress(queue.Empty):
                    waiter.get(timeout=max(deadline - time.monotonic(), 0.0))
        self._drop(conn, GsbConnectionError("GSB client closed"), notify=False)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def register(self, address: str, handler: Handler, *, timeout: float = 5.0) -> None:
        """Serve ``address`` and everything under it (the router matches the longest prefix)."""
        self._serve(address, handler, self._handlers, timeout)

    def register_sink(self, address: str, sink: Sink, *, timeout: float = 5.0) -> None:
        """Take the raw bodies of calls to ``address`` (and under it) on the reader thread."""
        self._serve(address, sink, self._sinks, timeout)

    def _serve(self, address: str, how: Any, table: dict[str, Any], timeout: float) -> None:
        with self._lock:
            if address in self._handlers or address in self._sinks:
                # The router refuses it too (409), but the refusal must not drop our entry.
                raise GsbRegisterError("register", address, CONFLICT, "(by this connection)")
            table[address] = how  # before the request: a call may follow the reply at once
        try:
            self._control("register", address, timeout)
        except GsbError:
            with self._lock:
                if table.get(address) is how:
                    del table[address]
            raise

    def unregister(self, address: str, *, timeout: float = 5.0) -> None:
        self._handlers.pop(address, None)
        self._sinks.pop(address, None)
        self._control("unregister", address, timeout)

    def push(self, address: str, data: bytes, *, caller: str = "local") -> None:
        """Send raw ``data`` to ``address`` and expect no reply (yagna's ``push_raw_as``)."""
        conn = self._require_conn()
        pkt = new_packet(
            "call_request",
            caller=caller,
            address=address,
            request_id=str(random.getrandbits(53)),
            data=data,
            no_reply=True,
        )
        try:
            conn.send(pkt)
        except OSError as e:
            raise GsbConnectionError(f"GSB send failed: {e}") from e

    def call(self, address: str, body: Any, *, timeout: float, caller: str = "local") -> Any:
        """Call ``address`` and return the decoded FULL reply (PARTIAL chunks are skipped)."""
        for final, value in self._call(address, body, timeout, caller, per_chunk=False):
            if final:
                return value
        return None  # unreachable: _call ends with a final item or raises

    def call_stream(
        self, address: str, body: Any, *, timeout: float, caller: str = "local"
    ) -> Iterator[Any]:
        """Yield each decoded chunk of a streamed reply; ``timeout`` applies per chunk."""
        for final, value in self._call(address, body, timeout, caller, per_chunk=True):
            if not final or value is not None:
                yield value

    def _call(
        self, address: str, body: Any, timeout: float, caller: str, *, per_chunk: bool
    ) -> Iterator[tuple[bool, Any]]:
        conn = self._require_conn()
        replies: queue.Queue[Any] = queue.Queue()
        with self._lock:
            if conn.lost:
                raise GsbConnectionError("GSB connection lost")
            request_id = str(random.getrandbits(53))  # the Rust client's id space
            while request_id in conn.pending:
                request_id = str(random.getrandbits(53))
            conn.pending[request_id] = replies
        try:
            pkt = new_packet(
                "call_request",
                caller=caller,
                address=address,
                request_id=request_id,
                data=encode_body(body),
            )
            try:
                conn.send(pkt)
            except OSError as e:
                raise GsbConnectionError(f"GSB send failed: {e}") from e
            deadline = time.monotonic() + timeout
            while True:
                wait = timeout if per_chunk else deadline - time.monotonic()
                try:
                    reply = replies.get(timeout=max(wait, 0.0))
                except queue.Empty:
                    raise GsbTimeoutError(f"no reply from {address} in {timeout} s") from None
                if isinstance(reply, GsbError):  # one instance is shared by all waiters
                    raise GsbConnectionError(str(reply)) from reply
                if reply.code != 0:
                    raise GsbCallError(reply.code, reply.data.decode("utf-8", "replace"))
                final = reply.reply_type != PARTIAL
                if final or per_chunk:
                    yield final, decode_body(reply.data)
                if final:
                    return
        finally:
            with self._lock:
                conn.pending.pop(request_id, None)

    def _send_control(self, conn: Connection, kind: str, address: str) -> Waiter:
        waiter: Waiter = queue.Queue(maxsize=1)
        try:
            with conn.lock:  # append + send atomically, so the FIFO matches the wire order
                with self._lock:
                    if conn.lost:
                        raise GsbConnectionError("GSB connection lost")
                    conn.ctl.append((f"{kind}_reply", waiter))
                conn.sock.sendall(encode_frame(new_packet(kind, service_id=address)))
        except OSError as e:
            raise GsbConnectionError(f"GSB send failed: {e}") from e
        return waiter

    def _control(self, kind: str, address: str, timeout: float) -> None:
        waiter = self._send_control(self._require_conn(), kind, address)
        try:
            result = waiter.get(timeout=timeout)
        except queue.Empty:
            raise GsbTimeoutError(f"no {kind} reply for {address} in {timeout} s") from None
        if isinstance(result, GsbError):
            raise GsbConnectionError(str(result)) from result
        code, message = result
        if code != 0:
            raise GsbRegisterError(kind, address, code, message)

    def _require_conn(self) -> Connection:
        conn = self._conn
        if conn is None or conn.lost:
            raise GsbConnectionError(f"not connected to {self.url}")
        return conn

    def _read_loop(self, conn: Connection) -> None:
        decoder = FrameDecoder()
        reason = "closed by router"
        try:
            while chunk := conn.sock.recv(65536):
                for pkt in decoder.feed(chunk):
                    self._dispatch(conn, pkt)
        except (OSError, GsbError) as e:
            reason = str(e)
        except Exception as e:  # a bug in dispatch must still fail pending calls
            log.exception("GSB reader crashed")
            reason = f"reader crashed: {e}"
        self._drop(conn, GsbConnectionError(f"GSB connection lost: {reason}"), notify=True)

    def _dispatch(self, conn: Connection, pkt: Any) -> None:
        kind = pkt.WhichOneof("packet")
        if kind == "ping":
            conn.send(new_packet("pong"))
        elif kind == "call_reply":
            with self._lock:
                replies = conn.pending.get(pkt.call_reply.request_id)
            if replies is None:
                log.debug("GSB reply for unknown request %s", pkt.call_reply.request_id)
            else:
                replies.put(pkt.call_reply)
        elif kind == "call_request":
            self._on_call(conn, pkt.call_request)
        elif kind in ("register_reply", "unregister_reply"):
            with self._lock:
                expected, waiter = conn.ctl.popleft() if conn.ctl else (None, None)
            if waiter is None or expected != kind:
                log.warning("GSB %s without a matching request (expected %s)", kind, expected)
            if waiter is not None:
                reply = getattr(pkt, kind)
                waiter.put((reply.code, getattr(reply, "message", "")))
        elif kind == "hello":
            h = pkt.hello
            conn.hello = Hello(h.name, h.version, bytes(h.instance_id))
            conn.hello_seen.set()
        else:
            log.debug("GSB ignoring packet %s (%d bytes)", kind, pkt.ByteSize())

    def _on_call(self, conn: Connection, req: Any) -> None:
        if self._sink(conn, req):
            return
        try:
            self._pool.submit(serve, conn, req, self._handlers)
        except RuntimeError:  # pool shut down by close()
            log.debug("GSB call to %s after close", req.address)

    def _sink(self, conn: Connection, req: Any) -> bool:
        """Hand a call to the sink of its longest registered prefix, if that is a sink: the
        empty reply first (the sender waits on it), then the body."""
        prefix = req.address
        while prefix and prefix not in self._handlers:
            sink = self._sinks.get(prefix)
            if sink is not None:
                if not req.no_reply:
                    reply = new_packet("call_reply", request_id=req.request_id, code=0, data=b"")
                    conn.send(reply)
                try:
                    sink(req.caller, bytes(req.data))
                except Exception:
                    log.exception("GSB sink for %s failed", req.address)
                return True
            prefix = prefix.rpartition("/")[0]
        return False

    def _drop(self, conn: Connection, error: GsbConnectionError, *, notify: bool) -> None:
        """Tear ``conn`` down once; fail its pending calls and control requests promptly."""
        with self._lock:
            if conn.lost:
                return
            conn.lost = True
            pending, conn.pending = list(conn.pending.values()), {}
            waiters, conn.ctl = [w for _, w in conn.ctl], deque()
        conn.hello_seen.set()
        conn.shut()
        for q in pending:
            q.put(error)
        for w in waiters:
            w.put(error)
        if conn.reader is not None and conn.reader is not threading.current_thread():
            conn.reader.join(timeout=2.0)
        if notify and not self._closed and self.on_disconnect is not None:
            log.info("GSB %s", error)
            try:
                self.on_disconnect(error)
            except Exception:
                log.exception("GSB on_disconnect callback failed")
