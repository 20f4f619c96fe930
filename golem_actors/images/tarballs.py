"""Rootfs tarballs: packed deterministically from a directory, checked and extracted safely.

A rootfs may hold absolute symlinks (``/etc/alternatives/...``): inside the image they resolve
in the image. What is refused is what escapes on the host or anywhere: absolute or ``..`` member
names, links leading out, device nodes, and (while extracting) anything written through a link.
localnet's image store and ``golem-actors image build TARBALL`` both use it.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from golem_actors.errors import GolemActorsError

__all__ = ["TarballError", "check_tarball", "extract_tarball", "pack_directory"]


class TarballError(GolemActorsError, ValueError):
    """Not a tarball, or a tarball with a member that is unsafe to extract."""


def pack_directory(source: Path, out: IO[bytes]) -> None:
    """A tarball of ``source`` that depends on its contents only (order, owners, times fixed)."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _walk(source):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(source).as_posix())
            if info is None or not (info.isfile() or info.isdir() or info.issym() or info.islnk()):
                raise TarballError(f"{path}: only files, directories and links go in an image")
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode &= 0o777
            if info.isfile():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)


def check_tarball(path: Path, source: str) -> None:
    """Refuse what is not a tarball, or holds a member that is unsafe anywhere."""
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                _check_member(member)
    except tarfile.TarError as exc:
        raise TarballError(f"{source} is not a rootfs tarball (.tar, .tar.gz): {exc}") from exc


def extract_tarball(path: Path, dest: Path) -> None:
    """Extract into ``dest`` (made here): owned by us, readable by us, nothing outside."""
    dest.mkdir(mode=0o700)
    with tarfile.open(path, "r:*") as tar:
        tar.extractall(dest, filter=_safe_member)  # noqa: S202 - the filter checks
    dest.chmod(0o755)


def _walk(top: Path) -> Iterator[Path]:
    for entry in sorted(top.iterdir(), key=lambda p: p.name):
        yield entry
        if entry.is_dir() and not entry.is_symlink():
            yield from _walk(entry)


def _check_member(member: tarfile.TarInfo) -> None:
    def unsafe(why: str) -> TarballError:
        return TarballError(f"unsafe tarball member {member.name!r}: {why}")

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
            raise TarballError(f"unsafe tarball member {member.name!r}: it writes through a link")
        if name == member.name and os.path.islink(target):  # noqa: PTH114
            raise TarballError(f"unsafe tarball member {member.name!r}: it replaces a link")
    mode = member.mode & 0o777 | (0o700 if member.isdir() else 0o600)
    uid, gid = os.getuid(), os.getgid()
    return member.replace(mode=mode, uid=uid, gid=gid, uname="", gname="", deep=False)
