"""An activity's volumes: container paths mapped to host files, and escapes out of them refused.

Paths are resolved component by component, following symlinks the way the sandbox sees them
(absolute targets are container paths), so ``..``, absolute paths elsewhere and symlinks that
lead out of the volumes are refused. The answer is only as stable as the volume: while a
container's processes run they can swap a directory for a symlink, so callers that open the
result (transfers) do it while the container is paused (``Sandbox.paused``).
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from golem_actors.errors import GolemActorsError

__all__ = ["VOLUMES", "SandboxPathError", "host_path", "remove_tree"]

VOLUMES = ("/golem/work", "/golem/input", "/golem/output", "/golem/resource")
_MAX_SYMLINKS = 40  # the kernel's own limit (ELOOP)


class SandboxPathError(GolemActorsError, ValueError):
    """A container path that is not inside the activity's volumes."""


def host_path(container_path: str, volumes: Mapping[str, Path]) -> Path:
    """The host file behind ``container_path``, symlinks resolved as the sandbox sees them.

    Refused: relative paths, ``..``, paths outside the volumes and symlinks leading out.
    """
    if not isinstance(container_path, str) or not container_path.startswith("/"):
        raise SandboxPathError(f"{container_path!r} is not an absolute container path")
    if "\0" in container_path or ".." in PurePosixPath(container_path).parts:
        raise SandboxPathError(f"{container_path!r} may not contain '..' or NUL")
    return _resolve(container_path, volumes)


def _resolve(container_path: str, volumes: Mapping[str, Path]) -> Path:
    """Walk ``container_path`` a component at a time, following symlinks as the sandbox would."""
    pending = list(PurePosixPath(container_path).parts[1:])
    done: list[str] = []
    hops = 0
    while pending:
        name = pending.pop(0)
        if name == "..":  # only from a symlink's target; ``done`` has no symlinks left
            done = done[:-1]
            continue
        host = _host_of([*done, name], volumes)
        if host is None or not host.is_symlink():
            done.append(name)
            continue
        hops += 1
        if hops > _MAX_SYMLINKS:
            raise SandboxPathError(f"{container_path!r}: too many levels of symlinks")
        target = PurePosixPath(host.readlink())
        done = [] if target.is_absolute() else done
        pending = [p for p in target.parts if p != "/"] + pending
    host = _host_of(done, volumes)
    if host is None:
        where = "/" + "/".join(done)
        via = "" if where == container_path else f" (it leads to {where})"
        volumes_list = ", ".join(VOLUMES)
        raise SandboxPathError(f"{container_path!r} is outside the volumes{via}: {volumes_list}")
    return host


def _host_of(parts: Sequence[str], volumes: Mapping[str, Path]) -> Path | None:
    for container, host in volumes.items():
        root = PurePosixPath(container).parts[1:]
        if tuple(parts[: len(root)]) == root:
            return host.joinpath(*parts[len(root) :])
    return None


def remove_tree(path: Path) -> None:
    """``rmtree``, after making every directory enterable: a command may have locked its own."""
    if not path.exists():
        return
    for dirpath, dirnames, _ in os.walk(path):  # top-down: fixed before it is entered
        for name in dirnames:
            target = f"{dirpath}/{name}"
            if stat.S_ISDIR(os.lstat(target).st_mode):  # never through a symlink
                os.chmod(target, 0o700)  # noqa: PTH101
    shutil.rmtree(path)
