"""Commands in a sandbox of their own: one ``bwrap`` per command, gone when the command ends.

Used before an activity's container is started (``probe``, tests) and when an image has no
Python for the container's init. ``--as-pid-1``: the command is pid 1, so bwrap's monitor reaps
it and ``wait4`` on the monitor gives the cpu time of the whole command tree (with bwrap's own
init the monitor exits before reaping it and the figure is lost). As in any container without an
init, pid 1 ignores the signals it sends itself unless it handles them; when it exits the kernel
kills the rest, so nothing a command starts outlives it.
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence

import psutil

from golem_actors.localnet import bwrap
from golem_actors.localnet.bwrap import (
    INSTALL_HINT,
    KILL_GRACE,
    OnOutput,
    RunResult,
    SandboxError,
    SandboxUnavailableError,
)
from golem_actors.localnet.limits import Limits, PidsCgroup, apply_limits

__all__ = ["OneShot"]


class _Running:
    """One live ``bwrap``, signalled through pidfds (safe even once its pid is reused)."""

    def __init__(self, monitor: subprocess.Popen[bytes], started: float) -> None:
        self.monitor, self.started = monitor, started
        self.monitor_fd = os.pidfd_open(monitor.pid)
        self.child_fd: int | None = None  # the sandbox's pid 1
        self.killed = self.timed_out = False

    def kill(self) -> None:
        """Kill the sandbox (its pid namespace dies with it) or, before it exists, bwrap."""
        self.killed = True
        bwrap.kill_pidfd(self.child_fd if self.child_fd is not None else self.monitor_fd)


class OneShot:
    """Runs each command in a fresh sandbox made from ``args`` (bwrap and its options)."""

    def __init__(
        self, args: Sequence[str], env: Mapping[str, str], limits: Limits, cpus: list[int]
    ) -> None:
        self._args, self._env, self._limits, self._cpus = list(args), dict(env), limits, cpus
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._running: set[_Running] = set()
        self._closed: str | None = None
        self.cpu_done = 0.0  # of the commands that ended

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def live_cpu(self) -> float:
        """Cpu seconds of the commands running now, as far as /proc shows them."""
        with self._lock:
            return sum(_tree_cpu(run.monitor.pid) for run in self._running)

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None,
        timeout: float | None,
        cwd: str,
        on_output: OnOutput | None = None,
    ) -> RunResult:
        """Call it from a thread that outlives the command: bwrap dies with the thread that
        started it (``--die-with-parent``), which is what cleans up after a crashed provider."""
        status_r, status_w = os.pipe()
        block_r, block_w = os.pipe()
        try:
            fds = ("--json-status-fd", str(status_w), "--block-fd", str(block_r))
            run = self._start([*self._args, "--chdir", cwd, *fds, "--", *argv], env, fds)
        except BaseException:
            os.close(status_r)
            os.close(block_w)
            raise
        finally:
            os.close(status_w)
            os.close(block_r)
        try:
            return self._finish(run, status_r, block_w, timeout, on_output)
        finally:
            os.close(status_r)

    def _start(
        self, args: list[str], env: Mapping[str, str] | None, fds: tuple[str, ...]
    ) -> _Running:
        with self._lock:  # so that nothing starts once close began
            if self._closed is not None:
                raise SandboxError(self._closed)
            started = time.monotonic()
            try:
                monitor = subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    pass_fds=(int(fds[1]), int(fds[3])),
                    env={**self._env, **(env or {})},
                    cwd="/",
                    start_new_session=True,
                )
            except OSError as exc:
                raise SandboxUnavailableError(f"cannot start bwrap: {exc}; {INSTALL_HINT}") from exc
            run = _Running(monitor, started)
            self._running.add(run)
            return run

    def _finish(
        self,
        run: _Running,
        status_r: int,
        block_w: int,
        timeout: float | None,
        on_output: OnOutput | None,
    ) -> RunResult:
        cgroup = None
        try:
            try:
                child = bwrap.read_child_pid(status_r, run.kill)
                if child is not None and not run.killed:
                    run.child_fd = bwrap.open_child(child, run.monitor.pid)
                    cgroup = self._limit(child) if run.child_fd is not None else None
                if run.killed:
                    run.kill()  # cancelled while it was starting
                with contextlib.suppress(OSError):
                    os.write(block_w, b"x")  # go
            except BaseException:
                run.kill()  # never let it go on without its limits
                raise
            finally:
                os.close(block_w)
            deadline = None if timeout is None else run.started + timeout
            out, err, status = _collect(run, status_r, deadline, on_output)
        finally:
            with self._lock:
                self._running.discard(run)
            code, cpu = _reap(run)
            if cgroup is not None:
                cgroup.remove()
            with self._lock:
                self.cpu_done += cpu
                self._idle.notify_all()
        wall = time.monotonic() - run.started
        if run.killed:
            code = -signal.SIGKILL
        elif b"exit-code" not in status and err.startswith(b"bwrap: execvp "):
            code = 127  # not found or not executable, as a shell says it
        elif b"exit-code" not in status:
            detail = err.decode(errors="replace").strip() or f"bwrap exited with {code}"
            raise SandboxError(f"the sandbox could not start the command: {detail}")
        return RunResult(code, out, err, cpu, wall, run.timed_out)

    def _limit(self, pid: int) -> PidsCgroup | None:
        try:
            return apply_limits(pid, self._limits, self._cpus)
        except ProcessLookupError:
            return None  # it died setting up; the status says why
        except OSError as exc:
            raise SandboxError(f"cannot apply the limits {self._limits}: {exc}") from exc

    def cancel(self) -> None:
        """Kill every command running now; their ``run`` returns exit code -9."""
        with self._lock:
            for run in self._running:
                run.kill()

    def close(self, reason: str, deadline: float) -> bool:
        """Kill what runs, refuse new commands; False if something still ran at ``deadline``."""
        with self._lock:
            self._closed = reason
            for run in self._running:
                run.kill()
            while self._running and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
            return not self._running


def _collect(
    run: _Running, status_r: int, deadline: float | None, on_output: OnOutput | None
) -> tuple[bytes, bytes, bytes]:
    """Read stdout, stderr and the status pipe to their ends; kill at ``deadline``."""
    monitor = run.monitor
    assert monitor.stdout is not None
    assert monitor.stderr is not None
    out_fd, err_fd = monitor.stdout.fileno(), monitor.stderr.fileno()
    bufs = {out_fd: bytearray(), err_fd: bytearray(), status_r: bytearray()}
    names = {out_fd: "stdout", err_fd: "stderr"}
    grace: float | None = None
    with selectors.DefaultSelector() as sel:
        for fd in bufs:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            now = time.monotonic()
            if deadline is not None and now >= deadline and not run.killed:
                run.timed_out = True
                run.kill()
            if run.killed and grace is None:
                grace = now + KILL_GRACE
            if grace is not None and now >= grace:
                bwrap.kill_pidfd(run.monitor_fd)  # a sandbox that will not die: drop it
                break
            limit = grace or deadline
            for key, _ in sel.select(None if limit is None else max(0.0, limit - now)):
                chunk, buf = os.read(key.fd, 65536), bufs[key.fd]
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                kept = chunk[: max(0, bwrap.MAX_OUTPUT - len(buf))]
                buf += kept
                if kept and on_output is not None and key.fd in names:
                    on_output(names[key.fd], kept)
    return bytes(bufs[out_fd]), bytes(bufs[err_fd]), bytes(bufs[status_r])


def _reap(run: _Running) -> tuple[int, float]:
    """Wait (bounded) for bwrap to exit: its exit code, and the cpu time of its whole tree."""
    ready, _, _ = select.select([run.monitor_fd], [], [], KILL_GRACE)
    if not ready:
        bwrap.kill_pidfd(run.monitor_fd)
    _, status, usage = os.wait4(run.monitor.pid, 0)
    run.monitor.returncode = code = os.waitstatus_to_exitcode(status)  # so Popen never reaps
    for fd in (run.monitor_fd, run.child_fd):
        if fd is not None:
            os.close(fd)
    for pipe in (run.monitor.stdout, run.monitor.stderr):
        if pipe is not None:
            pipe.close()
    return code, usage.ru_utime + usage.ru_stime


def _tree_cpu(pid: int) -> float:
    """User + system seconds of a live process tree, with what its members reaped."""
    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total
