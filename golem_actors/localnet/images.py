"""Images for localnet providers, resolved the way a real provider resolves its task package.

A demand names its image in ``golem.srv.comp.task_package`` as ``hash:sha3:<hex>:<url>``
(sha3-224 of the file, as yapapi and the registry compute it). A provider uses its cached copy of
that hash, or downloads the URL, checks the sha3 and caches it. What the file is comes from its
content, never its name: a GVMI (squashfs, ``hsqs`` at offset 0, with its container config
appended: ``golem_actors.images.gvmi``) as real providers run, or a rootfs tarball (``.tar``,
``.tar.gz``), localnet's own lighter kind. Either becomes a tree the bubblewrap sandbox mounts
read-only as ``/``. No package at all means the host's own read-only system.

The store is a directory: ``images/<hex>.gvmi`` or ``images/<hex>.tar`` (the file byte for byte,
so its hash is the file's), ``images/<hex>.json`` (tag, source), ``rootfs/<hex>/`` (extracted
once, into a temporary directory renamed into place, so a rootfs that exists is complete) and,
for a GVMI, ``rootfs/<hex>.config.json``, its config, written before the rename.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import requests

from golem_actors.errors import GolemActorsError
from golem_actors.images.build import sha3_file
from golem_actors.images.gvmi import ContainerConfig, GvmiError, is_squashfs, read_gvmi
from golem_actors.images.squashfs import SquashfsError, ToolMissingError, unsquash
from golem_actors.images.tarballs import TarballError, check_tarball, extract_tarball
from golem_actors.images.tarballs import pack_directory as _pack

__all__ = ["Image", "ImageError", "ImageStore", "image_config", "parse_task_package"]

MAX_IMAGE_BYTES = 8 * 2**30  # a download larger than this is refused
_HEX = re.compile(r"[0-9a-f]{56}")  # sha3-224
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}(:[A-Za-z0-9._-]{1,128})?")
_KINDS = ("gvmi", "tar")  # file suffixes in the store
_CHUNK = 1 << 20


class ImageError(GolemActorsError, RuntimeError):
    """An image is missing, corrupt, unsafe or of a kind localnet cannot run."""


@dataclass(frozen=True)
class Image:
    hash: str  # sha3-224 of the file, hex
    tag: str | None
    size: int  # bytes of the file
    source: str  # the directory, file or URL it came from
    path: Path  # the file in the store
    kind: str = "tar"  # "gvmi" or "tar"


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


def normal_tag(tag: str) -> str:
    """``name`` means ``name:latest``, as registries read it."""
    return tag if ":" in tag.rpartition("/")[2] else f"{tag}:latest"


def image_config(rootfs: Path) -> ContainerConfig | None:
    """The container config of a GVMI's extracted rootfs; None for a tarball's."""
    try:
        body = json.loads((rootfs.parent / f"{rootfs.name}.config.json").read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot read the config of image {rootfs.name}: {exc}") from exc
    return ContainerConfig.from_json(body)


class ImageStore:
    """GVMIs and rootfs tarballs by sha3-224, and their extracted trees."""

    def __init__(self, root: Path, *, max_image_bytes: int = MAX_IMAGE_BYTES) -> None:
        self.root = Path(root).absolute()
        self.max_image_bytes = max_image_bytes
        self._images = self.root / "images"
        self._rootfs = self.root / "rootfs"
        self._lock = threading.Lock()
        self._busy: dict[str, threading.Lock] = {}

    def add(self, source: Path, *, tag: str | None = None) -> Image:
        """Store a directory (packed into a deterministic tarball), a GVMI or a tarball."""
        source = Path(source)
        if tag is not None and not _TAG.fullmatch(tag):
            raise ImageError(f"--tag must look like name:version (e.g. myapp:1.0), got {tag!r}")
        self._images.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self._images, suffix=".part", delete=False) as tmp:
            try:
                if source.is_dir():
                    _pack(source, tmp)
                elif source.is_file():
                    with source.open("rb") as src:
                        shutil.copyfileobj(src, tmp, _CHUNK)
                else:
                    raise ImageError(f"no image at {source}: give a directory, tarball or .gvmi")
                tmp.flush()
                return self._keep(Path(tmp.name), sha3_file(Path(tmp.name)), tag, str(source))
            except TarballError as exc:
                raise ImageError(str(exc)) from exc
            finally:
                Path(tmp.name).unlink(missing_ok=True)

    def list(self) -> list[Image]:
        if not self._images.is_dir():
            return []
        hashes = sorted({p.stem for kind in _KINDS for p in self._images.glob(f"*.{kind}")})
        found = (self.get(h) for h in hashes)
        return [image for image in found if image is not None]

    def get(self, hash_hex: str) -> Image | None:
        hash_hex = hash_hex.lower()
        if not _HEX.fullmatch(hash_hex):
            return None
        kind = next((k for k in _KINDS if (self._images / f"{hash_hex}.{k}").is_file()), None)
        if kind is None:
            return None
        path = self._images / f"{hash_hex}.{kind}"
        try:
            meta = json.loads((self._images / f"{hash_hex}.json").read_text())
        except (OSError, ValueError):
            meta = {}
        tag, source = meta.get("tag"), meta.get("source")
        return Image(hash_hex, tag, path.stat().st_size, source or "unknown", path, kind)

    def find_tag(self, tag: str) -> Image | None:
        """The image tagged ``tag`` (``name`` and ``name:latest`` are one tag)."""
        wanted = normal_tag(tag)
        for meta in sorted(self._images.glob("*.json")) if self._images.is_dir() else []:
            try:
                named = json.loads(meta.read_text()).get("tag")
            except (OSError, ValueError):
                continue
            image = self.get(meta.stem) if named and normal_tag(named) == wanted else None
            if image is not None:
                return image
        return None

    def rootfs(self, task_package: str | None, *, timeout: float = 60.0) -> Path | None:
        """The extracted rootfs for a demand's task package; ``None``: the host's system.

        A hash not in the store is downloaded from the package's URL (at most ``timeout``
        seconds and ``max_image_bytes``), verified and stored first. ``image_config`` of the
        answer is the image's container config (GVMIs only).
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
        return f"hash:sha3:{image.hash}:{base_url.rstrip('/')}/images/{image.path.name}"

    def _keep(self, tmp: Path, hash_hex: str, tag: str | None, source: str) -> Image:
        """Check an image file and move it into the store under its hash."""
        kind = _check_image(tmp, source)
        existing = self.get(hash_hex)
        if existing is None or tag is not None:
            meta = {"tag": tag or (existing.tag if existing else None), "source": source}
            _write_atomic(self._images / f"{hash_hex}.json", json.dumps(meta).encode())
        if existing is None:
            tmp.replace(self._images / f"{hash_hex}.{kind}")
        if tag is not None:
            self._untag_others(tag, hash_hex)
        image = self.get(hash_hex)
        assert image is not None
        return image

    def _untag_others(self, tag: str, keep: str) -> None:
        """A tag names one image: the one added last under it."""
        for image in self.list():
            if image.hash != keep and image.tag and normal_tag(image.tag) == normal_tag(tag):
                meta = {"tag": None, "source": image.source}
                _write_atomic(self._images / f"{image.hash}.json", json.dumps(meta).encode())

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
                return self._keep(Path(tmp.name), hash_hex, None, url)
            except TarballError as exc:
                raise ImageError(str(exc)) from exc
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
                f"image {hash_hex} is not here and {url} is unreachable ({exc}); add it with "
                "`golem-actors localnet images add DIR|TARBALL|NAME.gvmi`"
            ) from exc

    def _extract(self, image: Image, target: Path) -> Path:
        self._rootfs.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=self._rootfs, prefix=f".{image.hash[:12]}-"))
        tree = work / "rootfs"
        try:
            if image.kind == "gvmi":
                config = _unpack_gvmi(image, tree)
                body = json.dumps(config.to_json()).encode()
                _write_atomic(self._rootfs / f"{image.hash}.config.json", body)
            else:
                extract_tarball(image.path, tree)
            try:
                tree.rename(target)
            except OSError:
                if not target.is_dir():  # else another process extracted it first
                    raise
        except (TarballError, GvmiError, SquashfsError, OSError) as exc:
            raise ImageError(f"cannot extract image {image.hash}: {exc}") from exc
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return target


def _check_image(path: Path, source: str) -> str:
    """``gvmi`` or ``tar``, by content; a corrupt or unsafe image is refused here."""
    with path.open("rb") as image:
        if not is_squashfs(image.read(4)):
            check_tarball(path, source)
            return "tar"
        try:
            read_gvmi(image)
        except GvmiError as exc:
            raise ImageError(f"{source} is a corrupt GVMI: {exc}") from exc
    return "gvmi"


def _unpack_gvmi(image: Image, tree: Path) -> ContainerConfig:
    """Check the metadata again (the file could have changed), unpack, add volume mount points."""
    try:
        with image.path.open("rb") as f:
            config = read_gvmi(f).config
    except GvmiError as exc:
        raise ImageError(f"image {image.hash} is a corrupt GVMI: {exc}") from exc
    try:
        unsquash(image.path, tree)
    except ToolMissingError as exc:
        raise ImageError(f"cannot unpack GVMI {image.hash}: {exc}") from exc
    except SquashfsError as exc:  # the image's fault, as a rule: it is not kept
        image.path.unlink(missing_ok=True)
        image.path.with_suffix(".json").unlink(missing_ok=True)
        raise ImageError(f"image {image.hash} is a corrupt GVMI: {exc}") from exc
    for volume in config.volumes:
        _mount_point(tree, volume)
    return config


def _mount_point(tree: Path, volume: str) -> None:
    """The directory a volume mounts on, made in the tree; never through the image's links."""
    here = tree
    for part in PurePosixPath(volume).parts[1:]:
        here /= part
        if here.is_symlink() or (here.exists() and not here.is_dir()):
            raise ImageError(
                f"volume {volume}: {here.relative_to(tree)} in the image is in the way"
            )
        if not here.exists():
            here.mkdir(mode=0o755)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_bytes(data)
    tmp.replace(path)
