"""What the sandbox's two ways of running commands share: bubblewrap's arguments and protocol.

A sandbox is a ``bwrap``: a fresh mount namespace whose root holds only the host's read-only
system (or an image's rootfs), the activity's writable ``/golem/*`` volumes, a private ``/tmp``
tmpfs, a minimal ``/dev`` and its own ``/proc``; no network; its own pid, user, IPC and UTS
namespaces; a new session; no capabilities; ``no_new_privs``. ``--json-status-fd`` reports the
sandbox's pid before anything runs and ``--block-fd`` holds it there while we limit it (so the
limits bind from the first instruction) and open a pidfd on it (a kill can never hit a recycled
pid). As root, files under ``/etc`` only root may read are masked.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import shutil
import signal
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from golem_actors.errors import GolemActorsError

__all__ = [
    "DEFAULT_ENV",
    "HOSTNAME",
    "INSTALL_HINT",
    "MAX_OUTPUT",
    "NoInitError",
    "OnOutput",
    "RunResult",
    "SandboxError",
    "SandboxUnavailableError",
    "describe_exit",
    "find_bwrap",
    "image_args",
    "kill_pidfd",
    "open_child",
    "read_child_pid",
    "sandbox_args",
    "system_args",
]

INSTALL_HINT = "sudo apt-get install bubblewrap"
MAX_OUTPUT = 16 * 2**20  # bytes kept of stdout (and of stderr) per command; the rest is dropped
SETUP_TIMEOUT = 30.0  # bwrap sets up in milliseconds; this only bounds a wedged one
KILL_GRACE = 5.0  # after SIGKILL, how long a command or sandbox may take to vanish
TMP = "/" + "tmp"  # the sandbox's private tmpfs, never the host's /tmp
HOSTNAME = "localnet"  # every sandbox's, in its own UTS namespace
NAMESPACES = (
    *("--unshare-all", "--unshare-user", "--disable-userns", "--hostname", HOSTNAME),
    *("--die-with-parent", "--new-session", "--as-pid-1", "--cap-drop", "ALL"),
)
DEFAULT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/golem/work",
    "LANG": "C.UTF-8",
    "TMPDIR": TMP,
}
_HOST_SYSTEM = ("usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
_SYSTEM_MOUNTS = ("proc", "dev", "tmp", "sys")  # image entries the sandbox mounts itself
_OWN_MOUNTS = (*_SYSTEM_MOUNTS, "golem")  # ... and /golem, when it makes the standard volumes
_OTHERS_RX = 0o005


class SandboxError(GolemActorsError, RuntimeError):
    """The sandbox could not be set up or used."""


class SandboxUnavailableError(SandboxError):
    """bubblewrap is missing or cannot run here."""


class NoInitError(SandboxError):
    """The image has no Python the container's init can run on."""


#: Told each chunk a command prints as it prints it: ("stdout" or "stderr", the bytes).
OnOutput = Callable[[str, bytes], None]


@dataclass(frozen=True)
class RunResult:
    exit_code: int  # -9: killed by us (timeout, cancel); a signal inside shows as 128 + n
    stdout: bytes
    stderr: bytes
    cpu_seconds: float  # user + system of the command's own process tree (not what it left)
    wall_seconds: float
    timed_out: bool


def find_bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailableError(
            f"bubblewrap (bwrap) is not installed; localnet runs commands in it: {INSTALL_HINT}"
        )
    return path


def sandbox_args(
    bwrap: str, rootfs: Path | None, binds: Sequence[str], tmp_bytes: int, *, image_golem: bool
) -> list[str]:
    """``bwrap`` and its options, up to (not including) the per-sandbox fds and command.

    ``image_golem``: the image's own ``/golem`` is bound too (a GVMI's volumes are mounted on
    directories in the image, as in the VM); otherwise the sandbox makes ``/golem`` itself.
    """
    own = _SYSTEM_MOUNTS if image_golem else _OWN_MOUNTS
    root = system_args() if rootfs is None else image_args(rootfs, own=own)
    return [
        *(bwrap, *root, "--proc", "/proc", "--dev", "/dev", "--size", str(tmp_bytes), "--tmpfs"),
        *(TMP, *binds, "--remount-ro", "/", *NAMESPACES),  # "/" after its mount points
    ]


@functools.cache
def system_args() -> tuple[str, ...]:
    """The host's system, read-only; as root, minus what only root may read."""
    masks = _root_masks(Path("/etc")) if os.geteuid() == 0 else []
    return (*image_args(Path("/"), names=_HOST_SYSTEM), *masks)


def image_args(
    root: Path, names: Sequence[str] = (), own: Sequence[str] = _OWN_MOUNTS
) -> list[str]:
    """Each top-level entry of ``root`` (but ``own``) bound read-only; symlinks kept as they are."""
    args: list[str] = []
    for entry in [root / n for n in names] or sorted(root.iterdir()):
        inside = "/" + entry.name
        if entry.is_symlink():
            args += ["--symlink", str(entry.readlink()), inside]
        elif entry.exists() and (names or entry.name not in own):
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


def describe_exit(code: int) -> str:
    """bwrap's exit code as words: with ``--as-pid-1`` a signal n shows as 128 + n."""
    signum = -code if code < 0 else code - 128 if code > 128 else 0  # noqa: PLR2004
    with contextlib.suppress(ValueError):
        if signum:
            return f"was killed by {signal.Signals(signum).name}"
    return f"exited with status {code}"


def kill_pidfd(pidfd: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(pidfd, sig)


def read_child_pid(status_r: int, on_timeout: Callable[[], None]) -> int | None:
    """The sandbox's pid from bwrap's first status line (None: bwrap failed before it).

    ``on_timeout`` kills the wedged bwrap before ``SandboxError`` is raised.
    """
    buf = b""
    deadline = time.monotonic() + SETUP_TIMEOUT
    while b"\n" not in buf:
        ready, _, _ = select.select([status_r], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            on_timeout()
            raise SandboxError(f"bwrap did not set the sandbox up in {SETUP_TIMEOUT} s")
        chunk = os.read(status_r, 4096)
        if not chunk:
            return None
        buf += chunk
    pid = json.loads(buf.split(b"\n", 1)[0]).get("child-pid")
    return pid if isinstance(pid, int) else None


def open_child(pid: int, monitor: int) -> int | None:
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
