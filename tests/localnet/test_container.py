"""An activity's container: what one ``run`` leaves running lives on beside the next, until the
container stops; and it is as isolated, limited and accounted for as a one-shot sandbox.

Background processes carry a marker argument (``sleep 301.5``) that nothing else on the machine
runs, so the host can tell whether they live. No sleeps: waits are on conditions with deadlines.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from golem_actors.localnet import channel
from golem_actors.localnet.batches import Batch, CommandState
from golem_actors.localnet.runtime import ActivityRuntime, RuntimeSettings
from golem_actors.localnet.sandbox import Limits, RunResult, Sandbox, SandboxError
from golem_actors.yagna.models import Agreement, Demand, Offer
from tests.localnet.test_sandbox import running, sh, until

ALIVE = 'kill -0 "$(cat /golem/work/pid)"'


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path / "activity-1")
    assert sandbox.start()
    yield sandbox
    sandbox.destroy()


def background(sandbox: Sandbox, command: str) -> None:
    """Start ``command`` in the background; its pid goes to /golem/work/pid."""
    result = sh(sandbox, f"{command} & echo $! > /golem/work/pid")
    assert result.exit_code == 0, result


def test_a_background_process_outlives_its_run_until_the_container_stops(box: Sandbox) -> None:
    background(box, "sleep 301.5")
    assert sh(box, ALIVE).exit_code == 0
    assert len(running("301.5")) == 1
    assert sh(box, "cat /proc/$(cat /golem/work/pid)/cmdline | tr '\\0' ' '").stdout == (
        b"sleep 301.5 "
    )
    box.stop()
    assert running("301.5") == []
    assert not box.persistent
    assert sh(box, "echo $$").stdout == b"1\n"  # stopped: one sandbox per command again


def test_tmp_persists_for_the_containers_life(box: Sandbox) -> None:
    assert sh(box, "echo kept > /tmp/note").exit_code == 0
    assert box.run(["cat", "/tmp/note"]).stdout == b"kept\n"  # noqa: S108 - the container's
    assert box.start()  # a fresh container: a fresh /tmp
    assert box.run(["ls", "/tmp"]).stdout == b""  # noqa: S108


def test_a_timeout_or_cancel_kills_the_commands_tree_but_not_the_background(
    box: Sandbox,
) -> None:
    background(box, "sleep 302.5")
    started = time.monotonic()
    result = sh(box, "sleep 303.5 & setsid sleep 304.5 & sleep 305.5", timeout=0.5)
    assert result.timed_out
    assert result.exit_code == -9
    assert time.monotonic() - started < 3
    for marker in ("303.5", "304.5", "305.5"):  # its session, and a descendant that left it
        assert running(marker) == [], marker
    assert sh(box, ALIVE).exit_code == 0  # started by an earlier command: untouched
    results: dict[str, RunResult] = {}
    worker = threading.Thread(target=lambda: results.update(r=box.run(["sleep", "306.5"])))
    worker.start()
    until("the command to run", lambda: bool(running("306.5")))
    box.cancel()
    worker.join(timeout=10)
    assert results["r"].exit_code == -9
    assert not results["r"].timed_out
    assert running("306.5") == []
    assert len(running("302.5")) == 1
    assert box.persistent


def test_cpu_of_background_processes_is_counted(box: Sandbox) -> None:
    before = box.cpu_seconds
    result = sh(box, "while :; do :; done & echo $! > /golem/work/pid")
    assert result.cpu_seconds < 0.1  # the command itself ended at once
    until("the background loop's cpu to count", lambda: box.cpu_seconds >= before + 0.5)
    assert sh(box, 'kill "$(cat /golem/work/pid)"').exit_code == 0
    until("the loop to be reaped", lambda: sh(box, ALIVE).exit_code != 0)
    seen = box.cpu_seconds  # reaped by the init: in its cutime now
    assert seen >= before + 0.5
    sh(box, "while :; do :; done & echo $! > /golem/work/pid")
    until("a second loop to count", lambda: box.cpu_seconds >= seen + 0.3)
    live = box.cpu_seconds
    box.stop()  # killed with the container: bwrap's rusage has it
    assert box.cpu_seconds >= live


def test_a_chatty_background_process_neither_blocks_the_command_nor_dies(box: Sandbox) -> None:
    started = time.monotonic()
    result = sh(box, "(while :; do echo spam; done) & echo $! > /golem/work/pid; echo mine")
    assert time.monotonic() - started < 5  # not waiting for the pipe's other holders
    assert result.exit_code == 0
    assert b"mine\n" in result.stdout
    for _ in range(3):  # it writes on into a pipe the container drains (no SIGPIPE)
        assert sh(box, ALIVE).exit_code == 0
    assert sh(box, 'kill "$(cat /golem/work/pid)"').exit_code == 0


def test_containers_see_neither_each_others_processes_nor_volumes(
    box: Sandbox, tmp_path: Path
) -> None:
    other = Sandbox(tmp_path / "activity-2")
    try:
        assert other.start()
        background(box, "sleep 307.5")
        (box.volumes["/golem/work"] / "secret").write_text("activity 1's")
        every_cmdline = "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"
        assert b"307.5" in sh(box, every_cmdline).stdout  # the control
        assert b"307.5" not in sh(other, every_cmdline).stdout
        pids = sh(other, "ls /proc | grep '^[0-9]*$'").stdout.split()
        assert len(pids) <= 4  # the init, sh, ls and grep
        for path in (box.volumes["/golem/work"] / "secret", box.activity_dir):
            assert other.run(["ls", str(path)]).exit_code != 0
        assert other.run(["cat", "/golem/work/secret"]).exit_code != 0
        assert box.container_pid != other.container_pid
    finally:
        other.destroy()


def test_stop_then_start_gives_a_fresh_container(box: Sandbox) -> None:
    background(box, "sleep 308.5")
    sh(box, "touch /tmp/old")
    first = box.container_pid
    box.stop()
    assert not box.persistent
    assert box.start()
    second = box.container_pid
    assert second is not None
    assert second != first
    assert running("308.5") == []
    assert sh(box, "ls /tmp; ls /proc | grep -c '^[0-9]*$'").stdout == b"4\n"  # init sh ls grep
    assert (box.volumes["/golem/work"] / "pid").exists()  # the volumes stay


def test_a_dead_container_fails_later_commands_clearly(box: Sandbox) -> None:
    background(box, "sleep 309.5")
    pid = box.container_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    until("the container to be gone", lambda: not box.persistent)
    with pytest.raises(SandboxError, match=r"container has stopped: its init \(pid 1\) was kill"):
        box.run(["true"])
    assert running("309.5") == []
    assert box.start()  # and a new one can be started
    assert box.run(["true"]).exit_code == 0


def test_paused_stops_every_process_but_the_init_and_leaves_self_stopped_ones(
    box: Sandbox,
) -> None:
    background(box, "sleep 310.5")
    background(box, "sleep 311.5")
    assert sh(box, 'kill -STOP "$(cat /golem/work/pid)"').exit_code == 0  # 311.5 stops itself
    until("311.5 to stop", lambda: running("311.5")[0].status() == psutil.STATUS_STOPPED)
    init = psutil.Process(box.container_pid)
    with box.paused():
        inside = init.children(recursive=True)
        assert len(inside) == 2
        assert all(proc.status() == psutil.STATUS_STOPPED for proc in inside)
        assert init.status() != psutil.STATUS_STOPPED
    until("310.5 to run again", lambda: running("310.5")[0].status() != psutil.STATUS_STOPPED)
    assert running("311.5")[0].status() == psutil.STATUS_STOPPED


def shell_only_rootfs(dest: Path, python3: str | None = None) -> Path:
    """A rootfs with ``/bin/sh`` and its libraries, and optionally a ``python3`` script."""
    shell = Path("/bin/sh").resolve()
    libs = subprocess.run(["ldd", str(shell)], capture_output=True, text=True, check=True).stdout
    for path in [str(shell), *re.findall(r"(/\S+) \(0x", libs)]:
        target = dest / "bin" / "sh" if path == str(shell) else dest / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(path).resolve(), target)
    if python3 is not None:
        (dest / "usr" / "bin").mkdir(parents=True)
        (dest / "usr" / "bin" / "python3").write_text(f"#!/bin/sh\n{python3}\n")
        (dest / "usr" / "bin" / "python3").chmod(0o755)
    return dest


@pytest.mark.parametrize(
    ("python3", "why"),
    [
        (None, "execvp python3: No such file or directory"),
        ("echo 'Python 2.7.18' >&2; exit 2", "Python 2.7.18"),
    ],
)
def test_an_image_without_a_usable_python_falls_back_to_a_sandbox_per_command(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, python3: str | None, why: str
) -> None:
    rootfs = shell_only_rootfs(tmp_path / "rootfs", python3)
    sandbox = Sandbox(tmp_path / "activity", rootfs=rootfs)
    try:
        with caplog.at_level(logging.WARNING):
            assert not sandbox.start()
        assert not sandbox.persistent
        message = caplog.text
        assert "the image has no usable python3 (3.8 or later) for the init" in message
        assert why in message
        assert "run in a sandbox each" in message
        result = sandbox.run(["/bin/sh", "-c", "echo $$; sleep 312.5 & echo started"])
        assert result.stdout == b"1\nstarted\n"
        assert running("312.5") == []  # ended with its command, as the log said
    finally:
        sandbox.destroy()


def test_limits_bind_commands_but_not_the_init(tmp_path: Path) -> None:
    limits = Limits(mem_bytes=32 * 2**20, file_size_bytes=2**20, max_processes=30)
    sandbox = Sandbox(tmp_path / "a", limits=limits)
    try:
        assert sandbox.start()  # a Python init needs more than 32 MiB of address space
        ulimits = sh(sandbox, "ulimit -v; ulimit -f; ulimit -c").stdout.split()
        assert ulimits == [b"32768", b"2048", b"0"]  # KiB, 512-byte blocks, none
        init = Path(f"/proc/{sandbox.container_pid}/limits").read_text()
        assert re.search(r"Max address space\s+unlimited", init)
    finally:
        sandbox.destroy()


def test_the_inits_messages_are_checked_not_trusted() -> None:
    assert channel._message(b'{"started": 3}') is None
    assert channel._message(b'{"exit": 3, "cpu": 0.5}') == {"exit": 3.0, "cpu": 0.5}
    bad = [b"kill", b"[]", b'{"exit": "3"}', b'{"exit": true}', b'{"exit": 1, "cpu": NaN}']
    for line in bad:
        with pytest.raises(SandboxError, match="malformed message"):
            channel._message(line)
    with pytest.raises(SandboxError, match="could not start the command: chdir /x: No such"):
        channel._message(b'{"error": "chdir /x: No such file or directory"}')


# -- ExeScript: start, terminate, activity destroy -------------------------------------------


def an_agreement() -> Agreement:
    return Agreement(
        agreement_id="agr-container",
        demand=Demand(properties={}, constraints=""),
        offer=Offer(properties={"golem.inf.cpu.threads": 1}, constraints=""),
        valid_to=dt.datetime.now(dt.UTC),
        state="Approved",
    )


def execute(runtime: ActivityRuntime, *commands: dict[str, Any]) -> list[CommandState]:
    batch = Batch(f"b{time.monotonic_ns()}", list(commands))
    states = []
    for index, command in enumerate(commands):
        state, _ = runtime.execute(batch, index, command)
        states.append(state)
        if not state.ok:
            break
    return states


def run_sh(script: str) -> dict[str, Any]:
    return {"run": {"entry_point": "/bin/sh", "args": ["-c", script]}}


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ActivityRuntime]:
    settings = RuntimeSettings(tmp_path / "activities", lambda _package: None, 10.0)
    states: list[str] = []
    made = ActivityRuntime(
        tmp_path / "activities" / "act-1",
        an_agreement(),
        settings,
        report_state=lambda state, _pending: states.append(state),
        abort_others=lambda _batch: None,
        stopping=threading.Event(),
        command_timeout=10.0,
    )
    yield made
    made.destroy()


def test_exescript_start_terminate_and_destroy_own_the_container(runtime: ActivityRuntime) -> None:
    deploy: dict[str, Any] = {"deploy": {}}
    start: dict[str, Any] = {"start": {}}
    ok = [True] * 4
    states = execute(
        runtime, deploy, start, run_sh("sleep 313.5 & echo $! > /golem/work/pid"), run_sh(ALIVE)
    )
    assert [s.ok for s in states] == ok, states
    assert len(running("313.5")) == 1
    assert execute(runtime, {"terminate": {}})[0].ok
    assert running("313.5") == []
    assert runtime.state == ("Initialized", None)
    assert [s.ok for s in execute(runtime, deploy, start, run_sh("test ! -e /tmp/x"))] == ok[:3]
    assert [s.ok for s in execute(runtime, run_sh("sleep 314.5 & touch /tmp/x"))] == [True]
    sandbox = runtime._sandbox
    assert isinstance(sandbox, Sandbox)
    os.kill(sandbox.container_pid or 0, signal.SIGKILL)
    until("the container to die", lambda: not sandbox.persistent)
    (failed,) = execute(runtime, run_sh("true"))
    assert not failed.ok
    assert failed.message is not None
    assert failed.message.startswith("run failed: the activity's container has stopped: its init")
    assert execute(runtime, {"terminate": {}})[0].ok
    assert [s.ok for s in execute(runtime, deploy, start, run_sh("sleep 315.5 &"))] == ok[:3]
    assert len(running("315.5")) == 1
    runtime.destroy()  # the activity is gone: its container and volumes too
    assert running("315.5") == []
    assert not runtime.dir.exists()


# -- as an unprivileged provider --------------------------------------------------------------


def unprivileged_scenario(where: str) -> None:
    """The container's life as the provider's user sees it (run as uid 65534 by the test)."""
    sandbox = Sandbox(Path(where) / "activity")
    try:
        assert sandbox.start(), "no container"
        background(sandbox, "sleep 316.5")
        assert sh(sandbox, ALIVE).exit_code == 0
        assert sh(sandbox, "echo t > /tmp/t").exit_code == 0
        assert sandbox.run(["cat", "/tmp/t"]).stdout == b"t\n"  # noqa: S108
        assert sh(sandbox, "id -u").stdout == str(os.getuid()).encode() + b"\n"
        caps = sh(sandbox, "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status").stdout.split()
        assert caps == [b"CapEff:", b"0000000000000000", b"NoNewPrivs:", b"1"], caps
        timed_out = sh(sandbox, "sleep 317.5", timeout=0.3)
        assert (timed_out.exit_code, timed_out.timed_out) == (-9, True)
        assert sh(sandbox, ALIVE).exit_code == 0
        before = sandbox.cpu_seconds
        background(sandbox, "while :; do :; done")
        until("background cpu", lambda: sandbox.cpu_seconds >= before + 0.3)
        with sandbox.paused():
            pass
        sandbox.stop()
        assert sh(sandbox, ALIVE).exit_code != 0
    finally:
        sandbox.destroy()


def test_the_container_works_for_an_unprivileged_provider() -> None:
    if os.geteuid() != 0:  # this whole suite runs unprivileged then
        with tempfile.TemporaryDirectory(prefix="golem-container-") as where:
            unprivileged_scenario(where)
        return
    where = tempfile.mkdtemp(prefix="golem-container-")
    try:
        os.chown(where, 65534, 65534)
        code = f"from tests.localnet.test_container import unprivileged_scenario as s; s({where!r})"
        as_nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
        done = subprocess.run(
            [*as_nobody, "--", sys.executable, "-c", code],
            cwd=Path(__file__).parents[2],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(where)
