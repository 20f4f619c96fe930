"""Debian's squashfs-tools, run as the real Golem tools run them: the I/O edge of GVMI handling.

``make_squashfs`` is gvmkit-build's ``mksquashfs ... -comp lzo -noappend`` plus what makes a
build from a directory reproducible and owner-neutral (every file root's, times fixed, no
xattrs): the same tree gives the same image and so the same sha3. ``unsquash`` extracts an image
and then makes the tree safe for an unprivileged sandbox to use as its root: no device nodes,
fifos or sockets, no setuid/setgid bits, every file ours and readable by us (the VM's processes
run as root in the guest and read everything; a sandbox's single uid must too).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

from golem_actors.errors import GolemActorsError

__all__ = [
    "INSTALL_HINT",
    "SquashfsError",
    "ToolMissingError",
    "find_tool",
    "make_squashfs",
    "unsquash",
]

INSTALL_HINT = "install Debian's squashfs-tools package: sudo apt-get install squashfs-tools"
_STDERR_TAIL = 600


class SquashfsError(GolemActorsError, RuntimeError):
    """squashfs-tools are missing, or mksquashfs/unsquashfs failed (the message says why)."""


class ToolMissingError(SquashfsError):
    """mksquashfs or unsquashfs is not installed (the message names the package)."""


def find_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolMissingError(f"{name} is not installed; {INSTALL_HINT}")
    return path


def make_squashfs(
    source: Path, out: Path, *, pseudo_dirs: Sequence[str] = (), timeout: float = 3600.0
) -> None:
    """``source``'s contents as the root of a new squashfs image at ``out`` (replaced).

    ``pseudo_dirs`` (relative paths, parents first) are added as empty directories.
    """
    argv = [find_tool("mksquashfs"), str(source), str(out), "-comp", "lzo", "-noappend"]
    argv += ["-all-root", "-no-xattrs", "-mkfs-time", "0", "-all-time", "0"]
    for directory in pseudo_dirs:
        argv += ["-p", f"{directory} d 755 0 0"]
    _run([*argv, "-quiet", "-no-progress"], "mksquashfs", timeout)


def unsquash(image: Path, dest: Path, *, timeout: float = 600.0) -> None:
    """Extract the squashfs image at the start of ``image`` into ``dest`` (must not exist)."""
    argv = [find_tool("unsquashfs"), "-d", str(dest), "-no-xattrs", "-quiet", "-no-progress"]
    _run([*argv, str(image)], "unsquashfs", timeout)
    _neutralise(dest)


def _run(argv: list[str], name: str, timeout: float) -> None:
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise SquashfsError(f"{name} took longer than {timeout:g} s") from None
    except OSError as exc:
        raise SquashfsError(f"cannot run {name}: {exc}") from exc
    if done.returncode != 0:
        text = (done.stderr or done.stdout).decode(errors="replace").strip()
        tail = text[-_STDERR_TAIL:] or f"exit code {done.returncode}"
        raise SquashfsError(f"{name} failed: {tail}")


def _neutralise(root: Path) -> None:
    """Drop special files and set-id bits; make everything ours and readable by us."""
    as_root = os.geteuid() == 0
    uid, gid = os.getuid(), os.getgid()
    root.chmod(0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)  # noqa: PTH118 - os.walk speaks str
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                if as_root:
                    os.lchown(path, uid, gid)
                continue
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                os.unlink(path)  # noqa: PTH108 - the sandbox makes its own /dev
                continue
            if as_root:
                os.chown(path, uid, gid, follow_symlinks=False)
            owner = 0o700 if stat.S_ISDIR(info.st_mode) else 0o600
            os.chmod(path, info.st_mode & 0o777 | owner, follow_symlinks=False)  # noqa: PTH101
