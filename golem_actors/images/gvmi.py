"""The GVMI format: a squashfs image followed by its container config, as Golem's VM runs it.

Layout (gvmkit-build's ``metadata.rs``, read back by ``ya-runtime-vm``'s ``deploy.rs``)::

    <squashfs image> <CRC-32 of the JSON, 4 bytes little-endian> <JSON> <len(JSON), 8 ASCII digits>

The JSON is Docker's container config (``Env``, ``Cmd``, ``Entrypoint``, ``WorkingDir``,
``Volumes``, ...), as ``docker inspect`` shows it under ``Config``. The VM runtime uses ``Env``
as each process's whole environment, ``WorkingDir`` (or ``/``) as its directory, and mounts a
writable volume at every path of ``Volumes``; ``Entrypoint``/``Cmd`` only matter to clients that
start the image's own program. The CRC is IEEE CRC-32 (``zlib.crc32``).

Pure code: it reads file objects it is given and returns bytes; ``squashfs.py`` runs the tools.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any

from golem_actors.errors import GolemActorsError

__all__ = [
    "SQUASHFS_MAGIC",
    "ContainerConfig",
    "GvmiError",
    "GvmiInfo",
    "check_squashfs",
    "check_volume",
    "encode_metadata",
    "is_squashfs",
    "read_gvmi",
]

SQUASHFS_MAGIC = b"hsqs"  # a squashfs superblock starts with it (little-endian)
SUPERBLOCK_BYTES = 96
_CRC_BYTES, _LENGTH_DIGITS = 4, 8
MAX_METADATA_BYTES = 16 * 2**20  # a config is a few KiB; the 8 digits would allow 95 MiB
_TYPED = ("Env", "Cmd", "Entrypoint", "WorkingDir", "Volumes")
_NO_VOLUMES_UNDER = ("/proc", "/dev", "/sys")  # the sandbox (and the VM) mount their own there


class GvmiError(GolemActorsError, ValueError):
    """A GVMI that is corrupt, truncated or not a GVMI, or a config that cannot be one."""


@dataclass(frozen=True)
class ContainerConfig:
    """The fields of a Docker container config that Golem's VM runtime applies.

    ``env`` holds ``KEY=VALUE`` strings as Docker writes them; ``other`` keeps every other field
    of a config read from an image, so writing it back loses nothing.
    """

    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    working_dir: str = ""
    volumes: tuple[str, ...] = ()  # sorted, no duplicates
    other: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "volumes", tuple(sorted(set(self.volumes))))  # a set, in effect
        if self.working_dir and not self.working_dir.startswith("/"):
            raise GvmiError(f"WorkingDir must be an absolute path, got {self.working_dir!r}")
        for volume in self.volumes:
            check_volume(volume)

    @property
    def env_map(self) -> dict[str, str]:
        """``Env`` as a mapping; entries without ``=`` (Docker never writes them) are skipped."""
        pairs = (entry.partition("=") for entry in self.env)
        return {key: value for key, sep, value in pairs if key and sep}

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = dict(self.other)
        body["Env"] = list(self.env)
        if self.cmd:
            body["Cmd"] = list(self.cmd)
        if self.entrypoint:
            body["Entrypoint"] = list(self.entrypoint)
        body["WorkingDir"] = self.working_dir
        body["Volumes"] = {path: {} for path in self.volumes}
        return body

    @classmethod
    def from_json(cls, body: Any) -> ContainerConfig:
        """Parse a config read from an image; null fields are empty, wrong types are errors."""
        if not isinstance(body, dict):
            raise GvmiError(f"the GVMI config is not a JSON object: {body!r:.80}")
        volumes = body.get("Volumes") or {}
        if not isinstance(volumes, dict):
            raise GvmiError(f"the GVMI config's Volumes is not an object: {volumes!r:.80}")
        working_dir = body.get("WorkingDir") or ""
        if not isinstance(working_dir, str):
            raise GvmiError(f"the GVMI config's WorkingDir is not a string: {working_dir!r:.80}")
        return cls(
            env=_strings(body, "Env"),
            entrypoint=_strings(body, "Entrypoint"),
            cmd=_strings(body, "Cmd"),
            working_dir=working_dir.strip(),
            volumes=tuple(volumes),
            other={k: v for k, v in body.items() if k not in _TYPED},
        )


@dataclass(frozen=True)
class GvmiInfo:
    config: ContainerConfig
    squashfs_bytes: int  # the image before the metadata
    size: int  # the whole file


def check_volume(path: str) -> None:
    """A volume is an absolute, normalised path other than ``/`` and the sandbox's own mounts."""
    pure = PurePosixPath(path)
    if not path.startswith("/") or ".." in pure.parts or str(pure) != path or path == "/":
        raise GvmiError(f"a volume must be an absolute path below '/' (no '..'), got {path!r}")
    for own in _NO_VOLUMES_UNDER:
        if pure == PurePosixPath(own) or PurePosixPath(own) in pure.parents:
            raise GvmiError(f"a volume cannot be at {path!r}: {own} is the system's own")


def encode_metadata(config: ContainerConfig) -> bytes:
    """What follows the squashfs image: CRC-32 (LE) of the JSON, the JSON, its length."""
    body = json.dumps(config.to_json(), separators=(",", ":")).encode()
    if len(body) > MAX_METADATA_BYTES:
        raise GvmiError(f"the container config is {len(body)} bytes, over {MAX_METADATA_BYTES}")
    crc = zlib.crc32(body).to_bytes(_CRC_BYTES, "little")
    return crc + body + f"{len(body):0{_LENGTH_DIGITS}d}".encode()


def is_squashfs(head: bytes) -> bool:
    return head[: len(SQUASHFS_MAGIC)] == SQUASHFS_MAGIC


def check_squashfs(head: bytes, available: int) -> None:
    """Refuse what is not a squashfs 4 superblock, or one longer than the bytes there are."""
    if len(head) < SUPERBLOCK_BYTES or not is_squashfs(head):
        raise GvmiError("not a squashfs image (no 'hsqs' superblock at offset 0)")
    major, minor = struct.unpack_from("<HH", head, 28)
    if major != 4:  # noqa: PLR2004 - squashfs 4.0 is the only format Linux mounts
        raise GvmiError(f"squashfs {major}.{minor} is not supported (4.x is)")
    (bytes_used,) = struct.unpack_from("<Q", head, 40)
    if bytes_used > available:
        raise GvmiError(
            f"truncated squashfs: its superblock says {bytes_used} bytes, "
            f"the file holds {available} before the metadata"
        )


def read_gvmi(image: IO[bytes]) -> GvmiInfo:
    """Check a GVMI's metadata (length, CRC, JSON) and squashfs superblock; its config."""
    size = image.seek(0, 2)
    if size < _CRC_BYTES + _LENGTH_DIGITS:
        raise GvmiError(f"{size} bytes are too few to hold GVMI metadata")
    image.seek(size - _LENGTH_DIGITS)
    digits = image.read(_LENGTH_DIGITS)
    if not (digits.isascii() and digits.isdigit()):
        raise GvmiError("no GVMI metadata: the file does not end in an 8-digit length (truncated?)")
    length = int(digits)
    squashfs_bytes = size - _LENGTH_DIGITS - length - _CRC_BYTES
    if length > MAX_METADATA_BYTES or squashfs_bytes < 0:
        raise GvmiError(f"GVMI metadata of {length} bytes does not fit a {size}-byte file")
    image.seek(squashfs_bytes)
    stored = int.from_bytes(image.read(_CRC_BYTES), "little")
    body = image.read(length)
    computed = zlib.crc32(body)
    if computed != stored:
        raise GvmiError(
            f"GVMI metadata CRC mismatch (stored {stored:08x}, computed {computed:08x}): "
            "the image is corrupt"
        )
    try:
        config = ContainerConfig.from_json(json.loads(body))
    except ValueError as exc:  # JSON errors and GvmiError alike
        raise GvmiError(f"bad GVMI config: {exc}") from None
    image.seek(0)
    check_squashfs(image.read(SUPERBLOCK_BYTES), squashfs_bytes)
    return GvmiInfo(config, squashfs_bytes, size)


def _strings(body: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GvmiError(f"the GVMI config's {key} is not a list of strings: {value!r:.80}")
    return tuple(value)
