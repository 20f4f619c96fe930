"""ExeScript ``transfer``: files between an activity's ``/golem/*`` volumes and http(s) or
gftp URLs.

Like the real exe-unit, transfers run in the provider (not in the sandbox): a download is a GET
(or GFTP ``GetChunk``s, see ``gftp``) written into a volume, an upload a PUT (or GFTP
``UploadChunk``s) of a volume's file, and ``container:`` to ``container:`` a copy. A source may
carry the hash it must have (``hash:sha3:<hex>:<url>``), checked before the file appears.
Every container path goes through the sandbox's ``host_path``, which refuses ``..``, paths
outside the volumes and symlinks that lead out; files are then opened with ``O_NOFOLLOW`` so a
symlink planted in the last component is refused too. Network waits are bounded by ``deadline``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import unquote, urlsplit

import requests

from golem_actors.errors import GolemActorsError
from golem_actors.localnet.gftp import GftpError, GftpTransfers
from golem_actors.storage.gftp_wire import HashedUrl, new_hasher, parse_hashed

__all__ = ["TransferError", "transfer"]

HostPath = Callable[[str], Path]
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
CHUNK = 1 << 16


class TransferError(GolemActorsError):
    """The transfer failed or was refused; the message is the command's result message."""


def transfer(
    src: str,
    dst: str,
    *,
    host_path: HostPath,
    deadline: float,
    cancel: threading.Event,
    fmt: str | None = None,
    gftp: GftpTransfers | None = None,
) -> None:
    """Copy ``src`` to ``dst`` (``container:/golem/...``, ``http(s)://...`` or, with ``gftp``,
    ``gftp://...``), by ``deadline`` (``time.monotonic()``); ``cancel`` stops it between
    chunks."""
    if fmt is not None:
        raise TransferError(f"transfer format {fmt!r} (archives) is not supported by localnet")
    try:
        hashed = parse_hashed(src) if isinstance(src, str) else HashedUrl(src)
    except ValueError as exc:
        raise TransferError(f"transfer from: {exc}") from None
    src = hashed.url
    src_kind, dst_kind = _kind(src, "from"), _kind(dst, "to")
    if "gftp" in (src_kind, dst_kind) and gftp is None:
        raise TransferError("gftp transfers need the provider's bus, which this runtime lacks")
    try:
        if src_kind == "container" and dst_kind == "container":
            _copy(_container(src, host_path), _container(dst, host_path, name_from=src))
        elif src_kind in ("http", "gftp") and dst_kind == "container":
            target = _container(dst, host_path, name_from=src)
            with _create(target) as out:
                sink = _Verified(out, hashed)
                if src_kind == "gftp":
                    assert gftp is not None
                    gftp.download(src, sink, deadline=deadline, cancel=cancel)
                else:
                    _download(src, sink, deadline, cancel)
                sink.check()
        elif src_kind == "container" and dst_kind == "gftp":
            assert gftp is not None
            with _open_source(_container(src, host_path)) as source:
                gftp.upload(source, dst, deadline=deadline, cancel=cancel)
        elif src_kind == "container" and dst_kind == "http":
            _upload(_container(src, host_path), dst, deadline)
        else:
            raise TransferError(f"transfer needs a container: side, got {src!r} -> {dst!r}")
    except GftpError as exc:
        raise TransferError(str(exc)) from exc


class _Verified:
    """Writes through to ``out``, hashing on the way when the source named its hash."""

    def __init__(self, out: IO[bytes], hashed: HashedUrl) -> None:
        self._out, self._hashed = out, hashed
        self._hasher: hashlib._Hash | None = None
        if hashed.algorithm is not None and hashed.digest is not None:
            try:
                self._hasher = new_hasher(hashed.algorithm, hashed.digest)
            except ValueError as exc:
                raise TransferError(f"transfer from: {exc}") from None

    def write(self, data: bytes) -> int:
        if self._hasher is not None:
            self._hasher.update(data)
        return self._out.write(data)

    def check(self) -> None:
        if self._hasher is None or self._hasher.digest() == self._hashed.digest:
            return
        expected = (self._hashed.digest or b"").hex()
        raise TransferError(
            f"hash mismatch: {self._hashed.url} has {self._hasher.name} {self._hasher.hexdigest()},"
            f" expected {expected}"
        )


def _kind(url: str, side: str) -> str:
    scheme = url.partition(":")[0].lower() if isinstance(url, str) else ""
    if scheme == "container":
        return "container"
    if scheme in ("http", "https") and urlsplit(url).netloc:
        return "http"
    if scheme == "gftp":
        return "gftp"
    raise TransferError(
        f"transfer {side}: {url!r} is not a container: path, an http(s) or a gftp URL"
    )


def _container(url: str, host_path: HostPath, *, name_from: str | None = None) -> Path:
    """The host file behind ``container:<path>``; a path ending in ``/`` (or naming a
    directory) receives the source's file name, as the real exe-unit does."""
    path = url.partition(":")[2]
    if not path.startswith("/"):
        raise TransferError(f"container path must be absolute, got {url!r}")
    try:
        host = host_path(path)
    except ValueError as exc:  # SandboxPathError: an escape attempt, or no such volume
        raise TransferError(f"transfer refused: {exc}") from exc
    if name_from is not None and (path.endswith("/") or host.is_dir()):
        name = PurePosixPath(unquote(urlsplit(name_from.partition(":")[2]).path)).name
        if name in ("", ".", ".."):
            raise TransferError(f"cannot tell a file name for {url!r} from {name_from!r}")
        return _container(f"container:{path.rstrip('/')}/{name}", host_path)
    return host


@contextmanager
def _create(target: Path) -> Iterator[IO[bytes]]:
    """Write via a temporary file renamed over ``target``: a reader never sees half a file,
    and the rename replaces a symlink instead of following it."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise TransferError(f"cannot write {target.name}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def _open_source(source: Path) -> IO[bytes]:
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise TransferError(f"cannot read {source.name}: {exc.strerror}") from exc
    file = os.fdopen(fd, "rb")
    if not os.path.isfile(fd):  # noqa: PTH113 - checks the opened descriptor, not a path
        file.close()
        raise TransferError(f"{source.name} is not a regular file")
    return file


def _copy(source: Path, target: Path) -> None:
    with _open_source(source) as src, _create(target) as out:
        shutil.copyfileobj(src, out, CHUNK)


def _timeouts(deadline: float) -> tuple[float, float]:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TransferError("transfer timed out (this provider's limit per command)")
    return min(CONNECT_TIMEOUT, left), min(READ_TIMEOUT, left)


def _download(url: str, out: _Verified, deadline: float, cancel: threading.Event) -> None:
    try:
        with requests.get(url, stream=True, timeout=_timeouts(deadline)) as response:
            if response.status_code >= 400:  # noqa: PLR2004
                raise TransferError(f"download from {url} failed: HTTP {response.status_code}")
            for chunk in response.iter_content(CHUNK):
                if cancel.is_set():
                    raise TransferError("transfer interrupted: the activity is stopping")
                if time.monotonic() > deadline:
                    raise TransferError("transfer timed out (this provider's limit per command)")
                out.write(chunk)
    except requests.RequestException as exc:
        raise TransferError(f"download from {url} failed: {exc}") from exc


def _upload(source: Path, url: str, deadline: float) -> None:
    with _open_source(source) as body:
        size = os.fstat(body.fileno()).st_size
        try:
            response = requests.put(
                url, data=body, headers={"Content-Length": str(size)}, timeout=_timeouts(deadline)
            )
        except requests.RequestException as exc:
            raise TransferError(f"upload to {url} failed: {exc}") from exc
    with response:
        if response.status_code >= 400:  # noqa: PLR2004
            raise TransferError(f"upload to {url} failed: HTTP {response.status_code}")
