"""The bubblewrap sandbox a localnet exe-unit runs an activity's ExeScript commands in.

An activity's ``Sandbox`` owns its volumes on the host and runs commands in one of two ways:

- After ``start`` (the ExeScript command), in the activity's container (``container.py``): one
  long-lived ``bwrap`` whose pid 1 is a small init that starts each command, so processes a
  command leaves in the background keep running beside later commands, ``/tmp`` persists, and
  everything shares one pid namespace, until ``stop`` (``terminate``) or ``destroy``.
- Otherwise (not started, or an image without ``python3`` for the init), each command in a
  ``bwrap`` of its own (``oneshot.py``) that ends with it.

Both are the same sandbox (``bwrap.py``): the host's read-only system or an image's rootfs, the
``/golem/*`` volumes, a private ``/tmp``, no network, own pid/user/IPC/UTS namespaces, no
capabilities, and the limits of ``limits.py``. An activity in a Golem VPN (``SandboxNetwork``)
gets, in its container only, the VPN's interfaces beside ``lo`` (``vpnlink.py``) and an
``/etc/hosts`` naming the network's hosts. ``cpu_seconds`` counts every process that ever
ran in it, background ones included.

Why the container's pid 1 is a Python init (``initd.py``) that forks each command, rather than
``nsenter`` into the namespaces of a sleeping pid 1 (which needs no interpreter in the image):
a process that joins a user namespace gets every capability in it. Measured here: as root, an
``nsenter``-ed command had a full effective capability set and no ``no_new_privs`` inside the
container (enough to remount the read-only host binds writable); as uid 65534, ``nsenter``
failed outright (bwrap's ``--disable-userns`` nests the user namespaces, so joining the IPC one
is refused). Forked by the init, a command descends from bwrap's pid 1 and inherits all of its
confinement. Images without ``python3`` fall back to a sandbox per command, with a warning.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from golem_actors.localnet import paths
from golem_actors.localnet.bwrap import (
    DEFAULT_ENV,
    NoInitError,
    OnOutput,
    RunResult,
    SandboxError,
    SandboxUnavailableError,
    find_bwrap,
    sandbox_args,
)
from golem_actors.localnet.container import Container, NetnsHook
from golem_actors.localnet.limits import Limits, pick_cpus
from golem_actors.localnet.oneshot import OneShot
from golem_actors.localnet.paths import VOLUMES, SandboxPathError

__all__ = [
    "VOLUMES",
    "Limits",
    "NoInitError",
    "RunResult",
    "Sandbox",
    "SandboxError",
    "SandboxNetwork",
    "SandboxPathError",
    "SandboxUnavailableError",
    "find_bwrap",
    "probe",
]

log = logging.getLogger(__name__)

_NO_LIMITS = Limits()


@dataclass(frozen=True)
class SandboxNetwork:
    """The container's network: ``hook`` adds its interfaces at each start, ``etc_hosts`` (a
    host file) becomes its ``/etc/hosts``."""

    hook: NetnsHook | None = None
    etc_hosts: Path | None = None


def _hosts_bind(rootfs: Path | None, etc_hosts: Path | None) -> list[str]:
    """Bind ``etc_hosts`` over the system's ``/etc/hosts``, where there is a file to cover (a
    read-only ``/etc`` cannot get a new mount point)."""
    if etc_hosts is None:
        return []
    target = (rootfs or Path("/")) / "etc" / "hosts"
    if target.is_symlink() or not target.is_file():
        log.warning("%s is not a plain file: the network's hosts are not in /etc/hosts", target)
        return []
    return ["--ro-bind", str(etc_hosts), "/etc/hosts"]


def _volume_dirs(activity_dir: Path, volumes: Sequence[str] | None) -> dict[str, Path]:
    """Container path -> host directory, deepest first (so the longest prefix matches first)."""
    if volumes is None:
        return {v: activity_dir / PurePosixPath(v).name for v in VOLUMES}
    ordered = sorted(dict.fromkeys(volumes), key=lambda v: (-len(PurePosixPath(v).parts), v))
    return {v: activity_dir / f"vol-{i}-{PurePosixPath(v).name}" for i, v in enumerate(ordered)}


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


class Sandbox:
    """One activity's sandbox: its volumes on the host, its container, the commands run."""

    _count = itertools.count()  # spreads pinned sandboxes over the cpus

    def __init__(
        self,
        activity_dir: Path,
        *,
        rootfs: Path | None = None,
        limits: Limits = _NO_LIMITS,
        env: Mapping[str, str] | None = None,
        volumes: Sequence[str] | None = None,
        network: SandboxNetwork | None = None,
    ) -> None:
        """``volumes``: a GVMI's own (its config's ``Volumes``, mounted on directories in the
        image, whose ``/golem`` then shows); None: the standard ``/golem/*`` four."""
        bwrap = find_bwrap()
        self.activity_dir = Path(activity_dir).absolute()
        self.volumes = _volume_dirs(self.activity_dir, volumes)
        for host in self.volumes.values():
            host.mkdir(parents=True, exist_ok=True)
            if host.is_symlink():
                raise SandboxError(f"the volume {host} is a symlink")
        if rootfs is not None and not Path(rootfs).is_dir():
            raise SandboxError(f"the image's rootfs {rootfs} is not a directory")
        self.rootfs = None if rootfs is None else Path(rootfs).absolute()
        self.limits = limits
        self._env = {**DEFAULT_ENV, **(env or {})}
        tmp = limits.tmp_bytes or min(limits.mem_bytes or 2**30, 2**30)
        parents_first = reversed(self.volumes.items())
        binds = [a for c, h in parents_first for a in ("--bind", str(h), c)]
        self.network = network or SandboxNetwork()
        binds += _hosts_bind(self.rootfs, self.network.etc_hosts)
        self._args = sandbox_args(bwrap, self.rootfs, binds, tmp, image_golem=volumes is not None)
        self._cpus = pick_cpus(limits.cpu_threads, next(self._count))
        self._oneshot = OneShot(self._args, self._env, limits, self._cpus)
        self._lock = threading.Lock()
        self._container: Container | None = None
        self._cpu_retired = 0.0  # of the containers stopped
        self._cpu_seen = 0.0
        self._destroyed = False

    def host_path(self, container_path: str) -> Path:
        """The host file behind ``container_path``, symlinks resolved as the sandbox sees them.

        Refused: relative paths, ``..``, paths outside the volumes and symlinks leading out.
        The answer only stays true while nothing in the container runs: use it (and the file)
        within ``paused()``.
        """
        return paths.host_path(container_path, self.volumes)

    @property
    def cpu_seconds(self) -> float:
        """Cpu seconds of everything run so far, the live processes as /proc shows them."""
        with self._lock:
            live = self._container.cpu_seconds if self._container is not None else 0.0
            total = self._cpu_retired + live + self._oneshot.cpu_done + self._oneshot.live_cpu()
            self._cpu_seen = max(self._cpu_seen, total)  # never goes back
            return self._cpu_seen

    @property
    def persistent(self) -> bool:
        """Whether commands run in a live container (False: each in a sandbox of its own)."""
        container = self._container
        return container is not None and container.alive

    @property
    def container_pid(self) -> int | None:
        """The host's pid of the container's init (its pid 1), while it has one."""
        container = self._container
        return container.init_pid if container is not None and container.alive else None

    def start(self) -> bool:
        """Start the activity's container (a fresh one); True if commands now run in it.

        False: the image has no Python for the container's init, so commands keep running in
        a sandbox each (logged). Call it from a thread; the container outlives it.
        """
        self.stop()
        name, hook = self.activity_dir.name, self.network.hook
        container = Container(self._args, self.limits, self._cpus, name, hook)
        try:
            container.start()
        except NoInitError as exc:
            self._retire(container)
            log.warning(
                "%s: %s. Its commands run in a sandbox each: what one leaves in the background "
                "ends with it and /tmp does not persist",
                self.activity_dir.name,
                exc,
            )
            return False
        except BaseException:
            self._retire(container)
            raise
        with self._lock:
            if not self._destroyed:
                self._container = container
                return True
        self._retire(container)
        raise SandboxError(f"the sandbox in {self.activity_dir} was destroyed")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the container (its whole pid namespace); commands then run one-shot again."""
        container = self._container
        if container is not None:
            self._retire(container, timeout)

    def _retire(self, container: Container, timeout: float = 10.0) -> None:
        stopped = container.stop(timeout)
        with self._lock:
            if self._container is container:
                self._container = None
            self._cpu_retired += container.cpu_seconds
        if not stopped:
            raise SandboxError(f"the container of {self.activity_dir} did not stop in {timeout} s")

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cwd: str = "/golem/work",
        on_output: OnOutput | None = None,
    ) -> RunResult:
        """Run ``argv`` (exec'd directly, no shell) to its end or for ``timeout`` seconds;
        ``on_output`` is told each chunk it prints as it comes (its result has them all too).

        In the container, a command ends when its own process does; a timeout or ``cancel``
        kills its tree (its session and descendants) and nothing else. Without one, call it
        from a thread that outlives the command: the one-shot bwrap dies with that thread.
        """
        if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError(f"argv must be a non-empty list of strings, got {argv!r}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
        if not cwd.startswith("/"):
            raise ValueError(f"cwd must be an absolute container path, got {cwd!r}")
        with self._lock:
            if self._destroyed:
                raise SandboxError(f"the sandbox in {self.activity_dir} was destroyed")
            container = self._container
        if container is None:
            return self._oneshot.run(argv, env, timeout, cwd, on_output)
        return container.run(argv, {**self._env, **(env or {})}, timeout, cwd, on_output)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The container's processes stopped meanwhile (for transfers: see ``host_path``)."""
        container = self._container
        if container is None:
            yield
            return
        with container.paused():
            yield

    def cancel(self) -> None:
        """Kill every command running now (not the container); their ``run`` returns -9."""
        self._oneshot.cancel()
        container = self._container
        if container is not None:
            container.cancel()

    def destroy(self, timeout: float = 10.0) -> None:
        """Stop the container, kill what runs, wait (bounded), remove the activity's directory."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._destroyed = True
        self.stop(timeout)
        reason = f"the sandbox in {self.activity_dir} was destroyed"
        if not self._oneshot.close(reason, deadline):
            raise SandboxError(f"commands in {self.activity_dir} did not stop in {timeout} s")
        paths.remove_tree(self.activity_dir)
