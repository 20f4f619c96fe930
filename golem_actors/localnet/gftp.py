"""The exe-unit's GFTP: ``transfer`` from and to ``gftp://<node>/<id>`` over the native bus.

As yagna's exe-unit does (``exe-unit/components/transfer/src/gftp.rs``): a download asks the
publisher ``GetMetadata``, then ``GetChunk``s, several in flight; an upload sends
``UploadChunk``s, then ``UploadFinished`` with the SHA3-256 of what it sent. Calls go to
``/transfer/net/<node>/gftp/<id>/<Message>`` on the provider's own daemon, which routes them
through the net to the publishing node. Memory is bounded (a window of chunks), chunks are
consumed in order (written and hashed as they come), every call has a timeout.

Guards against yagna 0.17.6 (``/work/shared/notes/gftp-gsb.md`` §7):

- a call to a node id that is not connected to the hub never returns and leaves the hub spinning
  at 100 % CPU until it restarts; no yagna layer notices. So a transfer may only name a node it
  has reason to believe is connected (the activity's requestor, by default), and a node that
  once failed to answer ``GetMetadata`` is not called again for ``UNREACHABLE_COOLDOWN``;
- errors crossing the net arrive as empty replies (no such id, the publisher's socket gone): an
  empty reply is an error here, never a value;
- a publisher whose socket drops mid-transfer never answers the calls in flight: the per-call
  timeout ends the transfer.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass, field
from typing import IO, Any, Protocol, Self

from golem_actors.errors import GolemActorsError
from golem_actors.localnet.gsb import GsbError, GsbTimeoutError
from golem_actors.storage.gftp_wire import (
    GET_CHUNK,
    GET_METADATA,
    UPLOAD_CHUNK,
    UPLOAD_FINISHED,
    GftpUrl,
    parse_gftp,
)

__all__ = ["GftpError", "GftpTransfers"]

log = logging.getLogger(__name__)

CALL_TIMEOUT = 20.0
METADATA_TIMEOUT = 10.0  # the first call: a node that does not answer it is taken as gone
UNREACHABLE_COOLDOWN = 60.0
DOWNLOAD_CHUNK = 64_000  # the real exe-unit asks 40,960; a GSB-API publisher can send ~65,400
#: yagna passes big messages on to a GSB-API receiver (4 MiB seen); 1 MiB halves yagna's CPU
#: per byte against 256 KiB (and 40 KiB, the real exe-unit's, is ~4x slower still).
UPLOAD_CHUNK_SIZE = 1 << 20

_NO_FILE = "no such file is published"
_NO_RECEIVER = "nothing receives uploads at this URL"

_unreachable: dict[str, float] = {}  # node id -> until when it is not called (process-wide)
_unreachable_lock = threading.Lock()


class GftpError(GolemActorsError):
    """The transfer failed; the message says why in the words of a command result."""


class BusCaller(Protocol):
    def call(self, address: str, body: Any, *, timeout: float) -> Any: ...


class Writer(Protocol):
    def write(self, data: bytes, /) -> int: ...


@dataclass
class GftpTransfers:
    """GFTP over one bus connection, for the transfers of one activity."""

    bus: BusCaller
    #: node ids a transfer may name (lowercase); ``None`` allows any (only safe off a self-hub)
    allowed_nodes: frozenset[str] | None
    call_timeout: float = CALL_TIMEOUT
    metadata_timeout: float = METADATA_TIMEOUT
    in_flight: int = 8
    chunk_size: int = DOWNLOAD_CHUNK
    upload_chunk: int = UPLOAD_CHUNK_SIZE
    upload_in_flight: int = 4
    cooldown: float = UNREACHABLE_COOLDOWN
    _clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def download(self, url: str, out: Writer, *, deadline: float, cancel: threading.Event) -> int:
        """Write the file at ``url`` to ``out``, in order; returns its size."""
        target = self._target(url)
        base = f"/transfer/net/{target.node_id}/gftp/{target.file_id}"
        size = self._metadata(target, base, deadline)
        offsets = range(0, size, self.chunk_size)
        with _Window(self.in_flight, self._call_bounded, deadline, cancel) as window:
            for offset, reply in window.run(
                (f"{base}/{GET_CHUNK}", {"offset": o, "size": min(self.chunk_size, size - o)})
                for o in offsets
            ):
                want = min(self.chunk_size, size - offset)
                content = self._chunk(target, reply, offset)
                while len(content) < want:  # a publisher may send less; ask for the rest
                    more = window.call_now(
                        f"{base}/{GET_CHUNK}",
                        {"offset": offset + len(content), "size": want - len(content)},
                    )
                    part = self._chunk(target, more, offset + len(content))
                    if not part:
                        raise GftpError(f"{target}: no data at offset {offset + len(content)}")
                    content += part
                out.write(content[:want])
        return size

    def upload(
        self, source: IO[bytes], url: str, *, deadline: float, cancel: threading.Event
    ) -> str:
        """Send ``source`` to ``url``; returns the SHA3-256 the receiver confirmed."""
        target = self._target(url)
        base = f"/transfer/net/{target.node_id}/gftp/{target.file_id}"
        hasher = hashlib.sha3_256()

        def chunks() -> Iterable[tuple[str, Any]]:
            offset = 0
            while data := source.read(self.upload_chunk):
                hasher.update(data)
                yield f"{base}/{UPLOAD_CHUNK}", {"chunk": {"offset": offset, "content": data}}
                offset += len(data)

        first = True
        with _Window(self.upload_in_flight, self._call_bounded, deadline, cancel) as window:
            for _, reply in window.run(chunks()):
                self._unwrap(target, reply, "UploadChunk", first=first, missing=_NO_RECEIVER)
                first = False
            digest = hasher.hexdigest()
            reply = window.call_now(f"{base}/{UPLOAD_FINISHED}", {"hash": digest})
        if reply == {"Err": "IntegrityError"}:
            raise GftpError(f"upload to {target}: the receiver's SHA3-256 check failed")
        self._unwrap(target, reply, "UploadFinished", first=first, missing=_NO_RECEIVER)
        return digest

    # -- internals --------------------------------------------------------------------------

    def _target(self, url: str) -> GftpUrl:
        try:
            target = parse_gftp(url)
        except ValueError as exc:
            raise GftpError(str(exc)) from None
        node = target.node_id
        if self.allowed_nodes is not None and node not in self.allowed_nodes:
            raise GftpError(
                f"gftp node {node} is unknown here: localnet moves files only to and from the "
                "activity's requestor (a call to a node that is not connected wedges yagna)"
            )
        with _unreachable_lock:
            until = _unreachable.get(node, 0.0)
        if self._clock() < until:
            raise GftpError(
                f"gftp node {node} did not answer a moment ago; not calling it again for "
                f"{until - self._clock():.0f} s"
            )
        return target

    def _metadata(self, target: GftpUrl, base: str, deadline: float) -> int:
        try:
            reply = self._call(f"{base}/{GET_METADATA}", None, deadline, self.metadata_timeout)
        except GsbTimeoutError:
            with _unreachable_lock:
                _unreachable[target.node_id] = self._clock() + self.cooldown
            raise GftpError(
                f"gftp node {target.node_id} did not answer within "
                f"{self.metadata_timeout:g} s (not connected, or its storage is stuck)"
            ) from None
        meta = self._unwrap(target, reply, "GetMetadata", first=True)
        size = meta.get("fileSize") if isinstance(meta, dict) else None
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise GftpError(f"{target}: the publisher sent no file size ({meta!r})")
        return size

    def _chunk(self, target: GftpUrl, reply: Any, offset: int) -> bytes:
        chunk = self._unwrap(target, reply, "GetChunk", first=False)
        content = chunk.get("content") if isinstance(chunk, dict) else None
        if not isinstance(content, bytes) or chunk.get("offset") != offset:
            raise GftpError(f"{target}: a malformed chunk for offset {offset}")
        return content

    def _unwrap(
        self, target: GftpUrl, reply: Any, what: str, *, first: bool, missing: str = _NO_FILE
    ) -> Any:
        if isinstance(reply, dict) and "Ok" in reply:
            return reply["Ok"]
        if isinstance(reply, dict) and "Err" in reply:
            raise GftpError(f"{target}: {what} refused by the publisher: {reply['Err']}")
        if first:  # yagna turns "no such address" into an empty reply when crossing the net
            raise GftpError(f"{target}: {missing} (empty reply to {what})")
        raise GftpError(f"{target}: the publisher went away mid-transfer (empty reply)")

    def _call_bounded(self, address: str, body: Any, deadline: float) -> Any:
        return self._call(address, body, deadline, self.call_timeout)

    def _call(self, address: str, body: Any, deadline: float, limit: float) -> Any:
        left = deadline - self._clock()
        if left <= 0:
            raise GftpError("transfer timed out (this provider's limit per command)")
        try:
            return self.bus.call(address, body, timeout=min(limit, left))
        except GsbTimeoutError:
            if self._clock() >= deadline:
                raise GftpError("transfer timed out (this provider's limit per command)") from None
            raise
        except GsbError as exc:
            raise GftpError(f"gftp call {address.rsplit('/', 1)[-1]} failed: {exc}") from exc


class _Window:
    """Up to ``size`` calls in flight, results taken in order; failures cancel the rest."""

    def __init__(
        self,
        size: int,
        call: Callable[[str, Any, float], Any],
        deadline: float,
        cancel: threading.Event,
    ) -> None:
        self._call, self._deadline, self._cancel = call, deadline, cancel
        self._pool = ThreadPoolExecutor(max(1, size), thread_name_prefix="gftp")
        self._size = max(1, size)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        # Calls still in flight end by their own timeouts; nobody waits for them.
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run(self, calls: Iterable[tuple[str, Any]]) -> Iterable[tuple[int, Any]]:
        """Yield ``(offset, reply)`` per call in order (``offset`` from the body, or 0)."""
        pending: deque[tuple[int, str, Future[Any]]] = deque()
        source = iter(calls)
        exhausted = False
        while True:
            while not exhausted and len(pending) < self._size:
                item = next(source, None)
                if item is None:
                    exhausted = True
                    break
                address, body = item
                future = self._pool.submit(self._call, address, body, self._deadline)
                pending.append((_offset_of(body), address, future))
            if not pending:
                return
            offset, address, future = pending.popleft()
            yield offset, self._result(future, address)

    def call_now(self, address: str, body: Any) -> Any:
        return self._result(self._pool.submit(self._call, address, body, self._deadline), address)

    def _result(self, future: Future[Any], address: str) -> Any:
        while True:
            if self._cancel.is_set():
                raise GftpError("transfer interrupted: the activity is stopping")
            try:
                return future.result(timeout=0.25)
            except GsbTimeoutError:  # first: it is a TimeoutError, as FutureTimeoutError is
                raise GftpError(
                    f"the publisher stopped answering ({address.rsplit('/', 1)[-1]} timed out)"
                ) from None
            except FutureTimeoutError:
                if time.monotonic() > self._deadline + CALL_TIMEOUT:  # a bug, not yagna
                    raise GftpError(f"no answer from {address}") from None


def _offset_of(body: Any) -> int:
    if isinstance(body, dict):
        inner = body.get("chunk", body)
        if isinstance(inner, dict) and isinstance(inner.get("offset"), int):
            return int(inner["offset"])
    return 0
