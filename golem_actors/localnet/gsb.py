"""A native client for yagna's service bus (GSB), the protocol its own services speak.

localnet's Python exe-units and providers must serve ``/public/exeunit/<act>/*`` and report
``/local/activity/*`` on the provider daemon's ``GSB_URL``; the REST GSB-API cannot do the latter.
The wire protocol (see ``/work/shared/notes/gsb-native.md``) is u32-BE length-prefixed protobuf
``Packet`` frames carrying flexbuffers bodies. Threads, not asyncio: the rest of localnet is
thread/actor based, and one reader thread per connection keeps ordering simple.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import random
import socket
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from flatbuffers import flexbuffers
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

if TYPE_CHECKING:
    from types import TracebackType

log = logging.getLogger(__name__)

# Wire schema, field numbers as in ya-sb-proto's gsb_api.proto: "field=number:type", s string,
# b bytes, i int32 (enums are the same varint), ? bool, else a message. Packet's fields form its
# oneof; variants 8-13 (pub/sub) are left out, so they parse as unknown and are ignored.
_SCHEMA = {
    "Hello": "name=1:s version=2:s instance_id=3:b",
    "RegisterRequest": "service_id=1:s",
    "RegisterReply": "code=1:i message=2:s",
    "UnregisterRequest": "service_id=1:s",
    "UnregisterReply": "code=1:i",
    "CallRequest": "caller=1:s address=2:s request_id=3:s data=4:b no_reply=5:?",
    "CallReply": "request_id=1:s code=2:i reply_type=3:i data=4:b",
    "Ping": "",
    "Pong": "",
    "Packet": "hello=1:Hello register=2:RegisterRequest register_reply=3:RegisterReply"
    " unregister=4:UnregisterRequest unregister_reply=5:UnregisterReply"
    " call_request=6:CallRequest call_reply=7:CallReply ping=14:Ping pong=15:Pong",
}


def _build_packet_class() -> Any:
    """No protoc here: describe ``GSB_API.Packet`` at import time, in a private pool."""
    fd = descriptor_pb2.FieldDescriptorProto
    types = {"s": fd.TYPE_STRING, "b": fd.TYPE_BYTES, "i": fd.TYPE_INT32, "?": fd.TYPE_BOOL}
    fdp = descriptor_pb2.FileDescriptorProto(name="gsb_api.proto", package="GSB_API")
    fdp.syntax = "proto3"
    for name, spec in _SCHEMA.items():
        msg = fdp.message_type.add(name=name)
        for item in spec.split():
            fname, number, ftype = item.replace(":", "=").split("=")
            f = msg.field.add(name=fname, number=int(number), label=fd.LABEL_OPTIONAL)
            if ftype in types:
                f.type = types[ftype]
            else:
                f.type, f.type_name, f.oneof_index = fd.TYPE_MESSAGE, f".GSB_API.{ftype}", 0
        if name == "Packet":
            msg.oneof_decl.add(name="packet")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("GSB_API.Packet"))


_Packet: Any = _build_packet_class()
_FULL, _PARTIAL = 0, 1
_CONFLICT = 409
_VERSION = "0.1"
_MAX_FRAME = 64 * 1024 * 1024
_LEN = struct.Struct(">I")


def new_packet(kind: str, **fields: Any) -> Any:
    """A ``Packet`` with its oneof set to ``kind`` (e.g. ``"ping"``, ``"call_request"``)."""
    pkt = _Packet()
    sub = getattr(pkt, kind)
    sub.SetInParent()  # empty messages (Ping/Pong) must still select the variant
    for key, value in fields.items():
        setattr(sub, key, value)
    return pkt


def encode_frame(packet: Any) -> bytes:
    data: bytes = packet.SerializeToString()
    return _LEN.pack(len(data)) + data


class FrameDecoder:
    """Reassembles frames from arbitrary TCP chunks (partial frames, several per read)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[Any]:
        self._buf += chunk
        out = []
        while len(self._buf) >= _LEN.size:
            (size,) = _LEN.unpack_from(self._buf)
            if size > _MAX_FRAME:
                raise GsbConnectionError(f"frame of {size} bytes exceeds {_MAX_FRAME}")
            if len(self._buf) < _LEN.size + size:
                break
            try:
                out.append(_Packet.FromString(bytes(self._buf[_LEN.size : _LEN.size + size])))
            except DecodeError as e:
                raise GsbConnectionError(f"undecodable GSB packet: {e}") from e
            del self._buf[: _LEN.size + size]
        return out


def encode_body(value: Any) -> bytes:
    return bytes(flexbuffers.Dumps(value))


def decode_body(data: bytes) -> Any:
    """Bodies are zlib-compressed under hybrid net (yagna's global flag), raw otherwise."""
    if not data:
        return None
    with contextlib.suppress(zlib.error):
        data = zlib.decompress(data)
    return flexbuffers.Loads(data)


def ok(value: Any) -> dict[str, Any]:
    """Rust ``Result::Ok`` as serde/flexbuffers shapes it."""
    return {"Ok": value}


def err(error: Any) -> dict[str, Any]:
    return {"Err": error}


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
        what = "owned by another connection" if code == _CONFLICT else "refused"
        super().__init__(f"GSB {kind} {address}: {what} (code {code}) {message}".rstrip())
        self.code = code


class ReplyError(Exception):
    """Raise from a handler to answer ``{"Err": error}`` (code 0), as yagna services do."""

    def __init__(self, error: Any) -> None:
        super().__init__(repr(error))
        self.error = error


@dataclass(frozen=True)
class Streamed:
    """Return from a handler to stream: one PARTIAL per item, then the empty FULL end-of-stream."""

    chunks: Iterable[Any]


@dataclass(frozen=True)
class Hello:
    name: str
    version: str
    instance_id: bytes


@dataclass(frozen=True)
class IncomingCall:
    caller: str
    address: str
    request_id: str
    body: Any
    no_reply: bool


Handler = Callable[[IncomingCall], Any]
_Waiter = queue.Queue[tuple[int, str] | GsbError]  # a register/unregister reply (code, message)


@dataclass
class _Conn:
    sock: socket.socket
    lock: threading.Lock = field(default_factory=threading.Lock)
    hello: Hello | None = None
    hello_seen: threading.Event = field(default_factory=threading.Event)
    ctl: deque[tuple[str, _Waiter]] = field(default_factory=deque)
    pending: dict[str, queue.Queue[Any]] = field(default_factory=dict)
    lost: bool = False
    reader: threading.Thread | None = None

    def send(self, packet: Any) -> None:
        frame = encode_frame(packet)
        with self.lock:
            self.sock.sendall(frame)


class GsbClient:
    """One connection to a GSB router, serving registered addresses and making calls.

    Register/unregister replies carry no id and come back FIFO, so waiters are queued in send
    order. Calls are matched by ``request_id``; each has its own timeout because the router never
    reports a callee that dies mid-call. Handlers run in a bounded pool since some long-poll.
    ``on_disconnect`` is called (from the reader thread) when the connection is lost, not on
    ``close()``; ``reconnect()`` then restores the connection and its registrations.
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
        self._lock = threading.Lock()
        self._conn: _Conn | None = None
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
        sock = _open_socket(self.url, timeout)
        sock.settimeout(None)
        conn = _Conn(sock)
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
        for address in list(self._handlers):
            while True:
                try:
                    self._control("register", address, max(deadline - time.monotonic(), 0.1))
                    break
                except GsbError as e:
                    if e.code != _CONFLICT or time.monotonic() >= deadline:
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
                waiters = [self._send_control(conn, "unregister", a) for a in list(self._handlers)]
            for waiter in waiters:
                with contextlib.suppress(queue.Empty):
                    waiter.get(timeout=max(deadline - time.monotonic(), 0.0))
        self._drop(conn, GsbConnectionError("GSB client closed"), notify=False)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def register(self, address: str, handler: Handler, *, timeout: float = 5.0) -> None:
        """Serve ``address`` and everything under it (the router matches the longest prefix)."""
        self._handlers[address] = handler  # before the request: a call may follow the reply at once
        try:
            self._control("register", address, timeout)
        except GsbError:
            if self._handlers.get(address) is handler:
                del self._handlers[address]
            raise

    def unregister(self, address: str, *, timeout: float = 5.0) -> None:
        self._handlers.pop(address, None)
        self._control("unregister", address, timeout)

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
                final = reply.reply_type != _PARTIAL
                if final or per_chunk:
                    yield final, decode_body(reply.data)
                if final:
                    return
        finally:
            with self._lock:
                conn.pending.pop(request_id, None)

    def _send_control(self, conn: _Conn, kind: str, address: str) -> _Waiter:
        waiter: _Waiter = queue.Queue(maxsize=1)
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

    def _require_conn(self) -> _Conn:
        conn = self._conn
        if conn is None or conn.lost:
            raise GsbConnectionError(f"not connected to {self.url}")
        return conn

    def _read_loop(self, conn: _Conn) -> None:
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

    def _dispatch(self, conn: _Conn, pkt: Any) -> None:
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
            try:
                self._pool.submit(self._serve, conn, pkt.call_request)
            except RuntimeError:  # pool shut down by close()
                log.debug("GSB call to %s after close", pkt.call_request.address)
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

    def _serve(self, conn: _Conn, req: Any) -> None:
        try:
            body = decode_body(req.data)
        except Exception as e:  # noqa: BLE001 - the caller gets the reason, as from yagna
            self._reply(conn, req, 500, f"Bad content: {e}".encode(), _FULL)
            return
        call = IncomingCall(req.caller, req.address, req.request_id, body, req.no_reply)
        handler = self._lookup(req.address)
        if handler is None:
            self._reply(conn, req, 400, b"endpoint address not found", _FULL)
            return
        try:
            result = handler(call)
            if isinstance(result, Streamed):
                for chunk in result.chunks:
                    self._reply(conn, req, 0, encode_body(chunk), _PARTIAL)
                self._reply(conn, req, 0, b"", _FULL)
            else:
                self._reply(conn, req, 0, encode_body(result), _FULL)
        except ReplyError as e:
            self._reply(conn, req, 0, encode_body(err(e.error)), _FULL)
        except Exception as e:
            log.exception("GSB handler for %s failed", req.address)
            self._reply(conn, req, 500, f"{type(e).__name__}: {e}".encode(), _FULL)

    def _reply(self, conn: _Conn, req: Any, code: int, data: bytes, reply_type: int) -> None:
        if req.no_reply or conn.lost:
            return
        pkt = new_packet(
            "call_reply", request_id=req.request_id, code=code, reply_type=reply_type, data=data
        )
        try:
            conn.send(pkt)
        except OSError as e:
            log.debug("GSB reply to %s dropped: %s", req.address, e)

    def _lookup(self, address: str) -> Handler | None:
        prefix = address
        while prefix:
            handler = self._handlers.get(prefix)
            if handler is not None:
                return handler
            prefix = prefix.rpartition("/")[0]
        return None

    def _drop(self, conn: _Conn, error: GsbConnectionError, *, notify: bool) -> None:
        """Tear ``conn`` down once; fail its pending calls and control requests promptly."""
        with self._lock:
            if conn.lost:
                return
            conn.lost = True
            pending, conn.pending = list(conn.pending.values()), {}
            waiters, conn.ctl = [w for _, w in conn.ctl], deque()
        conn.hello_seen.set()
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_RDWR)  # close() alone leaves a blocked recv's socket up
        conn.sock.close()
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


def _open_socket(url: str, timeout: float) -> socket.socket:
    """``tcp://host:port`` or ``unix:/path`` (yagna's ``GSB_URL`` forms)."""
    try:
        if url.startswith("unix:"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(url.removeprefix("unix:").removeprefix("//"))
            except OSError:
                sock.close()
                raise
            return sock
        if not url.startswith("tcp://"):
            raise GsbConnectionError(f"unsupported GSB_URL {url!r}")
        host, _, port = url.removeprefix("tcp://").rstrip("/").rpartition(":")
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    except (OSError, ValueError) as e:
        raise GsbConnectionError(f"cannot connect to GSB at {url}: {e}") from e
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
