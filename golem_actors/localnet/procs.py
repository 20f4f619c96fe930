"""A container's processes seen from the host: its tree, its cpu time, pausing it.

The tree is walked from the top through ``/proc/<pid>/task/<tid>/children``, which costs one
read per process of the container, not a scan of the host's ``/proc``. Parents are read before
their children, so a process reaped in the middle of a walk is missed (counted neither in its
parent's ``cutime`` nor by itself) rather than counted twice: a walk may come out low, never
high, and callers keep the largest figure seen.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from golem_actors.localnet import bwrap
from golem_actors.localnet.bwrap import SandboxError

__all__ = ["continue_all", "namespace_of", "paused", "stop_tree", "tree_cpu", "walk"]

PAUSE_TIMEOUT = 5.0  # for every process to stop; one in uninterruptible sleep may take longer
_TICK = os.sysconf("SC_CLK_TCK")
_DONE = "TtZXx"  # stopped, traced, zombie, dead
_POLL = 0.001


def _stat(pid: int | str) -> list[str] | None:
    """``/proc/<pid>/stat`` from the field after the command name (the state) on."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                text = (task / "children").read_text()
                kids += (int(kid) for kid in text.split())
    return kids


def walk(root: int) -> Iterator[tuple[int, list[str]]]:
    """``root`` and its descendants, each before its children, with their stat fields."""
    pending = [root]
    while pending:
        pid = pending.pop()
        fields = _stat(pid)
        if fields is not None:
            yield pid, fields
            pending += _children(pid)


def tree_cpu(root: int) -> float:
    """User + system seconds of ``root``'s live tree and of all its members reaped."""
    ticks = 0
    for _, fields in walk(root):
        with contextlib.suppress(IndexError, ValueError):
            ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return ticks / _TICK


def _all_stopped(pid: int) -> bool:
    """Every thread of ``pid`` is stopped (or it is gone)."""
    try:
        tids = [task.name for task in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return True
    states = (_stat(f"{pid}/task/{tid}") for tid in tids)
    return all(fields is None or fields[0] in _DONE for fields in states)


def _pidfd_in(pid: int, namespace: str) -> int | None:
    """A pidfd on ``pid`` if it is in the pid ``namespace`` (never a recycled host pid)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    try:
        if str(Path(f"/proc/{pid}/ns/pid").readlink()) == namespace:
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def namespace_of(pid: int, pidfd: int) -> str | None:
    """``pid``'s pid namespace, read while ``pidfd`` (on the same process) shows it alive, so
    the answer cannot be that of a process that got its pid after it died."""
    try:
        namespace = str(Path(f"/proc/{pid}/ns/pid").readlink())
    except OSError:
        return None
    ready, _, _ = select.select([pidfd], [], [], 0.0)
    return None if ready else namespace  # a pidfd turns readable when its process exits


@contextlib.contextmanager
def paused(init: int, namespace: str) -> Iterator[None]:
    """``init``'s descendants stopped meanwhile (``stop_tree``), then continued."""
    try:
        stopped = stop_tree(init, namespace)
    except OSError as exc:
        raise SandboxError(f"cannot pause the container: {exc}") from exc
    try:
        yield
    finally:
        continue_all(stopped)


def stop_tree(init: int, namespace: str, timeout: float = PAUSE_TIMEOUT) -> list[int]:
    """SIGSTOP every descendant of ``init`` in pid ``namespace`` until all of them are
    stopped; their pidfds.

    Repeats until a walk finds nobody new, so what forks meanwhile is caught too. Processes
    stopped already (by the container itself) are left as they are. Raises ``SandboxError``
    (having continued them) if they have not all stopped within ``timeout``.
    """
    stopped: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    ticker = threading.Event()
    try:
        while _stop_round(init, namespace, stopped) or not all(map(_all_stopped, stopped)):
            if time.monotonic() >= deadline:
                break
            ticker.wait(_POLL)
        else:
            return list(stopped.values())
    except BaseException:
        continue_all(list(stopped.values()))
        raise
    continue_all(list(stopped.values()))
    raise SandboxError(f"the container's processes did not all stop in {timeout} s")


def _stop_round(init: int, namespace: str, stopped: dict[int, int]) -> bool:
    """SIGSTOP the descendants of ``init`` not stopped yet; whether there were any."""
    fresh = False
    for pid, fields in walk(init):
        if pid == init or pid in stopped or fields[0] in _DONE:
            continue
        fd = _pidfd_in(pid, namespace)
        if fd is not None:
            bwrap.kill_pidfd(fd, signal.SIGSTOP)
            stopped[pid] = fd
            fresh = True
    return fresh


def continue_all(pidfds: list[int]) -> None:
    for fd in pidfds:
        bwrap.kill_pidfd(fd, signal.SIGCONT)
        os.close(fd)
