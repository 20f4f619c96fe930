"""Resource limits of a sandbox: rlimits, cpu affinity, and a pids cgroup for root providers.

Limits are set inside the sandbox's user namespace, so ``RLIMIT_NPROC`` counts that sandbox
only. The kernel exempts uid 0 from it: a provider running as root enforces ``max_processes``
with a pids cgroup where it may write one.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import resource
from dataclasses import dataclass
from pathlib import Path

from golem_actors import arguments

__all__ = ["Limits", "PidsCgroup", "apply_limits", "pick_cpus", "rlimits_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Per-command limits, ``None`` = unlimited, enforced where the OS allows.

    ``cpu_threads`` pins to that many cpus (affinity; sandboxes spread over them). ``mem_bytes``
    is ``RLIMIT_AS``: address space, so runtimes that reserve much virtual memory need headroom;
    it also caps ``/tmp``. ``max_processes`` counts processes and threads (of the whole
    container, its init included). ``file_size_bytes`` is ``RLIMIT_FSIZE`` (the writer gets
    ``SIGXFSZ``). ``tmp_bytes``: ``/tmp``'s size (default ``mem_bytes`` or 1 GiB, whichever is
    smaller).
    """

    cpu_threads: int | None = None
    mem_bytes: int | None = None
    max_processes: int | None = None
    file_size_bytes: int | None = None
    tmp_bytes: int | None = None

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value is not None:
                arguments.whole(f"Limits.{name}", value, ge=1)


def rlimits_of(limits: Limits) -> list[tuple[int, int]]:
    """``(RLIMIT_*, value)`` a command runs under, clamped to this process's hard limits."""
    pairs = [(resource.RLIMIT_CORE, 0)]  # no core files in volumes or host handlers
    for which, value in (
        (resource.RLIMIT_AS, limits.mem_bytes),
        (resource.RLIMIT_FSIZE, limits.file_size_bytes),
        (resource.RLIMIT_NPROC, limits.max_processes),
    ):
        if value is not None:
            pairs.append((which, value))
    clamped = []
    for which, value in pairs:
        hard = resource.getrlimit(which)[1]
        clamped.append((which, value if hard == resource.RLIM_INFINITY else min(value, hard)))
    return clamped


def pick_cpus(threads: int | None, index: int) -> list[int]:
    cpus = sorted(os.sched_getaffinity(0))
    if threads is None or threads >= len(cpus):
        return []
    return [cpus[(index * threads + i) % len(cpus)] for i in range(threads)]


def apply_limits(
    pid: int, limits: Limits, cpus: list[int], *, rlimits: bool = True
) -> PidsCgroup | None:
    """Limit a sandbox's pid 1 before it runs; what it starts inherits them.

    ``rlimits=False`` (a container's init) sets only ``RLIMIT_CORE``: the init applies the rest
    to each command it starts, so that it may itself always start one. Raises ``OSError``;
    ``ProcessLookupError`` if it died setting up.
    """
    pairs = rlimits_of(limits) if rlimits else rlimits_of(Limits())
    for which, value in pairs:
        resource.prlimit(pid, which, (value, value))
    if cpus:
        os.sched_setaffinity(pid, cpus)
    if limits.max_processes is None or os.geteuid() != 0:
        return None
    return _pids_cgroup(pid, limits.max_processes)


class PidsCgroup:
    """A pids cgroup holding one sandbox: ``max_processes`` for a provider running as root."""

    _count = itertools.count()

    def __init__(self, base: Path, pid: int, limit: int) -> None:
        self.path = base / f"golem-sandbox-{os.getpid()}-{next(self._count)}"
        self.path.mkdir()
        try:
            (self.path / "pids.max").write_text(str(limit))
            (self.path / "cgroup.procs").write_text(str(pid))
        except OSError:
            self.remove()
            raise

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.rmdir()  # empty: the pid namespace is gone once bwrap is reaped


def _pids_cgroup(pid: int, limit: int) -> PidsCgroup | None:
    base = _pids_cgroup_base()
    try:
        if base is None:
            raise OSError("no writable pids cgroup")  # noqa: TRY301 - one warning path
        return PidsCgroup(base, pid, limit)
    except OSError as exc:
        _warn_once(f"max_processes is not enforced: root ignores RLIMIT_NPROC and {exc}")
        return None


@functools.cache
def _pids_cgroup_base() -> Path | None:
    """This process's pids cgroup, if it may make children there (cgroup v1, or v2 delegating)."""
    mine: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, where = line.split(":", 2)
            mine.update(dict.fromkeys(controllers.split(","), where))
    for key, root in (("pids", "/sys/fs/cgroup/pids"), ("", "/sys/fs/cgroup")):
        base = Path(root, mine.get(key, "/nowhere").lstrip("/"))
        with contextlib.suppress(OSError):
            delegated = key == "pids" or "pids" in (base / "cgroup.subtree_control").read_text()
            if delegated and base.is_dir() and os.access(base, os.W_OK):
                return base
    return None


@functools.cache
def _warn_once(message: str) -> None:
    log.warning("%s", message)
