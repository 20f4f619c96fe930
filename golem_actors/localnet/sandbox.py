"""The bubblewrap sandbox a localnet exe-unit runs ExeScript commands in.

Each ``run`` is one ``bwrap``: a fresh mount namespace whose root holds only the host's read-only
system (or an image's rootfs), the activity's writable ``/golem/*`` volumes, a private ``/tmp``
tmpfs, a minimal ``/dev`` and its own ``/proc``; no network; its own pid, user, IPC and UTS
namespaces; a new session; no capabilities. Why it is put together the way it is:

- ``--as-pid-1``: the command is pid 1, so bwrap's monitor reaps it and ``wait4`` on the monitor
  gives the cpu time of the whole command tree (with bwrap's own init the monitor exits before
  reaping it and the figure is lost). As in any container without an init, pid 1 ignores the
  signals it sends itself unless it handles them; when it exits the kernel kills the rest.
- ``--json-status-fd`` reports the sandbox's pid before anything runs and ``--block-fd`` holds it
  there while we ``prlimit`` it (so the limits bind from the first instruction) and open a pidfd
  on it (a kill can never hit a recycled pid). The status also tells a set-up failure from the
  command's own exit code.
- Limits are set inside the sandbox's user namespace, so ``RLIMIT_NPROC`` counts this sandbox
  only. The kernel exempts uid 0 from it: a provider running as root enforces ``max_processes``
  with a pids cgroup where it may write one, and masks ``/etc`` files only root can read.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import os
import resource
import select
import selectors
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import psutil

__all__ = [
    "VOLUMES",
    "Limits",
    "RunResult",
    "Sandbox",
    "SandboxError",
    "SandboxPathError",
    "SandboxUnavailableError",
    "find_bwrap",
    "probe",
]

log = logging.getLogger(__name__)

VOLUMES = ("/golem/work", "/golem/input", "/golem/output", "/golem/resource")
INSTALL_HINT = "sudo apt-get install bubblewrap"
MAX_OUTPUT = 16 * 2**20  # bytes kept of stdout (and of stderr) per command; the rest is dropped
_HOST_SYSTEM = ("usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
_OWN_MOUNTS = ("proc", "dev", "tmp", "sys", "golem")  # image entries the sandbox mounts itself
_TMP = "/" + "tmp"  # the sandbox's private tmpfs, never the host's /tmp
_NAMESPACES = (
    *("--unshare-all", "--unshare-user", "--disable-userns", "--hostname", "localnet"),
    *("--die-with-parent", "--new-session", "--as-pid-1", "--cap-drop", "ALL"),
)
_OTHERS_RX = 0o005
_MAX_SYMLINKS = 40  # the kernel's own limit (ELOOP)
_SETUP_TIMEOUT = 30.0  # bwrap sets up in milliseconds; this only bounds a wedged one
_KILL_GRACE = 5.0  # after SIGKILL, how long a sandbox may take to vanish
_DEFAULT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/golem/work",
    "LANG": "C.UTF-8",
    "TMPDIR": _TMP,
}


class SandboxError(RuntimeError):
    """The sandbox could not be set up or used."""


class SandboxUnavailableError(SandboxError):
    """bubblewrap is missing or cannot run here."""


class SandboxPathError(ValueError):
    """A container path that is not inside the activity's volumes."""


def find_bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailableError(
            f"bubblewrap (bwrap) is not installed; localnet runs commands in it: {INSTALL_HINT}"
        )
    return path


def probe() -> None:
    """Run ``/bin/true`` in a throw-away sandbox: what localnet checks before it starts.

    Catches what ``find_bwrap`` cannot: a kernel or policy (AppArmor, a container without user
    namespaces) that stops bwrap from making its namespaces.
    """
    with tempfile.TemporaryDirectory(prefix="golem-sandbox-probe-") as tmp:
        try:
            result = Sandbox(Path(tmp) / "activity").run(["/bin/true"], timeout=30)
        except SandboxError as exc:
            raise SandboxUnavailableError(f"bubblewrap cannot make a sandbox here: {exc}") from exc
    if result.exit_code != 0:
        detail = result.stderr.decode(errors="replace").strip()
        raise SandboxUnavailableError(f"bubblewrap cannot make a sandbox here: {detail}")


@dataclass(frozen=True)
class Limits:
    """Per-command limits, ``None`` = unlimited, enforced where the OS allows.

    ``cpu_threads`` pins to that many cpus (affinity; sandboxes spread over them). ``mem_bytes``
    is ``RLIMIT_AS``: address space, so runtimes that reserve much virtual memory need headroom;
    it also caps ``/tmp``. ``max_processes`` counts processes and threads. ``file_size_bytes`` is
    ``RLIMIT_FSIZE`` (the writer gets ``SIGXFSZ``). ``tmp_bytes``: ``/tmp``'s size (default
    ``mem_bytes`` or 1 GiB, whichever is smaller).
    """

    cpu_threads: int | None = None
    mem_bytes: int | None = None
    max_processes: int | None = None
    file_size_bytes: int | None = None
    tmp_bytes: int | None = None

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value is not None and (type(value) is not int or value < 1):
                raise ValueError(f"Limits.{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class RunResult:
    exit_code: int  # -9: killed by us (timeout, cancel); a signal inside shows as 128 + n
    stdout: bytes
    stderr: bytes
    cpu_seconds: float  # user + system of the command's whole process tree
    wall_seconds: float
    timed_out: bool


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
        _signal(self.child_fd if self.child_fd is not None else self.monitor_fd)


class Sandbox:
    """One activity's sandbox: its volumes on the host and the commands run over them."""

    _count = itertools.count()  # spreads pinned sandboxes over the cpus

    def __init__(
        self,
        activity_dir: Path,
        *,
        rootfs: Path | None = None,
        limits: Limits = Limits(),  # frozen, so a shared default is safe
        env: Mapping[str, str] | None = None,
    ) -> None:
        bwrap = find_bwrap()
        self.activity_dir = Path(activity_dir).absolute()
        self.volumes: Mapping[str, Path] = {
            v: self.activity_dir / PurePosixPath(v).name for v in VOLUMES
        }
        for host in self.volumes.values():
            host.mkdir(parents=True, exist_ok=True)
            if host.is_symlink():
                raise SandboxError(f"the volume {host} is a symlink")
        if rootfs is not None and not Path(rootfs).is_dir():
            raise SandboxError(f"the image's rootfs {rootfs} is not a directory")
        self.rootfs = None if rootfs is None else Path(rootfs).absolute()
        self.limits = limits
        self._env = {**_DEFAULT_ENV, **(env or {})}
        root = _system_args() if self.rootfs is None else _image_args(self.rootfs)
        tmp = limits.tmp_bytes or min(limits.mem_bytes or 2**30, 2**30)
        binds = [a for c, h in self.volumes.items() for a in ("--bind", str(h), c)]
        self._args = [
            *(bwrap, *root, "--proc", "/proc", "--dev", "/dev", "--size", str(tmp), "--tmpfs"),
            *(_TMP, *binds, "--remount-ro", "/", *_NAMESPACES),  # "/" after its mount points
        ]
        self._cpus = _pick_cpus(limits.cpu_threads, next(self._count))
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._running: set[_Running] = set()
        self._cpu_done = self._cpu_seen = 0.0
        self._destroyed = False

    def host_path(self, container_path: str) -> Path:
        """The host file behind ``container_path``, symlinks resolved as the sandbox sees them.

        Refused: relative paths, ``..``, paths outside the volumes and symlinks (a command may
        make them) leading out. The answer stays true while the exe-unit uses it: commands run
        one at a time and a command's processes all die with it.
        """
        if not isinstance(container_path, str) or not container_path.startswith("/"):
            raise SandboxPathError(f"{container_path!r} is not an absolute container path")
        if "\0" in container_path or ".." in PurePosixPath(container_path).parts:
            raise SandboxPathError(f"{container_path!r} may not contain '..' or NUL")
        return _resolve(container_path, self.volumes)

    @property
    def cpu_seconds(self) -> float:
        """Cpu seconds of all commands so far, the running ones as far as /proc shows them."""
        with self._lock:
            live = sum(_tree_cpu(run.monitor.pid) for run in self._running)
            self._cpu_seen = max(self._cpu_seen, self._cpu_done + live)  # never goes back
            return self._cpu_seen

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cwd: str = "/golem/work",
    ) -> RunResult:
        """Run ``argv`` (exec'd directly, no shell) to its end or for ``timeout`` seconds.

        Call it from a thread that outlives the command: bwrap dies with the thread that started
        it (``--die-with-parent``), which is what cleans up after a crashed provider.
        """
        if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError(f"argv must be a non-empty list of strings, got {argv!r}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
        if not cwd.startswith("/"):
            raise ValueError(f"cwd must be an absolute container path, got {cwd!r}")
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
            return self._finish(run, status_r, block_w, timeout)
        finally:
            os.close(status_r)

    def _start(
        self, args: list[str], env: Mapping[str, str] | None, fds: tuple[str, ...]
    ) -> _Running:
        with self._lock:  # so that nothing starts once destroy began
            if self._destroyed:
                raise SandboxError(f"the sandbox in {self.activity_dir} was destroyed")
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
        self, run: _Running, status_r: int, block_w: int, timeout: float | None
    ) -> RunResult:
        cgroup = None
        try:
            try:
                child = _read_child_pid(status_r, run)
                if child is not None and not run.killed:
                    run.child_fd = _open_child(child, run.monitor.pid)
                    cgroup = self._apply_limits(child) if run.child_fd is not None else None
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
            out, err, status = _collect(run, status_r, deadline)
        finally:
            with self._lock:
                self._running.discard(run)
            code, cpu = _reap(run)
            if cgroup is not None:
                cgroup.remove()
            with self._lock:
                self._cpu_done += cpu
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

    def _apply_limits(self, pid: int) -> _PidsCgroup | None:
        lim = self.limits
        try:
            _prlimit(pid, resource.RLIMIT_CORE, 0)  # no core files in volumes or host handlers
            for which, value in (
                (resource.RLIMIT_AS, lim.mem_bytes),
                (resource.RLIMIT_FSIZE, lim.file_size_bytes),
                (resource.RLIMIT_NPROC, lim.max_processes),
            ):
                if value is not None:
                    _prlimit(pid, which, value)
            if self._cpus:
                os.sched_setaffinity(pid, self._cpus)
        except ProcessLookupError:
            return None  # it died setting up; the status says why
        except OSError as exc:
            raise SandboxError(f"cannot apply the limits {lim}: {exc}") from exc
        if lim.max_processes is None or os.geteuid() != 0:
            return None
        return _pids_cgroup(pid, lim.max_processes)

    def cancel(self) -> None:
        """Kill every command running now; their ``run`` returns exit code -9."""
        with self._lock:
            for run in self._running:
                run.kill()

    def destroy(self, timeout: float = 10.0) -> None:
        """Kill what runs, wait (bounded) for it to be gone, remove the activity's directory."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._destroyed = True
            for run in self._running:
                run.kill()
            while self._running and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
            if self._running:
                raise SandboxError(f"commands in {self.activity_dir} did not stop in {timeout} s")
        _remove_tree(self.activity_dir)


def _signal(pidfd: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)


@functools.cache
def _system_args() -> tuple[str, ...]:
    """The host's system, read-only; as root, minus what only root may read."""
    masks = _root_masks(Path("/etc")) if os.geteuid() == 0 else []
    return (*_image_args(Path("/"), names=_HOST_SYSTEM), *masks)


def _image_args(root: Path, names: Sequence[str] = ()) -> list[str]:
    """Each top-level entry of ``root`` bound read-only; symlinks recreated as they are."""
    args: list[str] = []
    for entry in [root / n for n in names] or sorted(root.iterdir()):
        inside = "/" + entry.name
        if entry.is_symlink():
            args += ["--symlink", str(entry.readlink()), inside]
        elif entry.exists() and (names or entry.name not in _OWN_MOUNTS):
            args += ["--ro-bind", str(entry), inside]
    return args


def _root_masks(top: Path) -> list[str]:
    """Hide the directories and (non-empty) files under ``top`` that only root can read."""
    args: list[str] = []
    for dirpath, dirnames, filenames in os.walk(top):
        for name in list(dirnames):
            path = f"{dirpath}/{name}"
            if os.lstat(path).st_mode & _OTHERS_RX != _OTHERS_RX:
                args += ["--tmpfs", path, "--remount-ro", path]
                dirnames.remove(name)
        for name in filenames:
            path = f"{dirpath}/{name}"
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode) and not info.st_mode & 0o004 and info.st_size:
                args += ["--ro-bind", "/dev/null", path]
    return args


def _pick_cpus(threads: int | None, index: int) -> list[int]:
    cpus = sorted(os.sched_getaffinity(0))
    if threads is None or threads >= len(cpus):
        return []
    return [cpus[(index * threads + i) % len(cpus)] for i in range(threads)]


def _prlimit(pid: int, which: int, value: int) -> None:
    hard = resource.getrlimit(which)[1]
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.prlimit(pid, which, (value, value))


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


def _read_child_pid(status_r: int, run: _Running) -> int | None:
    """The sandbox's pid from bwrap's first status line (None: bwrap failed before it)."""
    buf = b""
    deadline = time.monotonic() + _SETUP_TIMEOUT
    while b"\n" not in buf:
        ready, _, _ = select.select([status_r], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            run.kill()
            raise SandboxError(f"bwrap did not set the sandbox up in {_SETUP_TIMEOUT} s")
        chunk = os.read(status_r, 4096)
        if not chunk:
            return None
        buf += chunk
    pid = json.loads(buf.split(b"\n", 1)[0]).get("child-pid")
    return pid if isinstance(pid, int) else None


def _open_child(pid: int, monitor: int) -> int | None:
    """A pidfd on the sandbox's pid 1, if that pid is still bwrap's child (not a recycled one)."""
    try:
        fd = os.pidfd_open(pid)
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None
    if ppid != monitor:
        os.close(fd)
        return None
    return fd


def _collect(run: _Running, status_r: int, deadline: float | None) -> tuple[bytes, bytes, bytes]:
    """Read stdout, stderr and the status pipe to their ends; kill at ``deadline``."""
    monitor = run.monitor
    assert monitor.stdout is not None
    assert monitor.stderr is not None
    out_fd, err_fd = monitor.stdout.fileno(), monitor.stderr.fileno()
    bufs = {out_fd: bytearray(), err_fd: bytearray(), status_r: bytearray()}
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
                grace = now + _KILL_GRACE
            if grace is not None and now >= grace:
                _signal(run.monitor_fd)  # a sandbox that will not die: drop it, stop reading
                break
            limit = grace or deadline
            for key, _ in sel.select(None if limit is None else max(0.0, limit - now)):
                chunk, buf = os.read(key.fd, 65536), bufs[key.fd]
                if not chunk:
                    sel.unregister(key.fd)
                elif len(buf) < MAX_OUTPUT:
                    buf += chunk[: MAX_OUTPUT - len(buf)]
    return bytes(bufs[out_fd]), bytes(bufs[err_fd]), bytes(bufs[status_r])


def _reap(run: _Running) -> tuple[int, float]:
    """Wait (bounded) for bwrap to exit: its exit code, and the cpu time of its whole tree."""
    ready, _, _ = select.select([run.monitor_fd], [], [], _KILL_GRACE)
    if not ready:
        _signal(run.monitor_fd)
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


def _remove_tree(path: Path) -> None:
    """``rmtree``, after making every directory enterable: a command may have locked its own."""
    if not path.exists():
        return
    for dirpath, dirnames, _ in os.walk(path):  # top-down: fixed before it is entered
        for name in dirnames:
            target = f"{dirpath}/{name}"
            if stat.S_ISDIR(os.lstat(target).st_mode):  # never through a symlink
                os.chmod(target, 0o700)  # noqa: PTH101
    shutil.rmtree(path)


class _PidsCgroup:
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


def _pids_cgroup(pid: int, limit: int) -> _PidsCgroup | None:
    base = _pids_cgroup_base()
    try:
        if base is None:
            raise OSError("no writable pids cgroup")  # noqa: TRY301 - one warning path
        return _PidsCgroup(base, pid, limit)
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
