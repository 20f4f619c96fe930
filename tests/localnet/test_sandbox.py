"""The bubblewrap sandbox: commands, captures, limits, and every way out we could think of.

Every test that takes ``make`` or ``box`` runs twice: with each command in a sandbox of its own
(``oneshot``, before ``start``) and inside a started container (``container``); the two differ
only where persistence is the point (``/tmp``, pid 1), and ``test_container.py`` covers that.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from golem_actors.localnet import bwrap as bwrap_module
from golem_actors.localnet.sandbox import (
    VOLUMES,
    Limits,
    RunResult,
    Sandbox,
    SandboxError,
    SandboxPathError,
    SandboxUnavailableError,
    find_bwrap,
    probe,
)
from tests.waiting import wait_for

SH = "/bin/sh"
Make = Callable[..., Sandbox]


@pytest.fixture(params=["oneshot", "container"])
def make(request: pytest.FixtureRequest) -> Iterator[Make]:
    """``make(activity_dir, **kwargs)``: a sandbox, started when the mode is ``container``."""
    made: list[Sandbox] = []

    def factory(activity_dir: Path, **kwargs: Any) -> Sandbox:
        sandbox = Sandbox(activity_dir, **kwargs)
        made.append(sandbox)
        if request.param == "container":
            assert sandbox.start()
            assert sandbox.persistent
        return sandbox

    yield factory
    for sandbox in made:
        sandbox.destroy()


@pytest.fixture
def box(make: Make, tmp_path: Path) -> Sandbox:
    return make(tmp_path / "activity-1")


def running(marker: str) -> list[psutil.Process]:
    """Live processes whose command line has ``marker`` as an argument."""
    return [
        proc
        for proc in psutil.process_iter(["cmdline", "status"])
        if marker in (proc.info["cmdline"] or []) and proc.info["status"] != "zombie"
    ]


def until(what: str, probe: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for ``probe()`` to hold, checking every 10 ms, for at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    ticker = threading.Event()
    while not probe():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        ticker.wait(0.01)


def sh(sandbox: Sandbox, script: str, **kwargs: object):
    return sandbox.run([SH, "-c", script], **kwargs)  # type: ignore[arg-type]


def test_output_exit_codes_and_volumes(box: Sandbox, tmp_path: Path) -> None:
    result = sh(box, "echo out; echo err >&2; exit 3")
    assert (result.exit_code, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    assert not result.timed_out
    assert result.wall_seconds > 0
    assert sh(box, "true").exit_code == 0
    assert set(box.volumes) == set(VOLUMES)
    for container, host in box.volumes.items():
        assert host.is_dir()
        assert host.parent == tmp_path / "activity-1"
        assert box.host_path(container) == host
    assert sh(box, "pwd; echo $HOME").stdout == b"/golem/work\n/golem/work\n"
    pid = int(sh(box, "echo $$").stdout)
    assert pid > 1 if box.persistent else pid == 1  # in a container, pid 1 is its init
    assert box.run(["pwd"], cwd="/golem/input").stdout == b"/golem/input\n"
    assert box.run(["/bin/sh", "-c", "echo $A$B"], env={"A": "x"}).stdout == b"x\n"


def test_output_is_capped(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bwrap_module, "MAX_OUTPUT", 1000)
    result = sh(box, "head -c 5000 /dev/zero; head -c 3000 /dev/zero >&2; echo done >&2")
    assert (len(result.stdout), len(result.stderr)) == (1000, 1000)
    assert result.exit_code == 0  # the rest was read and dropped, the command never blocked


def test_output_is_told_as_it_is_printed(box: Sandbox) -> None:
    seen: list[tuple[str, bytes]] = []

    def told(name: str) -> bytes:
        return b"".join(data for n, data in list(seen) if n == name)

    # The command waits for a file that is created only once its first lines were told.
    wait = "i=0; while [ ! -e go ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done"
    script = f"echo one; echo two >&2; {wait}; echo three"
    done: list[RunResult] = []
    worker = threading.Thread(
        target=lambda: done.append(
            box.run([SH, "-c", script], on_output=lambda n, d: seen.append((n, d)))
        )
    )
    worker.start()
    until("the first lines told", lambda: told("stdout") == b"one\n" and told("stderr") != b"", 5)
    (box.host_path("/golem/work") / "go").touch()
    worker.join(10)
    (result,) = done
    assert (result.stdout, result.stderr) == (b"one\nthree\n", b"two\n")
    assert (told("stdout"), told("stderr")) == (result.stdout, result.stderr)


def test_no_descriptors_or_processes_leak(box: Sandbox) -> None:
    def open_fds() -> int:
        return len(list(Path("/proc/self/fd").iterdir()))

    box.run(["true"])
    before = open_fds()
    # Session fixtures (yagna, localnet's providers) are children of this process too.
    children_before = {p.pid for p in psutil.Process().children()}
    for _ in range(3):
        box.run(["true"])
        sh(box, "sleep 60", timeout=0.05)
        box.run(["/no/such/program"])
        with pytest.raises(SandboxError):
            box.run(["true"], cwd="/nowhere")
    assert open_fds() == before
    assert {p.pid for p in psutil.Process().children()} <= children_before


def test_probe_passes_here() -> None:
    probe()


def test_argv_is_not_run_through_a_shell(box: Sandbox) -> None:
    result = box.run(["echo", "$(id)", "`id`", "a;b", "*"])
    assert result.stdout == b"$(id) `id` a;b *\n"


def test_a_missing_command_is_exit_127_and_a_bad_cwd_a_sandbox_error(box: Sandbox) -> None:
    result = box.run(["/no/such/program"])
    assert result.exit_code == 127
    assert b"No such file" in result.stderr
    with pytest.raises(SandboxError, match="chdir"):
        box.run(["true"], cwd="/golem/nowhere")
    with pytest.raises(ValueError, match="argv"):
        box.run([])
    with pytest.raises(ValueError, match="argv"):
        box.run("echo hi")
    with pytest.raises(ValueError, match="timeout"):
        box.run(["true"], timeout=0)


def test_writes_land_in_the_host_volume(box: Sandbox) -> None:
    assert sh(box, "echo data > /golem/output/out.txt && mkdir -p /golem/work/a/b").exit_code == 0
    host = box.host_path("/golem/output/out.txt")
    assert host == box.volumes["/golem/output"] / "out.txt"
    assert host.read_bytes() == b"data\n"
    assert box.host_path("/golem/work/a/b").is_dir()
    (box.volumes["/golem/input"] / "in.txt").write_text("from the host")
    assert box.run(["cat", "/golem/input/in.txt"]).stdout == b"from the host"


def test_timeout_kills_the_whole_tree_promptly(box: Sandbox) -> None:
    marker = "61.25"  # a sleep nothing else on this machine runs
    started = time.monotonic()
    result = sh(box, f"sh -c 'sleep {marker}' & sleep {marker}", timeout=0.5)
    assert result.timed_out
    assert result.exit_code == -9
    assert time.monotonic() - started < 3
    assert result.cpu_seconds < 0.2  # sleeping costs nothing

    def survivors() -> list[psutil.Process]:
        # Killed processes may still wait for the container's init to reap them.
        return [
            p
            for p in psutil.process_iter(["cmdline", "status"])
            if marker in (p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE
        ]

    wait_for("the killed tree to be gone", lambda: not survivors(), timeout=3)


def test_host_path_refuses_escapes(box: Sandbox, make: Make, tmp_path: Path) -> None:
    other = make(tmp_path / "activity-2")
    secret = other.volumes["/golem/work"] / "secret.txt"
    secret.write_text("other activity's data")
    for bad in (
        "golem/work/x",
        "/golem/work/../../etc/passwd",
        "/golem/work/..",
        "/etc/passwd",
        "/golem",
        "/golem/workx/file",
        str(secret),
    ):
        with pytest.raises(SandboxPathError) as caught:
            box.host_path(bad)
        assert repr(bad) in str(caught.value)
    script = (
        "ln -s /etc/passwd /golem/work/passwd; "
        f"ln -s {secret} /golem/work/other; "
        f"ln -s {secret.parent} /golem/work/otherdir; "
        "ln -s ../../etc /golem/output/up; "
        "ln -s /golem/work/loop /golem/work/loop; "
        "ln -s /golem/input/ok.txt /golem/work/fine; "
        "ln -s ../input /golem/work/rel"
    )
    assert sh(box, script).exit_code == 0
    for link in ("passwd", "other", "otherdir/secret.txt", "loop"):
        with pytest.raises(SandboxPathError):
            box.host_path(f"/golem/work/{link}")
    with pytest.raises(SandboxPathError, match="leads to /etc/shadow"):
        box.host_path("/golem/output/up/shadow")
    inputs = box.volumes["/golem/input"]
    assert box.host_path("/golem/work/fine") == inputs / "ok.txt"
    assert box.host_path("/golem/work/rel/x/y") == inputs / "x" / "y"
    other.destroy()


def test_other_activities_and_the_host_are_not_visible(
    box: Sandbox, make: Make, tmp_path: Path
) -> None:
    other = make(tmp_path / "activity-2")
    (other.volumes["/golem/work"] / "secret.txt").write_text("other activity's data")
    marker = tmp_path / "host-tmp-marker"  # tmp_path lives in the host's /tmp
    marker.write_text("host")
    checks = [other.volumes["/golem/work"] / "secret.txt", other.activity_dir, marker]
    for path in [*checks, Path("/root"), Path("/home"), Path("/work"), Path("/sys")]:
        result = box.run(["ls", "-d", str(path)])
        assert result.exit_code != 0, path
        assert b"No such file" in result.stderr
    assert box.run(["ls", "/tmp"]).stdout == b""  # noqa: S108 - the sandbox's own /tmp
    assert sh(box, "ls /golem").stdout.split() == [b"input", b"output", b"resource", b"work"]
    assert box.run(["cat", "/etc/shadow"]).stdout == b""  # only root may read it on the host
    other.destroy()


def test_the_system_is_read_only_and_tmp_private(box: Sandbox) -> None:
    for target in ("/usr/x", "/etc/x", "/x", "/bin/x", "/golem/x"):
        result = box.run(["touch", target])
        assert result.exit_code != 0, target
        assert b"Read-only file system" in result.stderr
    assert sh(box, "echo t > /tmp/t && cat /tmp/t").stdout == b"t\n"
    # One-shot: a fresh /tmp per command; in a container it lives as long as the container.
    expected = b"t\n" if box.persistent else b""
    assert box.run(["ls", "/tmp"]).stdout == expected  # noqa: S108 - the sandbox's own


def test_no_network(box: Sandbox) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.0)
        port = listener.getsockname()[1]
        result = box.run(["bash", "-c", f"echo hi > /dev/tcp/127.0.0.1/{port}"], timeout=10)
        assert result.exit_code != 0
        assert b"Connection refused" in result.stderr
        with pytest.raises(BlockingIOError):
            listener.accept()
    interfaces = box.run(["cat", "/proc/net/dev"]).stdout.splitlines()[2:]
    assert [line.split(b":")[0].strip() for line in interfaces] == [b"lo"]


def test_memory_and_file_size_limits(make: Make, tmp_path: Path) -> None:
    limited = make(tmp_path / "a", limits=Limits(mem_bytes=64 * 2**20, file_size_bytes=2**20))
    result = limited.run(["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"])
    assert result.exit_code != 0
    assert b"memory exhausted" in result.stderr
    result = sh(limited, "head -c 3000000 /dev/zero > /golem/work/big")
    assert result.exit_code != 0
    assert (limited.volumes["/golem/work"] / "big").stat().st_size <= 2**20
    free = make(tmp_path / "b")
    assert free.run(["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"]).exit_code == 0


def test_max_processes_stops_a_fork_bomb(make: Make, tmp_path: Path) -> None:
    limited = make(tmp_path / "a", limits=Limits(max_processes=20))
    bomb = "for i in $(seq 50); do sleep 30.5 & done; wait"
    result = sh(limited, bomb, timeout=10)
    assert not result.timed_out
    assert result.exit_code != 0
    assert b"fork" in result.stderr.lower()
    if limited.persistent:  # what the bomb started lives on in the container, and counts
        assert 0 < len(running("30.5")) < 20
        assert sh(limited, "true & wait").exit_code != 0
        assert sh(limited, "kill -KILL -1").exit_code == 0  # all but pid 1 and itself
        until("the leftover sleeps to be reaped", lambda: running("30.5") == [])
    assert sh(limited, "for i in $(seq 5); do true & done; wait").exit_code == 0


def test_cpu_threads_pins_the_command(make: Make, tmp_path: Path) -> None:
    cpus = len(os.sched_getaffinity(0))
    pinned = make(tmp_path / "a", limits=Limits(cpu_threads=1))
    assert pinned.run(["nproc"]).stdout == (b"1\n" if cpus > 1 else f"{cpus}\n".encode())
    with pytest.raises(ValueError, match="max_processes"):
        Limits(max_processes=0)


BUSY = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"


def test_cpu_seconds_come_from_the_commands_own_tree(make: Make, tmp_path: Path) -> None:
    busy, idle = make(tmp_path / "busy"), make(tmp_path / "idle")
    idle_before = idle.cpu_seconds  # a container's init has used a little to start
    results: dict[str, RunResult] = {}
    worker = threading.Thread(target=lambda: results.update(busy=sh(busy, BUSY)))
    worker.start()
    quiet = idle.run(["true"])
    worker.join(timeout=60)
    assert quiet.cpu_seconds < 0.1  # not charged for the busy sandbox running alongside
    assert results["busy"].cpu_seconds > 0.2
    assert busy.cpu_seconds >= results["busy"].cpu_seconds
    assert idle.cpu_seconds - idle_before == pytest.approx(quiet.cpu_seconds, abs=0.05)


def test_cancel_kills_a_running_command_and_cpu_is_seen_live(box: Sandbox) -> None:
    results: dict[str, RunResult] = {}
    worker = threading.Thread(target=lambda: results.update(r=sh(box, "while :; do :; done")))
    worker.start()
    until("cpu seconds to show", lambda: box.cpu_seconds >= 0.2, timeout=30)
    seen = box.cpu_seconds
    box.cancel()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert seen >= 0.2
    assert results["r"].exit_code == -9
    assert not results["r"].timed_out
    assert box.cpu_seconds >= seen


def test_destroy_kills_and_removes(make: Make, tmp_path: Path) -> None:
    sandbox = make(tmp_path / "a")
    locked = "mkdir /golem/work/d && touch /golem/work/d/f && chmod 0 /golem/work/d"
    assert sh(sandbox, locked).exit_code == 0
    results: dict[str, RunResult] = {}
    marker = "60.75"
    worker = threading.Thread(target=lambda: results.update(r=sandbox.run(["sleep", marker])))
    worker.start()
    until("the command to run", lambda: bool(running(marker)))
    sandbox.destroy()
    worker.join(timeout=10)
    assert results["r"].exit_code == -9
    assert running(marker) == []
    assert not sandbox.activity_dir.exists()
    with pytest.raises(SandboxError, match="destroyed"):
        sandbox.run(["true"])


def test_missing_bubblewrap_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxUnavailableError, match="sudo apt-get install bubblewrap"):
        find_bwrap()
    with pytest.raises(SandboxUnavailableError, match="sudo apt-get install bubblewrap"):
        Sandbox(tmp_path / "a")
    with pytest.raises(SandboxUnavailableError, match="sudo apt-get install bubblewrap"):
        probe()
    monkeypatch.setattr("shutil.which", lambda _name: None)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    with pytest.raises(SandboxUnavailableError):
        find_bwrap()
