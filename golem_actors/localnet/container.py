"""An activity's container: one long-lived ``bwrap`` whose pid 1 starts the activity's commands.

What a VM is to a real provider: started by ``start``, it keeps running until ``terminate`` or
the activity's end, so what one ``run`` leaves in the background (a server) keeps running beside
later ones and ``/tmp`` persists. The bwrap is the one-shot sandbox's (``bwrap.NAMESPACES``);
its pid 1 is ``initd``, a small Python server that reaps orphans and forks each command, so
every command descends from the sandbox's pid 1 and inherits all of bwrap's confinement: the
namespaces, dropped capabilities and bounding set, ``no_new_privs``, affinity, the pids cgroup.

An image without ``python3`` >= 3.8 gets no container (``NoInitError``; ``sandbox.py`` says
why not ``nsenter`` instead, and falls back to a sandbox per command).

Commands reach the init over a socket pair (``channel.py``); their stdout/stderr are pipes the
provider reads directly (the init never relays output). A command ends when its own process
exits; pipes its background processes still hold are drained (and discarded) by the container's
monitor thread, so a chatty server never blocks on a full pipe. That thread also owns bwrap:
``--die-with-parent`` ties bwrap to the thread that started it, so it must outlive ``start``.
"""

from __future__ import annotations

import array
import contextlib
import functools
import json
import logging
import os
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from golem_actors.localnet import bwrap, procs
from golem_actors.localnet.bwrap import (
    KILL_GRACE,
    SETUP_TIMEOUT,
    NoInitError,
    OnOutput,
    RunResult,
    SandboxError,
)
from golem_actors.localnet.channel import ContainerCommand, Hooks
from golem_actors.localnet.limits import Limits, PidsCgroup, apply_limits, rlimits_of

__all__ = ["Container", "NetnsHook", "NoInitError"]

log = logging.getLogger(__name__)

INIT_ENV = {"PATH": bwrap.DEFAULT_ENV["PATH"], "LANG": "C.UTF-8"}
_STDERR_TAIL = 4096
_PIPE_BUF = 65536  # Linux's default pipe capacity


@functools.cache
def _init_source() -> bytes:
    source = Path(__file__).with_name("initd.py").read_bytes()
    if len(source) > _PIPE_BUF:
        raise SandboxError(f"initd.py has outgrown the {_PIPE_BUF} bytes a pipe holds")
    return source


class NetnsHook(Protocol):
    """Gives a container's network namespace its interfaces (the VPN's TAP devices)."""

    def attach(self, pidfd: int) -> None:
        """The container's pid 1 (``pidfd``) is held before its first instruction; raise to
        fail the start."""

    def detach(self) -> None:
        """The container has ended (or its start failed after ``attach``)."""


class Container:
    """One activity's container, made from ``args`` (bwrap and its options, no command)."""

    def __init__(
        self,
        args: Sequence[str],
        limits: Limits,
        cpus: list[int],
        name: str,
        netns: NetnsHook | None = None,
    ) -> None:
        self.name = name
        self._args, self._limits, self._cpus = list(args), limits, cpus
        self._netns, self._attached = netns, False
        self._lock = threading.Lock()
        self._commands: set[ContainerCommand] = set()
        self._ready, self._ended = threading.Event(), threading.Event()
        self._error: BaseException | None = None
        self._monitor: subprocess.Popen[bytes] | None = None
        self._monitor_fd: int | None = None
        self._init_fd: int | None = None  # a pidfd on pid 1
        self._ctl: socket.socket | None = None
        self._cgroup: PidsCgroup | None = None
        self._stopping = False
        self._final_cpu: float | None = None
        self._cpu_seen = 0.0
        self._wake_r, self._wake_w = os.pipe()
        self._leftovers: list[int] = []
        self._stderr = bytearray()
        self.init_pid: int | None = None  # the host's pid of the container's pid 1
        self.dead: str | None = None  # why it ended on its own
        self._thread = threading.Thread(target=self._main, name=f"container-{name}", daemon=True)

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start it; raises ``NoInitError`` (no usable Python) or ``SandboxError``."""
        self._thread.start()
        if not self._ready.wait(SETUP_TIMEOUT + KILL_GRACE):
            self.stop()
            raise SandboxError(f"the container did not start in {SETUP_TIMEOUT} s")
        if self._error is not None:
            self._thread.join(KILL_GRACE)
            raise self._error

    @property
    def alive(self) -> bool:
        return self._ready.is_set() and self._error is None and not self._ended.is_set()

    def stop(self, timeout: float = 10.0) -> bool:
        """Kill the whole container; False if it had not gone in ``timeout`` seconds."""
        with self._lock:
            self._stopping = True
            for command in self._commands:
                command.killed = True
            pidfd = self._init_fd if self._init_fd is not None else self._monitor_fd
            if pidfd is not None:
                bwrap.kill_pidfd(pidfd)  # pid 1 gone, the kernel kills the pid namespace
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            with self._lock:
                if self._monitor_fd is not None:
                    bwrap.kill_pidfd(self._monitor_fd)
            self._thread.join(KILL_GRACE)
        return not self._thread.is_alive()

    @property
    def cpu_seconds(self) -> float:
        """User + system seconds of everything that ran in it, live processes included."""
        with self._lock:
            if self._final_cpu is not None:
                return max(self._cpu_seen, self._final_cpu)
            if self._monitor is not None and not self._ended.is_set():
                self._cpu_seen = max(self._cpu_seen, procs.tree_cpu(self._monitor.pid))
            return self._cpu_seen

    # -- the monitor thread ------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._spawn()
        except BaseException as exc:  # noqa: BLE001 - start() raises it
            self._error = exc
            # The held pid 1 first: without its parent it would wait forever for its set-up.
            for pidfd in (self._init_fd, self._monitor_fd):
                if pidfd is not None:
                    bwrap.kill_pidfd(pidfd)
        self._ready.set()
        try:
            if self._error is None:
                self._watch()
        finally:
            self._end()

    def _spawn(self) -> None:
        source = _init_source()
        status_r, status_w = os.pipe()
        block_r, block_w = os.pipe()
        source_r, source_w = os.pipe()
        os.write(source_w, source)  # fits in the pipe: nothing reads it yet
        os.close(source_w)
        host, init = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._ctl, self._status_r = host, status_r
        limits = json.dumps(rlimits_of(self._limits))
        fds = ("--json-status-fd", str(status_w), "--block-fd", str(block_r))
        script = f"/dev/fd/{source_r}"  # `ps` in the container shows this, not the source
        command = ("python3", "-I", "-S", script, "golem-init", str(init.fileno()), limits)
        try:
            self._monitor = subprocess.Popen(
                [*self._args, "--chdir", "/", *fds, "--", *command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(status_w, block_r, init.fileno(), source_r),
                env=INIT_ENV,
                cwd="/",
                start_new_session=True,
            )
        except OSError as exc:
            os.close(block_w)
            raise bwrap.SandboxUnavailableError(f"cannot start bwrap: {exc}") from exc
        finally:
            for fd in (status_w, block_r, source_r):
                os.close(fd)
            init.close()
        try:
            self._monitor_fd = os.pidfd_open(self._monitor.pid)
            self._release(status_r, block_w)
        finally:
            os.close(block_w)
        host.settimeout(SETUP_TIMEOUT)
        try:
            hello = host.recv(4096)
        except TimeoutError:
            raise SandboxError(f"the container's init did not start in {SETUP_TIMEOUT} s") from None
        if not hello:
            raise self._failed_start()
        host.settimeout(None)
        log.debug("container %s: init ready: %s", self.name, hello.decode(errors="replace"))

    def _release(self, status_r: int, block_w: int) -> None:
        """Limit the held pid 1, then let it run."""
        assert self._monitor is not None
        assert self._monitor_fd is not None
        monitor_fd = self._monitor_fd
        child = bwrap.read_child_pid(status_r, lambda: bwrap.kill_pidfd(monitor_fd))
        if child is not None:
            self._init_fd = bwrap.open_child(child, self._monitor.pid)
        if child is None or self._init_fd is None:
            raise self._failed_start()
        self.init_pid = child
        try:
            self._cgroup = apply_limits(child, self._limits, self._cpus, rlimits=False)
        except OSError as exc:
            raise SandboxError(f"cannot apply the limits {self._limits}: {exc}") from exc
        if self._netns is not None:  # its interfaces exist before anything in it runs
            self._attached = True
            self._netns.attach(self._init_fd)
        os.write(block_w, b"x")

    def _failed_start(self) -> SandboxError:
        """Why bwrap or the init ended before the init said it was ready."""
        assert self._monitor is not None
        assert self._monitor.stderr is not None
        try:
            _, err = self._monitor.communicate(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            self._monitor.kill()
            _, err = self._monitor.communicate()
        text = err.decode(errors="replace").strip()
        if text.startswith("bwrap: ") and not text.startswith("bwrap: execvp"):
            return SandboxError(f"bubblewrap could not make the container: {text}")
        why = text.splitlines()[-1] if text else bwrap.describe_exit(self._monitor.returncode)
        return NoInitError(f"the image has no usable python3 (3.8 or later) for the init: {why}")

    def _watch(self) -> None:
        """Until bwrap exits: log the init's stderr, discard what leftover pipes receive."""
        assert self._monitor is not None
        assert self._monitor.stderr is not None
        assert self._monitor_fd is not None
        draining: set[int] = set()
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(self._monitor_fd, selectors.EVENT_READ, "exit")
                sel.register(self._monitor.stderr.fileno(), selectors.EVENT_READ, "stderr")
                sel.register(self._wake_r, selectors.EVENT_READ, "wake")
                while True:
                    for key, _ in sel.select():
                        if key.data == "exit":
                            return
                        self._watched(sel, key, draining)
        finally:
            for fd in draining:
                os.close(fd)

    def _watched(
        self, sel: selectors.BaseSelector, key: selectors.SelectorKey, draining: set[int]
    ) -> None:
        try:
            chunk = os.read(key.fd, 65536)
        except BlockingIOError:
            return
        if key.data == "wake":
            with self._lock:
                fresh, self._leftovers = self._leftovers, []
            for fd in fresh:
                sel.register(fd, selectors.EVENT_READ, "drain")
                draining.add(fd)
        elif not chunk:
            sel.unregister(key.fd)
            if key.data == "drain":
                draining.discard(key.fd)
                os.close(key.fd)
        elif key.data == "stderr":
            self._stderr[:] = (self._stderr + chunk)[-_STDERR_TAIL:]
            log.warning("container %s: %s", self.name, chunk.decode(errors="replace"))

    def _end(self) -> None:
        with self._lock:
            if self._monitor is not None:
                self._reap(self._monitor)
            for fd in (self._init_fd, self._monitor_fd, self._wake_r, self._wake_w):
                if fd is not None:
                    os.close(fd)
            self._init_fd = self._monitor_fd = None
            for fd in self._leftovers:
                os.close(fd)
            self._leftovers = []
            if self._ctl is not None:
                self._ctl.close()
            with contextlib.suppress(AttributeError, OSError):
                os.close(self._status_r)
            if self._cgroup is not None:
                self._cgroup.remove()
            self._ended.set()
        if self._attached and self._netns is not None:
            try:
                self._netns.detach()
            except Exception:
                log.exception("container %s: removing its network failed", self.name)
        if self.dead is not None:
            log.warning("container %s: %s", self.name, self.dead)

    def _reap(self, monitor: subprocess.Popen[bytes]) -> None:
        """bwrap's exit: the container's final cpu time and, if nobody stopped it, why it died."""
        if monitor.returncode is None:
            _, status, usage = os.wait4(monitor.pid, 0)
            monitor.returncode = os.waitstatus_to_exitcode(status)  # so Popen never reaps it
            self._final_cpu = usage.ru_utime + usage.ru_stime
        if monitor.stderr is not None:
            monitor.stderr.close()
        if not self._stopping and self._error is None:
            self.dead = self._death_reason(monitor.returncode)

    def _death_reason(self, code: int) -> str:
        tail = self._stderr.decode(errors="replace").strip()
        how = bwrap.describe_exit(code)
        return f"its init (pid 1) {how}" + (f": {tail.splitlines()[-1]}" if tail else "")

    # -- commands ----------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        timeout: float | None,
        cwd: str,
        on_output: OnOutput | None = None,
    ) -> RunResult:
        """Run ``argv`` in the container (no shell) until its own process ends, or kill it and
        its tree at ``timeout``. What it starts in the background lives on."""
        started = time.monotonic()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        chan, chan_init = socket.socketpair()
        command = ContainerCommand(chan, started)
        try:
            self._submit(command, chan_init, out_w, err_w)
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            chan.close()
            raise
        finally:
            for fd in (out_w, err_w):
                os.close(fd)
            chan_init.close()
        request = {"argv": list(argv), "env": dict(env), "cwd": cwd}
        deadline = None if timeout is None else started + timeout
        hooks = Hooks(stop=self.stop, gone=self._gone_now, adopt=self._adopt)
        try:
            return command.run(request, (out_r, err_r), deadline, hooks, on_output)
        except OSError as exc:
            raise SandboxError(f"{self.gone()} ({exc})") from exc
        finally:
            with self._lock:
                self._commands.discard(command)
            chan.close()

    def _submit(
        self, command: ContainerCommand, chan: socket.socket, out_w: int, err_w: int
    ) -> None:
        """Hand the init the command's socket and output pipes."""
        with self._lock:
            if not self.alive or self._stopping or self._ctl is None:
                raise SandboxError(self.gone())
            try:
                fds = array.array("i", [chan.fileno(), out_w, err_w])
                self._ctl.sendmsg([b"run"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
            except OSError as exc:
                raise SandboxError(f"{self.gone()} ({exc})") from exc
            self._commands.add(command)

    def gone(self) -> str:
        if self.dead is not None:
            return f"the activity's container has stopped: {self.dead}"
        return "the activity's container is not running"

    def _adopt(self, fd: int) -> bool:
        """Take over a pipe an ended command's background processes still hold: the monitor
        thread drains it from now on. False once the container has ended (close it)."""
        with self._lock:
            if self._ended.is_set():
                return False
            self._leftovers.append(fd)
            os.write(self._wake_w, b"x")
            return True

    def _gone_now(self) -> str:
        self._ended.wait(KILL_GRACE)  # the init's socket closed: bwrap is about to exit
        return self.gone()

    def cancel(self) -> None:
        """Kill every command running now (their trees); ``run`` returns exit code -9."""
        with self._lock:
            commands = list(self._commands)
        for command in commands:
            command.kill()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Every process but the init stopped (SIGSTOP) meanwhile, then continued."""
        with self._lock:
            init, namespace = self.init_pid, None
            if self.alive and init is not None and self._init_fd is not None:
                namespace = procs.namespace_of(init, self._init_fd)
        if init is None or namespace is None:  # not running: nothing to pause
            yield
            return
        with procs.paused(init, namespace):
            yield
