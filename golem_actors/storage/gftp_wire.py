"""GFTP as both ends see it: URLs, the bus addresses, message names, limits, the SHA3-256 hash.

Pure helpers shared by the requestor's ``GftpStorage`` and localnet's exe-unit, so the two cannot
drift apart. Facts (yagna 0.17.6, ``/work/shared/notes/gftp-gsb.md``):

- a file is served at ``/public/gftp/<id>`` on the publisher's node; another node reaches it as
  ``/net/<nodeId>/gftp/<id>/<Message>`` (``/transfer/net/...`` from an exe-unit);
- the file hash is SHA3-256 in lowercase hex (yagna's ``hash_file_sha256`` really is SHA3);
- a transfer URL may carry the expected hash as ``hash:sha3:<hex>:<url>``; the real exe-unit
  then verifies what it downloads (``exe-unit/components/transfer/src/location.rs``);
- a reply that a GSB-API publisher sends to yagna must fit one 65,536-byte WebSocket message.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import IO

__all__ = [
    "CHUNK_CONTENT_MAX",
    "DOWNLOADS",
    "MAX_WS_MESSAGE",
    "UPLOADS",
    "GftpUrl",
    "HashedUrl",
    "file_address",
    "format_hashed",
    "new_hasher",
    "parse_gftp",
    "parse_hashed",
    "sha3_file",
]

GET_METADATA, GET_CHUNK = "GetMetadata", "GetChunk"
UPLOAD_CHUNK, UPLOAD_FINISHED = "UploadChunk", "UploadFinished"
DOWNLOADS = (GET_METADATA, GET_CHUNK)
UPLOADS = (UPLOAD_CHUNK, UPLOAD_FINISHED)

#: actix's default WebSocket frame limit on yagna's side: a bigger reply closes the socket.
MAX_WS_MESSAGE = 65_536
#: The most content a GetChunk reply carries through the GSB API (65,429 B measured to pass).
CHUNK_CONTENT_MAX = 65_000

_NODE = re.compile(r"0x[0-9a-f]{40}")
_HASHED = re.compile(r"hash:(?://)?([^:]+):(?:0x)?([0-9a-fA-F]+):(.+)", re.DOTALL)


@dataclass(frozen=True)
class GftpUrl:
    """``gftp://<node>/<id>``: who publishes, and the id the file is bound under."""

    node_id: str
    file_id: str

    def __str__(self) -> str:
        return f"gftp://{self.node_id}/{self.file_id}"


@dataclass(frozen=True)
class HashedUrl:
    """A transfer URL with the hash it must have (``None``: unchecked)."""

    url: str
    algorithm: str | None = None
    digest: bytes | None = None


def file_address(file_id: str) -> str:
    """Where the publisher binds a file on its own bus (``model::gftp::file_bus_id``)."""
    return f"/public/gftp/{file_id}"


def parse_gftp(url: str) -> GftpUrl:
    """``gftp://0x<40 hex>/<id>``; ``ValueError`` naming what is wrong otherwise."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "gftp" or not sep:
        raise ValueError(f"{url!r} is not a gftp:// URL")
    node, _, file_id = rest.partition("/")
    node = node.lower()
    if not _NODE.fullmatch(node):
        raise ValueError(f"gftp URL {url!r}: {node!r} is not a node id (0x and 40 hex digits)")
    file_id = file_id.partition("?")[0].partition("#")[0]
    if not file_id or "/" in file_id:
        raise ValueError(f"gftp URL {url!r} has no file id (or one with a '/')")
    return GftpUrl(node, file_id)


def parse_hashed(url: str) -> HashedUrl:
    """Split an optional ``hash:<alg>:<hex>:`` prefix off a transfer URL."""
    if not url.lower().startswith("hash:"):
        return HashedUrl(url)
    match = _HASHED.fullmatch(url)
    if match is None or len(match.group(2)) % 2:
        raise ValueError(f"malformed hash prefix in {url!r} (want hash:sha3:<hex>:<url>)")
    return HashedUrl(match.group(3), match.group(1).lower(), bytes.fromhex(match.group(2)))


def format_hashed(url: str, sha3_256_hex: str) -> str:
    return f"hash:sha3:{sha3_256_hex}:{url}"


def new_hasher(algorithm: str, digest: bytes) -> hashlib._Hash:
    """The hasher a ``hash:`` prefix asks for: sha3 of the digest's size, as the exe-unit has."""
    sizes = {28: hashlib.sha3_224, 32: hashlib.sha3_256, 48: hashlib.sha3_384, 64: hashlib.sha3_512}
    make = sizes.get(len(digest)) if algorithm == "sha3" else None
    if make is None:
        raise ValueError(f"unsupported digest {algorithm} of {len(digest) * 8} bits")
    return make()


def sha3_file(file: IO[bytes], *, block: int = 1 << 20) -> str:
    """SHA3-256 (hex) of an open file from its start, read in blocks (bounded memory)."""
    file.seek(0)
    hasher = hashlib.sha3_256()
    while data := file.read(block):
        hasher.update(data)
    return hasher.hexdigest()
