"""A requestor-side GFTP storage: files served on our node's bus, through yagna's GSB API.

The way files move on the real Golem network (yapapi, golem-js, the exe-unit): a provider's
exe-unit fetches ``gftp://<ourNodeId>/<id>`` with ``GetMetadata`` and ``GetChunk`` calls that
travel through its daemon and the net to ours, and sends results to a URL we bind with
``UploadChunk`` and ``UploadFinished`` calls. Each publication is one ``GsbApiService`` (one
REST binding, one WebSocket, one reader thread) under a fresh random id.

Memory stays bounded whatever the size: chunks are read from disk on demand (``os.pread``) and
uploads are written at their offsets into a temporary file, renamed into place only once their
SHA3-256 matches the hash the sender gives in ``UploadFinished``. What we publish carries its hash
as ``hash:sha3:<hex>:gftp://…``, so the exe-unit (the real one, and localnet's) checks it too.
An upload that stops making progress for ``stall_timeout`` seconds is abandoned.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from golem_actors.storage.gftp_wire import (
    CHUNK_CONTENT_MAX,
    DOWNLOADS,
    GET_CHUNK,
    GET_METADATA,
    UPLOAD_CHUNK,
    UPLOAD_FINISHED,
    UPLOADS,
    GftpUrl,
    file_address,
    format_hashed,
    parse_hashed,
    sha3_file,
)
from golem_actors.storage.gsb_api import GsbApiService, GsbServiceError, ServiceFailure
from golem_actors.storage.http import Slot, StorageError
from golem_actors.yagna import ApiConfig, YagnaClient, YagnaError

__all__ = ["GftpStorage"]

log = logging.getLogger(__name__)

_HASH_BLOCK = 1 << 20
_HASHES_KEPT = 256


def _int(payload: dict[str, Any], key: str) -> int:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ServiceFailure({"ReadError": f"{key} must be a whole number >= 0, got {value!r}"})
    return value


@dataclass
class _Published:
    """A file (an open descriptor) or bytes, answered chunk by chunk."""

    size: int
    fd: int | None = None
    data: bytes = b""

    def handle(self, component: str, payload: dict[str, Any]) -> Any:
        if component == GET_METADATA:
            return {"fileSize": self.size}
        if component != GET_CHUNK:
            raise ServiceFailure({"InternalError": f"unexpected {component}"})
        offset, size = _int(payload, "offset"), _int(payload, "size")
        if offset > self.size:
            raise ServiceFailure({"ReadError": f"offset {offset} beyond end {self.size}"})
        # A shorter reply is allowed (a chunk at EOF is one); a longer one would not reach.
        size = min(size, CHUNK_CONTENT_MAX, self.size - offset)
        if self.fd is None:
            content = self.data[offset : offset + size]
        else:
            try:
                content = os.pread(self.fd, size, offset)
            except OSError as exc:
                raise ServiceFailure({"ReadError": f"reading at {offset}: {exc}"}) from exc
        return {"offset": offset, "content": content}

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


@dataclass
class _Receiving:
    """An upload in progress: chunks written at their offsets, hashed as a prefix fills up."""

    path: Path  # where the file is once its hash checked
    max_bytes: int
    partial: Path = field(init=False)
    fd: int = field(init=False)
    size: int = 0
    hashed: int = 0  # bytes [0, hashed) are in ``hasher``
    hasher: Any = field(default_factory=hashlib.sha3_256)
    ahead: dict[int, int] = field(default_factory=dict)  # written extents past ``hashed``
    rewritten: bool = False  # a chunk landed on hashed bytes: hash the file again at the end
    done: bool = False
    failed: str | None = None
    started: bool = False
    last: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.partial = self.path.with_name(f".{self.path.name}.part")
        flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        self.fd = os.open(self.partial, flags, 0o600)

    def handle(self, component: str, payload: dict[str, Any]) -> Any:
        with self.lock:
            if self.failed is not None:
                raise ServiceFailure({"WriteError": self.failed})
            if self.done:
                raise ServiceFailure({"WriteError": "this upload has finished already"})
            self.last = time.monotonic()
            if component == UPLOAD_CHUNK:
                chunk = payload.get("chunk")
                if not isinstance(chunk, dict) or not isinstance(chunk.get("content"), bytes):
                    raise ServiceFailure({"WriteError": "UploadChunk needs chunk.content bytes"})
                self._write(_int(chunk, "offset"), chunk["content"])
                return None
            if component == UPLOAD_FINISHED:
                self._finish(payload.get("hash"))
                return None
            raise ServiceFailure({"InternalError": f"unexpected {component}"})

    def _write(self, offset: int, content: bytes) -> None:
        end = offset + len(content)
        if end > self.max_bytes:
            raise ServiceFailure({"WriteError": f"upload exceeds {self.max_bytes} bytes"})
        self.started = True
        try:
            os.pwrite(self.fd, content, offset)
        except OSError as exc:
            raise ServiceFailure({"WriteError": f"writing at {offset}: {exc}"}) from exc
        self.size = max(self.size, end)
        if offset == self.hashed:
            self.hasher.update(content)
            self.hashed = end
            while self.hashed in self.ahead:  # chunks that came early follow on, from disk
                self._hash_from_disk(self.ahead.pop(self.hashed))
        elif offset > self.hashed:
            self.ahead[offset] = max(end, self.ahead.get(offset, end))
        else:
            self.rewritten = True

    def _hash_from_disk(self, end: int) -> None:
        while self.hashed < end:
            block = os.pread(self.fd, min(_HASH_BLOCK, end - self.hashed), self.hashed)
            if not block:
                break
            self.hasher.update(block)
            self.hashed += len(block)

    def _finish(self, expected: Any) -> None:
        if self.rewritten or self.ahead or self.hashed != self.size:
            with os.fdopen(os.dup(self.fd), "rb") as again:
                actual = sha3_file(again)
        else:
            actual = self.hasher.hexdigest()
        if expected is not None and str(expected).lower() != actual:
            log.warning("upload to %s: hash %s, the sender said %s", self.path, actual, expected)
            self._reset()
            raise ServiceFailure("IntegrityError")
        os.close(self.fd)
        self.fd = -1
        self.partial.replace(self.path)
        self.done = True

    def _reset(self) -> None:
        """After a hash mismatch the sender may send the whole file again to the same URL."""
        os.ftruncate(self.fd, 0)
        self.size = self.hashed = 0
        self.hasher = hashlib.sha3_256()
        self.ahead.clear()
        self.rewritten = False

    def abandon(self, reason: str) -> None:
        with self.lock:
            if self.done or self.failed is not None:
                return
            self.failed = reason
            self.close()

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        self.partial.unlink(missing_ok=True)


@dataclass
class _Entry:
    service: GsbApiService
    item: _Published | _Receiving


class GftpStorage:
    """``with GftpStorage(config) as storage: url = storage.publish_file(path)``.

    ``config`` is the requestor's (its app key acts as the node the URLs name).
    """

    def __init__(
        self,
        config: ApiConfig | None = None,
        *,
        stall_timeout: float = 120.0,
        max_upload_bytes: int = 4 << 30,
        verify: bool = True,
    ) -> None:
        self._client = YagnaClient(config or ApiConfig.from_env(), read_timeout=15.0)
        try:
            self.node_id = self._client.identity.me().identity.lower()
        except YagnaError as exc:
            self._client.close()
            raise StorageError(f"GFTP storage needs yagna's identity: {exc}") from exc
        self.stall_timeout = stall_timeout
        self.max_upload_bytes = max_upload_bytes
        self.verify = verify
        self._dir = Path(tempfile.mkdtemp(prefix="golem-actors-gftp-"))
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._hashes: dict[tuple[int, int, int, int], str] = {}
        self._closed = threading.Event()
        self._janitor = threading.Thread(target=self._watch, name="gftp-janitor", daemon=True)
        self._janitor.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Unbind everything still published, remove what arrived and was not taken away."""
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            self._end(entry)
        self._janitor.join(5)
        self._client.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    # -- Storage ----------------------------------------------------------------------------

    def publish_bytes(self, data: bytes) -> str:
        item = _Published(len(data), data=bytes(data))
        digest = hashlib.sha3_256(item.data).hexdigest() if self.verify else None
        return self._publish(item, digest)

    def publish_file(self, path: Path) -> str:
        """Serve a local file from an open descriptor (a later rename does not matter; a
        later change of its content fails the provider's hash check)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise StorageError(f"cannot send {path}: {exc.strerror}") from exc
        try:
            info = os.fstat(fd)
            if not os.path.isfile(fd):  # noqa: PTH113 - checks the open descriptor
                raise StorageError(f"cannot send {path}: not a regular file")  # noqa: TRY301
            digest = self._file_hash(fd, info) if self.verify else None
        except BaseException:
            os.close(fd)
            raise
        return self._publish(_Published(info.st_size, fd=fd), digest)

    def upload_slot(self) -> Slot:
        file_id = uuid.uuid4().hex
        path = self._dir / f"in-{file_id}"
        item = _Receiving(path, self.max_upload_bytes)
        url = str(GftpUrl(self.node_id, file_id))
        try:
            self._bind(file_id, item, UPLOADS)
        except BaseException:
            item.close()
            raise
        return Slot(url, path)

    def release(self, url: str) -> None:
        file_id = parse_hashed(url).url.rsplit("/", 1)[-1]
        with self._lock:
            entry = self._entries.pop(file_id, None)
        if entry is not None:
            self._end(entry)
            if isinstance(entry.item, _Receiving):
                entry.item.path.unlink(missing_ok=True)

    # -- internals --------------------------------------------------------------------------

    def _publish(self, item: _Published, digest: str | None) -> str:
        file_id = str(uuid.uuid4())
        try:
            self._bind(file_id, item, DOWNLOADS)
        except BaseException:
            item.close()
            raise
        url = str(GftpUrl(self.node_id, file_id))
        return format_hashed(url, digest) if digest else url

    def _bind(self, file_id: str, item: _Published | _Receiving, components: Any) -> None:
        if self._closed.is_set():
            raise StorageError("the GFTP storage is closed")
        service = GsbApiService(self._client, file_address(file_id), components, item.handle)
        try:
            service.start()
        except GsbServiceError as exc:
            raise StorageError(str(exc)) from exc
        with self._lock:
            self._entries[file_id] = _Entry(service, item)

    def _end(self, entry: _Entry) -> None:
        entry.service.close()
        if isinstance(entry.item, _Receiving):
            entry.item.abandon("the upload URL was released")
        else:
            entry.item.close()

    def _file_hash(self, fd: int, info: os.stat_result) -> str:
        """SHA3-256 of an open file, remembered while it stays the same file, size and time."""
        key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        with self._lock:
            known = self._hashes.get(key)
        if known is not None:
            return known
        with os.fdopen(os.dup(fd), "rb") as file:
            digest = sha3_file(file)
        with self._lock:
            if len(self._hashes) >= _HASHES_KEPT:
                self._hashes.clear()
            self._hashes[key] = digest
        return digest

    def _watch(self) -> None:
        """Abandon uploads that started and then stalled (the sender died, or its daemon)."""
        period = max(0.2, min(5.0, self.stall_timeout / 4))
        while not self._closed.wait(period):
            now = time.monotonic()
            with self._lock:
                stalled = [
                    e.item
                    for e in self._entries.values()
                    if isinstance(e.item, _Receiving)
                    and e.item.started
                    and not e.item.done
                    and now - e.item.last > self.stall_timeout
                ]
            for item in stalled:
                log.warning(
                    "upload to %s stalled for %.0f s: abandoned", item.path, now - item.last
                )
                item.abandon(f"no chunk arrived for {self.stall_timeout:g} s")
