"""Images for localnet providers, resolved the way a real provider resolves its task package.

A demand names its image in ``golem.srv.comp.task_package`` as ``hash:sha3:<hex>:<url>``
(sha3-224, as yapapi computes it). A provider uses its cached copy of that hash, or downloads
the URL, checks the sha3 and caches it. On the real network an image is a ``.gvmi`` that needs a
VM; here it is a rootfs tarball (``.tar``, ``.tar.gz``) that the bubblewrap sandbox mounts
read-only as ``/``. No package at all means the host's own read-only system.

The store is a directory: ``images/<hex>.tar`` (the tarball byte for byte, so its hash is the
file's), ``images/<hex>.json`` (tag, source), and ``rootfs/<hex>/`` (extracted once, into a
temporary directory renamed into place, so a rootfs that exists is complete).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import IO

import requests

from golem_actors.errors import GolemActorsError

__all__ = ["GVMI_HINT", "Image", "ImageError", "ImageStore", "parse_task_package", "serve_images"]

GVMI_HINT = (
    "a .gvmi image needs a VM runtime; localnet runs rootfs tarballs: "
    "add one with `golem-actors localnet images add DIR`"
)
MAX_IMAGE_BYTES = 8 * 2**30  # a download larger than this is refused
_HEX = re.compile(r"[0-9a-f]{56}")  # sha3-224
_SERVED = re.compile(r"/images/([0-9a-f]{56})\.tar")
_CHUNK = 1 << 20
_SQUASHFS_MAGIC = b"hsqs"  # a .gvmi is a squashfs image


class ImageError(GolemActorsError, RuntimeError):
    """An image is missing, corrupt, unsafe or of a kind localnet cannot run."""


@dataclass(frozen=True)
class Image:
    hash: str  # sha3-224 of the tarball, hex
    tag: str | None
    size: int  # bytes of the tarball
    source: str  # the directory, file or URL it came from
    path: Path  # the tarball in the store


def parse_task_package(task_package: str) -> tuple[str, str]:
    """``(hex, url)`` of ``hash:sha3:<hex>:<url>`` (also the older ``hash://sha3:`` form)."""
    for prefix in ("hash:sha3:", "hash://sha3:"):
        if task_package.startswith(prefix):
            hex_hash, _, url = task_package[len(prefix) :].partition(":")
            if _HEX.fullmatch(hex_hash.lower()) and url:
                return hex_hash.lower(), url
    raise ImageError(
        f"golem.srv.comp.task_package {task_package!r} is not 'hash:sha3:<sha3-224 hex>:<url>'"
    )


class ImageStore:
    """Rootfs tarballs by sha3-224, and their extracted trees."""

    def __init__(self, root: Path, *, max_image_bytes: int = MAX_IMAGE_BYTES) -> None:
        self.root = Path(root).absolute()
        self.max_image_bytes = max_image_bytes
        self._images = self.root / "images"
        self._rootfs = self.root / "rootfs"
        self._lock = threading.Lock()
        self._busy: dict[str, threading.Lock] = {}

    def add(self, source: Path, *, tag: str | None = None) -> Image:
        """Store a directory (packed into a deterministic tarball) or a tarball."""
        source = Path(source)
        self._images.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self._images, suffix=".part", delete=False) as tmp:
            try:
                if source.is_dir():
                    _pack(source, tmp)
                elif source.is_file():
                    _refuse_gvmi(source)
                    with source.open("rb") as src:
                        shutil.copyfileobj(src, tmp, _CHUNK)
                else:
                    raise ImageError(f"no image at {source}: give a directory or a tarball")
                tmp.flush()
                return self._keep(Path(tmp.name), _sha3_file(Path(tmp.name)), tag, str(source))
            finally:
                Path(tmp.name).unlink(missing_ok=True)

    def list(self) -> list[Image]:
        if not self._images.is_dir():
            return []
        found = (self.get(p.stem) for p in sorted(self._images.glob("*.tar")))
        return [image for image in found if image is not None]

    def get(self, hash_hex: str) -> Image | None:
        hash_hex = hash_hex.lower()
        path = self._images / f"{hash_hex}.tar"
        if not _HEX.fullmatch(hash_hex) or not path.is_file():
            return None
        try:
            meta = json.loads((self._images / f"{hash_hex}.json").read_text())
        except (OSError, ValueError):
            meta = {}
        tag, source = meta.get("tag"), meta.get("source")
        return Image(hash_hex, tag, path.stat().st_size, source or "unknown", path)

    def rootfs(self, task_package: str | None, *, timeout: float = 60.0) -> Path | None:
        """The extracted rootfs for a demand's task package; ``None``: the host's system.

        A hash not in the store is downloaded from the package's URL (at most ``timeout``
        seconds and ``max_image_bytes``), verified and stored first.
        """
        if not task_package:
            return None
        hash_hex, url = parse_task_package(task_package)
        with self._lock:
            busy = self._busy.setdefault(hash_hex, threading.Lock())
        with busy:  # one download and extraction per image at a time
            target = self._rootfs / hash_hex
            if target.is_dir():
                return target
            image = self.get(hash_hex) or self._download(hash_hex, url, timeout)
            return self._extract(image, target)

    def task_package(self, image: Image, base_url: str) -> str:
        return f"hash:sha3:{image.hash}:{base_url.rstrip('/')}/images/{image.hash}.tar"

    def _keep(self, tmp: Path, hash_hex: str, tag: str | None, source: str) -> Image:
        """Check a tarball and move it into the store under its hash."""
        _check_tarball(tmp, source)
        existing = self.get(hash_hex)
        if existing is None or tag is not None:
            meta = {"tag": tag or (existing.tag if existing else None), "source": source}
            _write_atomic(self._images / f"{hash_hex}.json", json.dumps(meta).encode())
        if existing is None:
            tmp.replace(self._images / f"{hash_hex}.tar")
        image = self.get(hash_hex)
        assert image is not None
        return image

    def _download(self, hash_hex: str, url: str, timeout: float) -> Image:
        if not url.startswith(("http://", "https://")):
            raise ImageError(f"image {hash_hex} is not here and {url!r} is not an http(s) URL")
        deadline = time.monotonic() + timeout
        self._images.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self._images, suffix=".part", delete=False) as tmp:
            try:
                digest = hashlib.sha3_224()
                for chunk in self._fetch(url, deadline, hash_hex):
                    digest.update(chunk)
                    tmp.write(chunk)
                tmp.flush()
                got = digest.hexdigest()
                if got != hash_hex:
                    raise ImageError(
                        f"image hash mismatch: the task package names sha3 {hash_hex}, "
                        f"but {url} serves {got}"
                    )
                _refuse_gvmi(Path(tmp.name), url)
                return self._keep(Path(tmp.name), hash_hex, None, url)
            finally:
                Path(tmp.name).unlink(missing_ok=True)

    def _fetch(self, url: str, deadline: float, hash_hex: str) -> Iterator[bytes]:
        left = max(0.1, deadline - time.monotonic())
        try:
            with requests.get(url, stream=True, timeout=(min(left, 10.0), left)) as response:
                response.raise_for_status()
                size = 0
                for chunk in response.iter_content(_CHUNK):
                    size += len(chunk)
                    if size > self.max_image_bytes:
                        raise ImageError(f"{url} is larger than {self.max_image_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise ImageError(f"downloading {url} took longer than the time limit")
                    yield chunk
        except requests.RequestException as exc:
            raise ImageError(
                f"image {hash_hex} is not here and {url} is unreachable ({exc}); localnet's images"
                " are rootfs tarballs: add one with `golem-actors localnet images add DIR`"
            ) from exc

    def _extract(self, image: Image, target: Path) -> Path:
        self._rootfs.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=self._rootfs, prefix=f".{image.hash[:12]}-"))
        try:
            with tarfile.open(image.path, "r:*") as tar:
                tar.extractall(work, filter=_safe_member)  # noqa: S202 - the filter checks
            work.chmod(0o755)
            try:
                work.rename(target)
            except OSError:
                if not target.is_dir():  # else another process extracted it first
                    raise
        except (tarfile.TarError, OSError) as exc:
            raise ImageError(f"cannot extract image {image.hash}: {exc}") from exc
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
        return target


def serve_images(
    store: ImageStore, host: str = "127.0.0.1", port: int = 0
) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``GET /images/<hex>.tar`` from ``store``; already serving on a daemon thread.

    Returns the server and its base URL; stop it with ``shutdown()`` then ``server_close()``.
    """

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            match = _SERVED.fullmatch(self.path)
            image = store.get(match.group(1)) if match else None
            if image is None:
                self.send_error(404, "no such image")
                return
            with image.path.open("rb") as tarball:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-tar")
                self.send_header("Content-Length", str(image.size))
                self.end_headers()
                shutil.copyfileobj(tarball, self.wfile, _CHUNK)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the API's name
            pass  # requests are not worth a log line each

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    serve = functools.partial(server.serve_forever, poll_interval=0.05)  # prompt shutdown
    threading.Thread(target=serve, name="image-server", daemon=True).start()
    bound_host, bound_port = server.server_address[:2]
    return server, f"http://{bound_host!s}:{bound_port}"


def _refuse_gvmi(path: Path, source: str | None = None) -> None:
    with path.open("rb") as head:
        magic = head.read(4)
    if (source or path.name).endswith(".gvmi") or magic == _SQUASHFS_MAGIC:
        raise ImageError(f"{source or path}: {GVMI_HINT}")


def _sha3_file(path: Path) -> str:
    digest = hashlib.sha3_224()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_bytes(data)
    tmp.replace(path)


def _pack(source: Path, out: IO[bytes]) -> None:
    """A tarball of ``source`` that depends on its contents only (order, owners, times fixed)."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _walk(source):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(source).as_posix())
            if info is None or not (info.isfile() or info.isdir() or info.issym() or info.islnk()):
                raise ImageError(f"{path}: only files, directories and links go in an image")
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode &= 0o777
            if info.isfile():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)


def _walk(top: Path) -> Iterator[Path]:
    for entry in sorted(top.iterdir(), key=lambda p: p.name):
        yield entry
        if entry.is_dir() and not entry.is_symlink():
            yield from _walk(entry)


def _check_tarball(path: Path, source: str) -> None:
    """Refuse what is not a tarball, or holds a member that is unsafe anywhere."""
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                _check_member(member)
    except tarfile.TarError as exc:
        raise ImageError(f"{source} is not a rootfs tarball (.tar, .tar.gz): {exc}") from exc


def _check_member(member: tarfile.TarInfo) -> None:
    def unsafe(why: str) -> ImageError:
        return ImageError(f"unsafe tarball member {member.name!r}: {why}")

    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise unsafe("absolute paths and '..' are not allowed")
    if member.ischr() or member.isblk():
        raise unsafe("device nodes are not allowed")
    if member.islnk():
        link = PurePosixPath(member.linkname)
        if link.is_absolute() or ".." in link.parts:
            raise unsafe(f"hard link to {member.linkname!r} outside the image")
    if member.issym():
        link = PurePosixPath(member.linkname)
        depth = 0 if link.is_absolute() else len(name.parent.parts)
        for part in link.parts[1:] if link.is_absolute() else link.parts:
            depth += -1 if part == ".." else (part not in (".", ""))
            if depth < 0:
                raise unsafe(f"symlink to {member.linkname!r} outside the image")


def _safe_member(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """tarfile filter: the member rules, plus nothing written through a link on the host."""
    _check_member(member)
    root = os.path.realpath(dest)
    for name in (member.name, member.linkname if member.islnk() else ""):
        if not name:
            continue
        target = os.path.join(dest, name)  # noqa: PTH118 - tarfile speaks str
        parent = os.path.realpath(os.path.dirname(target))  # noqa: PTH120
        if parent != root and not parent.startswith(root + os.sep):
            raise ImageError(f"unsafe tarball member {member.name!r}: it writes through a link")
        if name == member.name and os.path.islink(target):  # noqa: PTH114
            raise ImageError(f"unsafe tarball member {member.name!r}: it replaces a link")
    mode = member.mode & 0o777 | (0o700 if member.isdir() else 0o600)
    uid, gid = os.getuid(), os.getgid()
    return member.replace(mode=mode, uid=uid, gid=gid, uname="", gname="", deep=False)
