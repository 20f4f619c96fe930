"""One bus address served through yagna's GSB API: REST bind + its WebSocket, flexbuffers frames.

``POST /gsb-api/v1/services`` binds ``<address>/<component>`` on the daemon's bus; every call
then arrives on ``ws://…/gsb-api/v1/services/<servicesId>`` as a binary frame
``{"id", "component", "payload"}`` and is answered ``{"id", "payload"}`` (yagna wraps it as
``{"Ok": …}``) or ``{"id", "error"}`` (``{"Err": …}``). A requestor needs no native bus access.

yagna 0.17.6's traps, which shape this class (``/work/shared/notes/gftp-gsb.md`` §7):

- it never answers a Close frame sent by the client (its handler deadlocks), so the socket is
  never closed with one: ``close`` unbinds over REST, then drops TCP;
- a second socket to one service closes both, so there is one socket per service, and a new
  one only after the old one is gone (yagna buffers calls meanwhile); yagna then leaves the
  closing handshake unfinished (TCP stays open), so a socket stuck CLOSING counts as closed;
- a frame over 65,536 bytes from us kills the socket: ``send`` refuses to send one;
- an unknown reply id, or a reply without ``payload``/``error``, wedges or closes the call: every
  frame gets exactly one well-formed reply, a handler's crash included;
- nothing on yagna's side times out: our sends are bounded (``SO_SNDTIMEO``), the rest is up to
  the caller.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import websockets
from flatbuffers import flexbuffers
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect

from golem_actors.errors import GolemActorsError
from golem_actors.storage.gftp_wire import MAX_WS_MESSAGE
from golem_actors.yagna import YagnaClient, YagnaError

__all__ = ["GsbApiService", "GsbServiceError", "ServiceFailure"]

log = logging.getLogger(__name__)
# websockets logs every request header (the app key among them) and every frame at DEBUG:
# its own logger never goes below INFO, whatever the root logger is set to.
_WS_LOG = logging.getLogger(f"{__name__}.websocket")
_WS_LOG.setLevel(logging.INFO)

#: Calls may carry big uploads: yagna sends what the caller sent, in one message.
MAX_INCOMING = 64 << 20
SEND_TIMEOUT = 30.0
CLOSING_CHECK = 1.0  # how often an idle socket is checked for a Close that yagna left open
RECONNECTS = 5  # the socket yagna closed on us is opened again at most this often in a row


class GsbServiceError(GolemActorsError, RuntimeError):
    """The address could not be bound, or its WebSocket could not be opened."""


class ServiceFailure(GolemActorsError):  # noqa: N818 - a reply, not a crash: it is what the caller gets
    """Raise from a handler to answer ``{"Err": error}`` (e.g. ``{"ReadError": "…"}``)."""

    def __init__(self, error: Any) -> None:
        super().__init__(repr(error))
        self.error = error


#: ``handler(component, payload) -> reply payload``; may raise ``ServiceFailure``.
Handler = Callable[[str, dict[str, Any]], Any]


def encode(value: Any) -> bytes:
    return bytes(flexbuffers.Dumps(value))


class GsbApiService:
    """Serve ``components`` of ``address`` until ``close()``; handlers run on the reader thread,
    one frame at a time, so they must be quick (file reads and writes are)."""

    def __init__(
        self,
        client: YagnaClient,
        address: str,
        components: Sequence[str],
        handler: Handler,
        *,
        open_timeout: float = 10.0,
        send_timeout: float = SEND_TIMEOUT,
    ) -> None:
        self.address = address
        self._client = client
        self._components = list(components)
        self._handler = handler
        self._open_timeout = open_timeout
        self._send_timeout = send_timeout
        self._send_lock = threading.Lock()
        self._closing = threading.Event()
        self._ws: ClientConnection | None = None
        self._reader: threading.Thread | None = None
        self.services_id = ""
        self.last_call = time.monotonic()

    def start(self) -> None:
        """Bind, then open the WebSocket (calls that come between are buffered by yagna)."""
        try:
            self.services_id = self._client.gsb.bind(self.address, self._components).services_id
        except YagnaError as exc:
            raise GsbServiceError(f"binding {self.address} in yagna failed: {exc}") from exc
        try:
            self._ws = self._connect()
        except BaseException:
            self._unbind()
            raise
        self._reader = threading.Thread(
            target=self._read_loop, name=f"gsb-api {self.address}", daemon=True
        )
        self._reader.start()

    def close(self, *, timeout: float = 5.0) -> None:
        """Unbind (yagna then ends the calls in flight), drop the socket, never a Close frame.

        yagna 0.17.6 keeps the bus address bound after the REST unbind: later calls to it hang
        in yagna, which is why every publication gets a fresh id.
        """
        if self._closing.is_set():
            return
        self._closing.set()
        self._unbind()
        self._drop()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout)

    @property
    def running(self) -> bool:
        return not self._closing.is_set()

    # -- the socket ------------------------------------------------------------------------

    def _connect(self) -> ClientConnection:
        url = self._client.gsb.websocket_url(self.services_id)
        key = self._client.config.app_key
        try:
            ws = connect(
                url,
                additional_headers={"Authorization": f"Bearer {key}"},
                compression=None,  # yagna offers none; deflating file chunks only costs CPU
                max_size=MAX_INCOMING,
                max_queue=4,  # messages read ahead of the handler: bounds memory with big uploads
                ping_interval=None,  # yagna keeps an idle socket open (95 s seen); no pings
                open_timeout=self._open_timeout,
                close_timeout=1.0,
                proxy=None,
                legacy=True,  # a plain connection: its end is ours (never a Close frame)
                logger=_WS_LOG,
            )
        except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
            raise GsbServiceError(f"opening the WebSocket of {self.address} failed: {exc}") from exc
        # A send blocked on a peer that stopped reading fails after this, instead of forever.
        timeval = struct.pack("ll", int(self._send_timeout), 0)
        with contextlib.suppress(OSError):
            ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        return ws

    def _drop(self) -> None:
        """Close TCP without a Close frame (yagna's handler would deadlock on one)."""
        ws = self._ws
        if ws is None:
            return
        with contextlib.suppress(OSError):
            ws.socket.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            ws.close_socket()

    def _unbind(self) -> None:
        if not self.services_id:
            return
        try:
            self._client.gsb.unbind(self.services_id)
        except YagnaError as exc:
            log.debug("unbinding %s: %s", self.address, exc)

    def _read_loop(self) -> None:
        failures = 0
        while not self._closing.is_set():
            ws = self._ws
            assert ws is not None
            try:
                frame = ws.recv(timeout=CLOSING_CHECK)
                failures = 0
            except (websockets.exceptions.ConnectionClosed, TimeoutError) as exc:
                if isinstance(exc, TimeoutError) and ws.state is State.OPEN:
                    continue  # idle
                # Closed, or CLOSING: yagna sent a Close (say, for a second socket on this
                # service) and will never close TCP, so the handshake never ends by itself.
                if self._closing.is_set():
                    return
                failures += 1
                log.warning("yagna closed the WebSocket of %s: %r", self.address, exc)
                if failures > RECONNECTS or not self._reconnect():
                    log.error("giving up on %s", self.address)  # noqa: TRY400 - no traceback to add
                    self._closing.set()
                    return
                continue
            if isinstance(frame, str):
                log.warning("text frame on %s ignored", self.address)
                continue
            self.last_call = time.monotonic()
            self._answer(ws, frame)

    def _reconnect(self) -> bool:
        """A socket yagna closed is gone: a new one gets the calls it buffered meanwhile."""
        self._drop()
        if self._closing.wait(0.2):  # a short pause before asking yagna again
            return False
        try:
            self._ws = self._connect()
        except GsbServiceError as exc:
            log.warning("%s", exc)
            return False
        return True

    def _answer(self, ws: ClientConnection, frame: bytes) -> None:
        try:
            request = flexbuffers.Loads(frame)
            request_id = request["id"]
            component = str(request.get("component", ""))
            payload = request.get("payload") or {}
        except Exception:  # a frame we cannot read has no id to answer
            log.exception("undecodable frame on %s", self.address)
            return
        try:
            reply = {"id": request_id, "payload": self._handler(component, payload)}
        except ServiceFailure as exc:
            reply = {"id": request_id, "error": exc.error}
        except Exception as exc:
            log.exception("handler of %s/%s failed", self.address, component)
            reply = {"id": request_id, "error": {"InternalError": f"{type(exc).__name__}: {exc}"}}
        message = encode(reply)
        if len(message) > MAX_WS_MESSAGE:  # yagna would close the socket and lose every call
            log.error("a reply of %d bytes on %s is too big for yagna", len(message), self.address)
            error = {"InternalError": "the reply is too big for yagna's GSB API"}
            message = encode({"id": request_id, "error": error})
        self._send(ws, message)

    def _send(self, ws: ClientConnection, message: bytes) -> None:
        with self._send_lock:
            try:
                ws.send(message)
            except (OSError, websockets.exceptions.ConnectionClosed) as exc:
                log.warning("reply on %s lost: %s", self.address, exc)
                self._drop()  # a timed-out send leaves the stream broken: start over
