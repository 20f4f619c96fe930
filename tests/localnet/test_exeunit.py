"""The exe-unit: its bookkeeping unit-tested through the GSB handler, then the whole flow through
the real yagna and LocalNet's providers (bubblewrap sandboxes, HTTP transfers, fault knobs).

No sleeps: the unit tests drive a fake sandbox whose commands block on gates the test opens,
and the integration tests wait on conditions with deadlines.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, cast

import pytest
import requests

from golem_actors.exescript import Capture, Script
from golem_actors.localnet import gsb as gsblib
from golem_actors.localnet.batches import format_output
from golem_actors.localnet.exeunit import TIMEOUT_PROPERTY, ExeUnit
from golem_actors.localnet.faults import Faults
from golem_actors.localnet.images import ImageError, ImageStore
from golem_actors.localnet.network import LocalNet
from golem_actors.localnet.runtime import TASK_PACKAGE, RuntimeSettings
from golem_actors.localnet.sandbox import Limits, RunResult, SandboxError, SandboxPathError
from golem_actors.localnet.transfers import TransferError, transfer
from golem_actors.yagna import (
    ApiConfig,
    YagnaClient,
    YagnaError,
    YagnaServerError,
    YagnaTimeoutError,
)
from golem_actors.yagna.models import (
    Agreement,
    Allocation,
    CommandResult,
    Demand,
    Offer,
    RuntimeEvent,
)
from golem_actors.yagna.transport import Cancel
from tests.localnet.requestor import demand
from tests.localnet.test_sandbox import running
from tests.waiting import wait_for

ACT = "act-0001"
ADDRESS = f"/public/exeunit/{ACT}"
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
NAIVE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
# What yagna passes on after parsing ours: chrono prints the fraction in 0, 3, 6 or 9 digits,
# shortest exact (".123" for 123000 us, none for 0).
CHRONO_NAIVE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?$")
VOLUMES = ("work", "input", "output", "resource")


# -- a fake sandbox and bus for the unit tests ----------------------------------------------------


class FakeSandbox:
    """Commands by name: ``out STDOUT STDERR``, ``exit CODE [STDERR]``, ``gate NAME`` (blocks
    until the test opens gate NAME, the sandbox is cancelled, or the timeout expires)."""

    def __init__(self, root: Path, env: Any) -> None:
        self.root, self.env = root, env
        for volume in VOLUMES:
            (root / volume).mkdir(parents=True, exist_ok=True)
        self.runs: list[list[str]] = []
        self.network: Any = None  # the SandboxNetwork it was made with
        self.destroyed = False
        self.starts = self.stops = 0
        self.fail_start: str | None = None
        self.is_paused = False
        self.resolved_paused: list[bool] = []  # host_path calls: inside paused()?
        self._gates: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._cancelled = False

    def gate(self, name: str) -> threading.Event:
        with self._lock:
            return self._gates.setdefault(name, threading.Event())

    def host_path(self, container_path: str) -> Path:
        self.resolved_paused.append(self.is_paused)
        parts = PurePosixPath(container_path).parts
        if (
            ".." in parts
            or parts[:2] != ("/", "golem")
            or len(parts) < 3
            or parts[2] not in VOLUMES
        ):
            raise SandboxPathError(f"{container_path} is outside the volumes")
        return self.root.joinpath(*parts[2:])

    def run(
        self,
        argv: Any,
        *,
        env: Any = None,
        timeout: float | None = None,
        cwd: str = "/golem/work",
        on_output: Any = None,
    ) -> RunResult:
        self.runs.append(list(argv))
        self._cancelled = False
        kind, *args = argv
        if kind == "out":
            out, err = args[0].encode(), args[1].encode()
            for name, data in (("stdout", out), ("stderr", err)):
                if on_output is not None and data:
                    on_output(name, data)  # as the real sandbox does, while it runs
            return RunResult(0, out, err, 0.01, 0.01, timed_out=False)
        if kind == "exit":
            err = args[1].encode() if len(args) > 1 else b""
            return RunResult(int(args[0]), b"", err, 0.01, 0.01, timed_out=False)
        if kind == "gate":
            opened = self.gate(args[0]).wait(timeout or 10.0)
            if self._cancelled:
                return RunResult(-9, b"", b"", 0.0, 0.0, timed_out=False)
            return RunResult(0 if opened else -9, b"", b"", 0.0, 0.0, timed_out=not opened)
        return RunResult(127, b"", f"{kind}: not found\n".encode(), 0.0, 0.0, timed_out=False)

    def cancel(self) -> None:
        self._cancelled = True
        with self._lock:
            gates = list(self._gates.values())
        for gate in gates:
            gate.set()

    def start(self) -> bool:
        if self.fail_start:
            raise SandboxError(self.fail_start)
        self.starts += 1
        return True

    def stop(self) -> None:
        self.stops += 1

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self.is_paused = True
        try:
            yield
        finally:
            self.is_paused = False

    @property
    def cpu_seconds(self) -> float:
        return 1.5

    def destroy(self) -> None:
        self.destroyed = True


class FakeGsb:
    def __init__(self) -> None:
        self.registered: dict[str, Any] = {}
        self.states: list[list[Any]] = []

    def register(self, address: str, handler: Any, *, timeout: float = 5.0) -> None:
        if address in self.registered:
            raise gsblib.GsbRegisterError("register", address, 409, "")
        self.registered[address] = handler

    register_sink = register

    def unregister(self, address: str, *, timeout: float = 5.0) -> None:
        self.registered.pop(address, None)

    def call(self, address: str, body: Any, *, timeout: float, caller: str = "local") -> Any:
        assert address == "/local/activity/SetActivityState"
        self.states.append(body["state"]["state"])
        return {"Ok": None}


def agreement(demand_props: dict[str, Any] | None = None) -> Agreement:
    offer = {"golem.inf.cpu.threads": 2, "golem.inf.mem.gib": 4.0, "golem.inf.storage.gib": 1.0}
    return Agreement(
        agreement_id="agr-1",
        demand=Demand(properties=demand_props or {}, constraints=""),
        offer=Offer(properties=offer, constraints=""),
        valid_to=dt.datetime.now(dt.UTC),
        state="Approved",
    )


@dataclass
class Unit:
    exeunit: ExeUnit
    gsb: FakeGsb
    faults: list[Faults]
    sandboxes: list[FakeSandbox] = field(default_factory=list)
    limits: list[Limits] = field(default_factory=list)

    @property
    def sandbox(self) -> FakeSandbox:
        return self.sandboxes[0]

    def call(self, method: str, **body: Any) -> Any:
        return self.exeunit.handle(incoming(method, {"activityId": ACT, **body}))

    def exec(self, *script: dict[str, Any], batch_id: str = "b1") -> str:
        reply = self.call("Exec", batchId=batch_id, exeScript=list(script), timeout=5.0)
        return cast("str", reply["Ok"])

    def results(
        self, batch_id: str = "b1", *, timeout: float | None = None, index: int | None = None
    ) -> list[dict[str, Any]]:
        reply = self.call(
            "GetExecBatchResults", batchId=batch_id, commandIndex=index, timeout=timeout
        )
        return cast("list[dict[str, Any]]", reply["Ok"])

    def finished(self, batch_id: str = "b1") -> list[dict[str, Any]]:
        results = self.results(batch_id, timeout=5.0)
        assert results, "no results"
        assert results[-1]["isBatchFinished"], results
        return results

    def ready(self) -> None:
        self.exec(deploy(), {"start": {"args": []}}, batch_id="setup")
        assert [r["result"] for r in self.finished("setup")] == ["Ok", "Ok"]


def deploy() -> dict[str, Any]:
    return {
        "deploy": {"env": {"A": "1"}, "hostname": None, "hosts": {}, "net": [], "progress": None}
    }


def run(*argv: str, capture: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"entry_point": argv[0], "args": list(argv[1:])}
    if capture is not None:
        body["capture"] = capture
    return {"run": body}


@pytest.fixture
def unit(tmp_path: Path) -> Iterator[Unit]:
    with make_unit(tmp_path) as u:
        yield u


@contextlib.contextmanager
def make_unit(tmp_path: Path, demand_props: dict[str, Any] | None = None) -> Iterator[Unit]:
    faults = [Faults()]
    gsb = FakeGsb()
    holder: list[FakeSandbox] = []
    limits: list[Limits] = []

    def make_sandbox(
        path: Path, rootfs: Path | None, lim: Limits, env: Any, volumes: Any, *, network: Any = None
    ) -> FakeSandbox:
        limits.append(lim)
        holder.append(FakeSandbox(path, env))
        holder[-1].network = network
        return holder[-1]

    def resolve(package: str | None) -> Path | None:
        if package and "missing" in package:
            raise ImageError(f"image {package} not found")
        return None

    settings = RuntimeSettings(tmp_path / "activities", resolve, 3.0, make_sandbox)
    exeunit = ExeUnit(
        ACT, agreement(demand_props), cast("gsblib.GsbClient", gsb), lambda: faults[0], settings
    )
    exeunit.start()
    u = Unit(exeunit, gsb, faults, holder, limits)
    try:
        yield u
    finally:
        for sandbox in holder:
            sandbox.cancel()
        exeunit.stop()


def incoming(method: str, body: dict[str, Any]) -> gsblib.IncomingCall:
    return gsblib.IncomingCall("0xr", f"{ADDRESS}/{method}", "1", body, no_reply=False)


def reply_error(fn: Any, *args: Any, **kwargs: Any) -> Any:
    with pytest.raises(gsblib.ReplyError) as info:
        fn(*args, **kwargs)
    return info.value.error


# -- unit tests: bookkeeping, long-polls, state machine, faults -----------------------------------


def test_registers_on_start_and_leaves_the_bus_on_stop(unit: Unit):
    assert list(unit.gsb.registered) == [ADDRESS]
    unit.ready()
    assert unit.gsb.states == [
        ["Initialized", "Deployed"],
        ["Deployed", None],
        ["Deployed", "Ready"],
        ["Ready", None],
    ]
    assert unit.sandbox.env == {"A": "1"}
    assert unit.limits[0] == Limits(cpu_threads=2, mem_bytes=4 * 2**30, file_size_bytes=2**30)
    assert unit.exeunit.cpu_seconds() == 1.5
    unit.exeunit.stop()
    assert unit.gsb.registered == {}
    assert unit.sandbox.destroyed
    unit.exeunit.stop()  # twice is harmless


def test_results_items_have_the_activity_api_shape(unit: Unit):
    unit.ready()
    unit.exec(run("out", "hello\n", "warn\n"), {"terminate": {}})
    results = unit.finished()
    assert [r["index"] for r in results] == [0, 1]
    first = results[0]
    assert set(first) == {
        "index",
        "eventDate",
        "result",
        "stdout",
        "stderr",
        "message",
        "isBatchFinished",
    }
    assert first["result"] == "Ok"
    assert (first["stdout"], first["stderr"], first["message"]) == ("hello\n", "warn\n", None)
    assert RFC3339_Z.match(first["eventDate"])
    assert not first["isBatchFinished"]
    assert results[1]["isBatchFinished"]
    assert results[1]["stdout"] is None  # nothing printed is null, not ""
    assert unit.sandbox.runs == [["out", "hello\n", "warn\n"]]


def test_a_null_timeout_answers_at_once_with_the_finished_prefix(unit: Unit):
    unit.ready()
    unit.exec(run("out", "a", ""), run("gate", "g"), run("out", "c", ""))
    prefix = wait_for("command 0", lambda: unit.results() or None, timeout=5)
    assert [r["index"] for r in prefix] == [0]
    assert unit.results(timeout=0.05) == prefix  # expired: the partial list, no error
    assert reply_error(unit.results, index=1, timeout=0.05) == "timeout"  # 408 at the requestor
    unit.sandbox.gate("g").set()
    assert [r["index"] for r in unit.finished()] == [0, 1, 2]
    only_one = unit.results(index=1)
    assert [r["index"] for r in only_one] == [0, 1]
    assert only_one[0]["stdout"] is None  # output only for the command asked about
    assert only_one[1]["isBatchFinished"] is False  # truthful, unlike the real exe-unit


def test_concurrent_long_polls_are_answered_as_their_commands_finish(unit: Unit):
    unit.ready()
    unit.exec(run("gate", "first"), run("gate", "second"))
    answered: list[str] = []

    def poll(name: str, index: int | None) -> list[dict[str, Any]]:
        results = unit.results(index=index, timeout=10.0)
        answered.append(name)
        return results

    with ThreadPoolExecutor(4) as pool:
        whole = pool.submit(poll, "whole", None)
        second = pool.submit(poll, "second", 1)
        firsts = [pool.submit(poll, f"first-{i}", 0) for i in range(2)]
        wait_for("the polls to be waiting", lambda: unit.exeunit.runtime.state[1] or None, 5)
        assert not any(f.done() for f in [whole, second, *firsts])
        unit.sandbox.gate("first").set()
        assert all(len(f.result(timeout=5)) == 1 for f in firsts)
        assert not whole.done()
        assert not second.done()
        unit.sandbox.gate("second").set()
        assert len(whole.result(timeout=5)) == len(second.result(timeout=5)) == 2
    assert sorted(answered[:2]) == ["first-0", "first-1"]


def test_a_failing_command_ends_the_batch_and_wakes_pollers(unit: Unit):
    unit.ready()
    unit.exec(run("exit", "3", "boom\n"), run("out", "never", ""))
    started = time.monotonic()
    results = unit.results(index=1, timeout=5.0)  # the batch ends early: no wait for command 1
    assert time.monotonic() - started < 2
    assert len(results) == 1
    assert results[0]["result"] == "Error"
    assert results[0]["isBatchFinished"]
    assert results[0]["message"] == "ExeScript command exited with code 3"
    assert results[0]["stderr"] is None  # output only for the command polled, as in yagna
    assert unit.results()[0]["stderr"] == "boom\n"
    assert unit.sandbox.runs == [["exit", "3", "boom\n"]]


def test_run_before_deploy_and_start_is_an_invalid_state(unit: Unit):
    unit.exec(run("out", "x", ""))
    (result,) = unit.finished()
    assert result["result"] == "Error"
    assert "Invalid state: StatePair(Initialized, None)" in result["message"]
    assert "deploy it first" in result["message"]
    unit.exec(deploy(), run("out", "x", ""), batch_id="b2")
    deployed, failed = unit.finished("b2")
    assert deployed["result"] == "Ok"
    assert "start it first" in failed["message"]
    unit.exec({"start": {}}, deploy(), batch_id="b3")
    assert "deployed and started already" in unit.finished("b3")[1]["message"]
    assert unit.call("GetState")["Ok"]["state"] == ["Ready", None]


def test_a_missing_image_fails_deploy_with_its_reason(tmp_path: Path):
    props = {"golem.srv.comp.task_package": "hash:sha3:missing:http://x/img"}
    with make_unit(tmp_path, props) as u:
        u.exec(deploy())
        (result,) = u.finished()
        assert result["result"] == "Error"
        assert "deploy failed: image hash:sha3:missing:http://x/img not found" in result["message"]
        assert u.call("GetState")["Ok"]["state"] == ["Initialized", None]  # deploy can be retried


def test_the_demand_may_lower_the_command_time_limit(tmp_path: Path):
    with make_unit(tmp_path, {TIMEOUT_PROPERTY: 0.2}) as u:
        u.ready()
        u.exec(run("gate", "never"))
        (result,) = u.finished()
        assert result["message"] == "command timed out after 0.2 s (this provider's limit)"
    with make_unit(tmp_path, {TIMEOUT_PROPERTY: 9999}) as u:
        assert u.exeunit.runtime.command_timeout == 3.0  # never raised above the provider's


def test_capture_formats_and_limits():
    assert format_output(None, b"abc") == ("abc", False)
    assert format_output({"atEnd": {"format": "bin"}}, b"hi") == ([104, 105], False)
    assert format_output({"atEnd": {"head": 2, "format": "str"}}, b"abcdef") == ("ab", False)
    assert format_output({"atEnd": {"tail": 2}}, b"abcdef") == ("ef", False)
    assert format_output({"atEnd": {"part": {"headTail": 4}}}, b"abcdefgh") == ("abgh", False)
    assert format_output({"stream": {"limit": 3, "format": "str"}}, b"abcdef") == ("abc", True)
    assert format_output({"atEnd": {}}, b"") == (None, False)
    assert format_output({"atEnd": {}}, b"\xff\xfe") == ("\xff\xfe", False)  # byte by byte
    with pytest.raises(ValueError, match="capture mode"):
        format_output({"later": {}}, b"x")


def test_capture_spec_per_stream(unit: Unit):
    unit.ready()
    capture = {"stdout": {"atEnd": {"format": "bin"}}}  # stderr not asked for: discarded
    unit.exec(run("out", "hi", "ignored", capture=capture))
    (result,) = unit.finished()
    assert result["stdout"] == [104, 105]
    assert result["stderr"] is None


def test_errors_for_unknown_batches_duplicates_and_other_activities(unit: Unit):
    assert reply_error(unit.results, "nope") == {"notFound": "batch_id = nope"}
    unit.exec(run("out", "x", ""))
    assert reply_error(unit.exec, run("out", "x", "")) == {"badRequest": "Batch b1 already exists"}
    error = reply_error(unit.results, index=5)
    assert "commandIndex 5 is outside" in error["badRequest"]
    call = incoming("Exec", {"activityId": "other"})
    assert reply_error(unit.exeunit.handle, call) == {
        "service": "Forbidden! Invalid activity id: other"
    }
    stream = {"activity_id": ACT, "batch_id": "nope"}
    call = incoming("StreamExecBatchResults", stream)
    assert reply_error(unit.exeunit.handle, call) == {"badRequest": "Unknown batch: nope"}


def test_stream_running_command_and_usage(unit: Unit):
    unit.ready()
    assert reply_error(unit.call, "GetRunningCommand") == {
        "notFound": f"No running command within activity: {ACT}"
    }
    streamed = {"stdout": {"stream": {"format": "str"}}}
    unit.exec(run("gate", "g"), run("out", "live\n", "", capture=streamed))
    wait_for("the gate command to run", lambda: unit.exeunit.runtime.state[1] or None, 5)
    running = unit.call("GetRunningCommand")["Ok"]
    assert running == [{"command": "run", "params": ["gate", "g"]}]
    call = incoming("StreamExecBatchResults", {"activity_id": ACT, "batch_id": "b1"})
    stream = unit.exeunit.handle(call)
    assert isinstance(stream, gsblib.Streamed)
    unit.sandbox.gate("g").set()
    events = [chunk["Ok"] for chunk in stream.chunks]  # ends with the batch
    kinds = [next(iter(e["kind"])) for e in events]
    assert kinds == ["started", "finished", "started", "stdout", "finished"]
    assert events[3]["kind"]["stdout"] == "live\n"
    assert events[4]["kind"]["finished"] == {"return_code": 0, "message": None}
    assert all(NAIVE.match(e["timestamp"]) and e["batch_id"] == "b1" for e in events)
    assert events[0]["kind"]["started"]["command"] == run("gate", "g")
    usage = unit.call("GetUsage")["Ok"]
    assert usage["currentUsage"][1] == 1.5


def test_terminate_stops_the_other_batches_and_returns_to_initialized(unit: Unit):
    unit.ready()
    unit.exec(run("gate", "forever"), run("out", "never", ""))
    wait_for("the command to run", lambda: unit.exeunit.runtime.state[1] or None, 5)
    unit.exec({"terminate": {}}, batch_id="stop")
    assert unit.finished("stop")[0]["result"] == "Ok"
    (interrupted,) = unit.finished()
    assert interrupted["result"] == "Error"
    assert "terminated" in interrupted["message"]
    assert unit.call("GetState")["Ok"]["state"] == ["Initialized", None]
    assert unit.gsb.states[-1] == ["Initialized", None]


def test_start_starts_the_container_and_terminate_stops_it(unit: Unit):
    unit.exec(deploy())
    unit.finished()
    unit.sandbox.fail_start = "bubblewrap could not make the container: boom"
    unit.exec({"start": {}}, batch_id="b2")
    (failed,) = unit.finished("b2")
    assert failed["result"] == "Error"
    assert failed["message"] == "start failed: bubblewrap could not make the container: boom"
    assert unit.call("GetState")["Ok"]["state"] == ["Deployed", None]  # start can be retried
    unit.sandbox.fail_start = None
    unit.exec({"start": {}}, batch_id="b3")
    assert unit.finished("b3")[0]["result"] == "Ok"
    assert (unit.sandbox.starts, unit.sandbox.stops) == (1, 0)
    unit.exec({"terminate": {}}, batch_id="b4")
    assert unit.finished("b4")[0]["result"] == "Ok"
    assert unit.sandbox.stops == 1
    unit.exec(deploy(), {"start": {}}, batch_id="b5")  # a fresh container on the same volumes
    assert [r["result"] for r in unit.finished("b5")] == ["Ok", "Ok"]
    assert unit.sandbox.starts == 2
    assert len(unit.sandboxes) == 1


def test_transfers_resolve_paths_with_the_container_paused(unit: Unit):
    unit.ready()
    (unit.sandbox.root / "work" / "f").write_text("x")
    unit.exec({"transfer": {"from": "container:/golem/work/f", "to": "container:/golem/output/"}})
    assert unit.finished()[0]["result"] == "Ok"
    assert unit.sandbox.resolved_paused
    assert all(unit.sandbox.resolved_paused)
    assert not unit.sandbox.is_paused


def test_a_second_stateful_command_meanwhile_is_busy(unit: Unit):
    unit.ready()
    unit.exec(run("gate", "g"))
    wait_for("the command to run", lambda: unit.exeunit.runtime.state[1] or None, 5)
    unit.exec(run("out", "x", ""), batch_id="b2")
    (busy,) = unit.finished("b2")
    assert busy["message"] == "Busy: StatePair(Ready, Ready)"
    unit.sandbox.gate("g").set()
    assert unit.finished()[0]["result"] == "Ok"


def test_fault_exec_delay_slows_each_command(unit: Unit):
    unit.ready()
    unit.faults[0] = Faults(exec_delay=0.3)
    started = time.monotonic()
    unit.exec(run("out", "a", ""), run("out", "b", ""))
    unit.finished()
    assert time.monotonic() - started >= 0.6


def test_fault_hang_holds_calls_until_it_clears(unit: Unit):
    unit.faults[0] = Faults(hang=True)
    caller = threading.Thread(target=unit.exec, args=(run("out", "x", ""),))
    caller.start()
    caller.join(0.5)
    assert caller.is_alive()  # no answer while hung
    unit.faults[0] = Faults()
    caller.join(5)
    assert not caller.is_alive()
    assert unit.finished()[0]["message"].startswith("Invalid state")


def test_fault_crash_at_command_leaves_the_bus_and_stops_usage(unit: Unit):
    unit.ready()
    unit.faults[0] = Faults(crash_exeunit_at_command=1)
    poller = ThreadPoolExecutor(1)
    unit.exec(run("out", "a", ""), run("out", "b", ""))
    pending = poller.submit(unit.results, timeout=10.0)
    with pytest.raises(gsblib.ReplyError) as info:
        pending.result(timeout=5)
    poller.shutdown()
    assert "crashed at command 1" in info.value.error["activity"]
    assert not unit.exeunit.alive
    assert unit.gsb.registered == {}
    assert unit.sandbox.runs == [["out", "a", ""]]


def test_transfer_refuses_other_schemes_and_archives(tmp_path: Path):
    sandbox = FakeSandbox(tmp_path, None)
    (tmp_path / "work" / "f").write_text("x")
    args: dict[str, Any] = {
        "host_path": sandbox.host_path,
        "deadline": time.monotonic() + 5,
        "cancel": threading.Event(),
    }
    cases = {
        ("gftp://0x1/abc", "container:/golem/input/f"): "gftp transfers need the provider.s bus",
        ("hash:sha3:zz:http://a/b", "container:/golem/input/f"): "malformed hash prefix",
        ("hash:md5:00ff:http://a/b", "container:/golem/input/f"): "unsupported digest md5",
        ("file:///etc/passwd", "container:/golem/input/f"): "is not a container: path",
        ("http://a/b", "https://c/d"): "needs a container: side",
        ("container:/golem/../etc/x", "container:/golem/work/f"): "transfer refused",
        ("container:/etc/passwd", "http://127.0.0.1:9/x"): "transfer refused",
        ("container:golem/work/f", "http://127.0.0.1:9/x"): "must be absolute",
        ("http://127.0.0.1:9/", "container:/golem/work/"): "cannot tell a file name",
    }
    for (src, dst), message in cases.items():
        with pytest.raises(TransferError, match=message):
            transfer(src, dst, **args)
    with pytest.raises(TransferError, match="archives"):
        transfer("container:/golem/work/f", "http://a/b", fmt="zip", **args)
    transfer("container:/golem/work/f", "container:/golem/output/", **args)
    assert (tmp_path / "output" / "f").read_text() == "x"
    (tmp_path / "work" / "link").symlink_to(tmp_path / "work" / "f")
    with pytest.raises(TransferError, match="cannot read link"):  # O_NOFOLLOW
        transfer("container:/golem/work/link", "container:/golem/output/g", **args)


# -- integration: a stock requestor's raw calls through the real yagna -----------------------------


class Files(http.server.ThreadingHTTPServer):
    """The requestor's file server: GET serves ``files``, PUT stores into ``uploads``."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FilesHandler)
        self.files: dict[str, bytes] = {}
        self.uploads: dict[str, bytes] = {}

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _FilesHandler(http.server.BaseHTTPRequestHandler):
    server: Files

    def do_GET(self) -> None:
        body = self.server.files.get(self.path)
        self.send_response(404 if body is None else 200)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def do_PUT(self) -> None:
        self.server.uploads[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def files() -> Iterator[Files]:
    server = Files()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def only(name: str) -> str:
    return f"(&(golem.runtime.name=vm)(golem.node.id.name={name}))"


@dataclass
class Activity:
    """An agreement with one provider and an activity on it, deployed and started."""

    client: YagnaClient
    provider: str
    agreement_id: str
    activity_id: str
    created: float

    @classmethod
    @contextlib.contextmanager
    def open(
        cls,
        client: YagnaClient,
        allocation: Allocation,
        provider: str,
        props: dict[str, Any] | None = None,
        *,
        deploy: bool = True,
    ) -> Iterator[Activity]:
        d = demand(client, allocation, constraints=only(provider), properties=props)
        agreement_id = d.agree(d.offers(1)[provider])
        activity_id = client.activity.create_activity(agreement_id, timeout=15).activity_id
        act = cls(client, provider, agreement_id, activity_id, time.monotonic())
        try:
            if deploy:
                assert all(r.ok for r in act.run_script(Script().deploy().start()))
            yield act
        finally:
            with contextlib.suppress(YagnaError):
                client.activity.destroy_activity(activity_id, timeout=15)
            with contextlib.suppress(YagnaError):
                client.market.terminate_agreement(agreement_id, "test done", code="Success")
            d.close()

    def exec(self, script: Script | list[dict[str, Any]]) -> str:
        commands = script.to_json() if isinstance(script, Script) else script
        return self.client.activity.exec(self.activity_id, commands)

    def results(self, batch_id: str, timeout: float = 15.0) -> list[CommandResult]:
        """Long-poll until the batch has finished (or fail after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            results = self.client.activity.batch_results(self.activity_id, batch_id, timeout=5)
            if results and results[-1].is_batch_finished:
                return results
        raise AssertionError(f"batch {batch_id} did not finish in {timeout} s")

    def run_script(self, script: Script | list[dict[str, Any]]) -> list[CommandResult]:
        return self.results(self.exec(script))

    def state(self) -> str:
        return self.client.activity.get_state(self.activity_id).current


def poll(what: str, probe: Any, timeout: float, interval: float = 0.2) -> Any:
    """``probe()`` until it returns something other than None, every ``interval`` s."""
    deadline = time.monotonic() + timeout
    ticker = threading.Event()
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        ticker.wait(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def module_client(localnet: LocalNet) -> Iterator[tuple[YagnaClient, Allocation]]:
    with YagnaClient(ApiConfig(app_key=localnet.app_key, api_url=localnet.api_url)) as yagna:
        allocation = yagna.payment.create_allocation("100")
        yield yagna, allocation
        yagna.payment.release_allocation(allocation.allocation_id)


@pytest.fixture(scope="module")
def idle(module_client: tuple[YagnaClient, Allocation]) -> Iterator[Activity]:
    """Left alone from the first integration test to the last, then checked for liveness."""
    with Activity.open(*module_client, "provider-3") as act:
        yield act


@pytest.fixture(scope="module")
def ready(module_client: tuple[YagnaClient, Allocation]) -> Iterator[Activity]:
    """A Ready activity on provider-1 whose commands may run 3 s at most."""
    with Activity.open(*module_client, "provider-1", {TIMEOUT_PROPERTY: 3}) as act:
        yield act


yagna_tests = pytest.mark.usefixtures("healthy_providers")


@pytest.mark.yagna
@yagna_tests
def test_full_flow_transfers_capture_exit_codes_and_timeout(
    ready: Activity, files: Files, idle: Activity
):
    assert ready.state() == "Ready"
    files.files["/in/words.txt"] = b"hello sandbox\n"
    script = (
        Script()
        .transfer(files.url("/in/words.txt"), "container:/golem/input/")
        .run(
            "/bin/sh",
            "-c",
            "tr a-z A-Z < /golem/input/words.txt > /golem/output/out.txt; echo done; echo warn >&2",
        )
        .transfer("container:/golem/output/out.txt", files.url("/up/out.txt"))
        .run("/bin/cat", "/golem/output/out.txt", stdout=Capture("bin"))
    )
    results = ready.run_script(script)
    assert [r.result for r in results] == ["Ok"] * 4, results
    assert (results[1].stdout, results[1].stderr) == ("done\n", "warn\n")
    assert files.uploads["/up/out.txt"] == b"HELLO SANDBOX\n"
    assert bytes(cast("tuple[int, ...]", results[3].stdout)) == b"HELLO SANDBOX\n"
    assert all(r.event_date.tzinfo is not None for r in results)

    failed = ready.run_script(
        Script().run("/bin/sh", "-c", "echo oops >&2; exit 3").run("/bin/echo", "never")
    )
    assert len(failed) == 1
    assert (failed[0].result, failed[0].is_batch_finished) == ("Error", True)
    assert failed[0].message == "ExeScript command exited with code 3"
    assert failed[0].stderr == "oops\n"

    missing = ready.run_script(Script().transfer(files.url("/in/none"), "container:/golem/input/x"))
    assert "HTTP 404" in (missing[0].message or "")

    started = time.monotonic()
    slow = ready.run_script(Script().run("/bin/sleep", "30"))
    assert time.monotonic() - started < 10
    assert slow[0].result == "Error"
    assert slow[0].message == "command timed out after 3 s (this provider's limit)"
    assert ready.state() == "Ready"


@pytest.mark.yagna
@yagna_tests
def test_results_long_poll_partial_408_and_concurrent_polls(ready: Activity):
    client, act_id = ready.client, ready.activity_id
    batch_id = ready.exec(Script().run("/bin/sleep", "2"))
    started = time.monotonic()
    assert (
        client.activity.batch_results(act_id, batch_id, timeout=0.5) == []
    )  # partial: nothing yet
    with pytest.raises(YagnaTimeoutError):  # commandIndex + expiry: 408
        client.activity.batch_results(act_id, batch_id, timeout=0.5, command_index=0)
    assert time.monotonic() - started < 1.9
    with ThreadPoolExecutor(4) as pool:
        polls = [
            pool.submit(
                client.activity.batch_results,
                act_id,
                batch_id,
                timeout=10,
                command_index=0 if i % 2 else None,
            )
            for i in range(4)
        ]
        outcomes = [f.result(timeout=15) for f in polls]
    assert time.monotonic() - started >= 1.9
    assert all(o[-1].is_batch_finished and o[-1].ok for o in outcomes), outcomes
    assert client.activity.batch_results(act_id, batch_id, timeout=None)[0].ok  # at once


@pytest.mark.yagna
@yagna_tests
def test_results_stream_as_server_sent_events(ready: Activity, localnet: LocalNet):
    streamed = Capture(stream=True)
    script = Script().run(
        "/bin/sh", "-c", "echo out; echo err >&2", stdout=streamed, stderr=streamed
    )
    batch_id = ready.exec(script)
    url = f"{localnet.api_url}/activity-api/v1/activity/{ready.activity_id}/exec/{batch_id}"
    headers = {"Authorization": f"Bearer {localnet.app_key}", "Accept": "text/event-stream"}
    events: list[dict[str, Any]] = []
    with requests.get(url, headers=headers, stream=True, timeout=(5, 10)) as response:
        assert response.status_code == 200
        for line in response.iter_lines():  # yagna keeps the stream open: stop at "finished"
            if line.startswith(b"data:"):
                events.append(json.loads(line[5:]))
                if "finished" in events[-1]["kind"]:
                    break
    kinds = {next(iter(e["kind"])): e["kind"] for e in events}
    assert set(kinds) == {"started", "stdout", "stderr", "finished"}, events
    assert (kinds["stdout"]["stdout"], kinds["stderr"]["stderr"]) == ("out\n", "err\n")
    assert kinds["finished"]["finished"] == {"return_code": 0, "message": None}
    assert all(e["batch_id"] == batch_id and CHRONO_NAIVE.match(e["timestamp"]) for e in events)


@pytest.mark.yagna
@yagna_tests
def test_the_client_follows_a_batch_to_its_end_or_until_cancelled(ready: Activity):
    streamed = Capture(stream=True)
    script = Script().run("/bin/sh", "-c", "echo a; echo b >&2", stdout=streamed, stderr=streamed)
    script.run("/bin/sh", "-c", "exit 4", stdout=streamed, stderr=streamed)
    script.run("/bin/echo", "never")
    events: list[RuntimeEvent] = []
    follow = ready.client.activity.follow_batch
    assert follow(ready.activity_id, ready.exec(script), events.append, commands=3, timeout=10)
    kinds = [(e.index, e.kind, e.output or e.return_code) for e in events]
    assert kinds == [
        (0, "started", None),
        (0, "stdout", "a\n"),
        (0, "stderr", "b\n"),
        (0, "finished", 0),
        (1, "started", None),
        (1, "finished", 4),  # a failed command ends the batch: no waiting for command 2
    ]
    # A silent command: cancelling shuts the stream at once, not at its read timeout.
    cancel = Cancel()
    slow = Script().run("/bin/sh", "-c", "echo go; sleep 2.5", stdout=streamed)
    started = time.monotonic()

    def on_event(event: RuntimeEvent) -> None:
        if event.kind == "stdout":
            threading.Timer(0.2, cancel.set).start()

    batch = ready.exec(slow)
    assert not follow(ready.activity_id, batch, on_event, commands=1, timeout=10, cancel=cancel)
    assert time.monotonic() - started < 1.8
    assert ready.results(batch)[0].ok  # the batch itself went on


def tiny_rootfs(dest: Path) -> Path:
    """A rootfs holding only ``/bin/cat`` (with its libraries) and ``/etc/marker``."""
    cat = Path("/bin/cat").resolve()
    libs = subprocess.run(["ldd", str(cat)], capture_output=True, text=True, check=True).stdout
    for path in [str(cat), *re.findall(r"(/\S+) \(0x", libs)]:
        target = dest / "bin" / "cat" if path == str(cat) else dest / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(path).resolve(), target)
    (dest / "etc").mkdir()
    (dest / "etc" / "marker").write_text("from the image\n")
    return dest


@pytest.mark.yagna
@yagna_tests
def test_deploy_resolves_the_demanded_image_or_fails_clearly(
    client: YagnaClient, allocation: Allocation, localnet: LocalNet, files: Files, tmp_path: Path
):
    store = ImageStore(localnet.data_dir / "images")
    image = store.add(tiny_rootfs(tmp_path / "rootfs"), tag="exeunit-test")
    package = {TASK_PACKAGE: store.task_package(image, files.url("/"))}
    with Activity.open(client, allocation, "provider-2", package) as act:
        (result,) = act.run_script(Script().run("/bin/cat", "/etc/marker"))
        assert result.stdout == "from the image\n"  # not on the host: the image is the root
    files.files["/images/bad.tar"] = b"not the image"
    bad = {TASK_PACKAGE: f"hash:sha3:{'0' * 56}:{files.url('/images/bad.tar')}"}
    with Activity.open(client, allocation, "provider-2", bad, deploy=False) as act:
        (failed,) = act.run_script(Script().deploy())
        assert failed.result == "Error"
        assert "deploy failed: image hash mismatch" in (failed.message or "")
        assert act.state() == "Initialized"


@pytest.mark.yagna
@yagna_tests
def test_sandbox_escapes_through_exescript_are_refused(ready: Activity, files: Files):
    files.files["/in/x"] = b"x"
    attempts = [
        {"transfer": {"from": files.url("/in/x"), "to": "container:/golem/../etc/x"}},
        {"transfer": {"from": files.url("/in/x"), "to": "container:/etc/passwd"}},
        {"transfer": {"from": "container:/etc/passwd", "to": files.url("/up/passwd")}},
        {
            "transfer": {
                "from": "container:/golem/input/../../etc/shadow",
                "to": files.url("/up/shadow"),
            }
        },
    ]
    for attempt in attempts:
        (result,) = ready.run_script([attempt])
        assert result.result == "Error", attempt
        assert "refused" in (result.message or ""), result.message
    link = ready.run_script(Script().run("/bin/ln", "-s", "/etc", "/golem/work/e"))
    assert link[0].ok, link
    (leak,) = ready.run_script(
        Script().transfer("container:/golem/work/e/passwd", files.url("/up/leak"))
    )
    assert leak.result == "Error"
    assert "transfer refused" in (leak.message or "")
    assert "outside" in (leak.message or "")  # the symlink leads out of the volumes
    assert not (set(files.uploads) & {"/up/passwd", "/up/shadow", "/up/leak"})
    assert not Path("/etc/x").exists()


@pytest.mark.yagna
@yagna_tests
def test_background_processes_live_between_batches_and_die_with_the_activity(
    client: YagnaClient, allocation: Allocation
):
    with Activity.open(client, allocation, "provider-2") as act:
        script = "sleep 318.5 & echo $! > /golem/work/bg.pid; echo kept > /tmp/note"
        assert act.run_script(Script().run("/bin/sh", "-c", script))[0].ok
        check = 'kill -0 "$(cat /golem/work/bg.pid)" && cat /tmp/note'
        (alive,) = act.run_script(Script().run("/bin/sh", "-c", check))
        assert (alive.result, alive.stdout) == ("Ok", "kept\n"), alive
        assert len(running("318.5")) == 1
    gone = "the background process to die with the activity"
    poll(gone, lambda: not running("318.5") or None, 15)


@pytest.mark.yagna
@yagna_tests
def test_fault_exec_delay_slows_a_command(ready: Activity, localnet: LocalNet):
    localnet.set_faults("provider-1", exec_delay=1.0)
    started = time.monotonic()
    assert ready.run_script(Script().run("/bin/true"))[0].ok
    assert time.monotonic() - started >= 1.0
    localnet.clear_faults("provider-1")
    started = time.monotonic()
    assert ready.run_script(Script().run("/bin/true"))[0].ok
    assert time.monotonic() - started < 1.0


@pytest.mark.yagna
@yagna_tests
def test_fault_hang_stops_answers_and_the_activity_goes_unresponsive(
    client: YagnaClient, allocation: Allocation, localnet: LocalNet
):
    with Activity.open(client, allocation, "provider-2") as act:
        localnet.set_faults("provider-2", hang=True)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(act.exec, Script().run("/bin/true"))
            poll(
                "yagna to mark the hung activity Unresponsive",
                lambda: act.state() == "Unresponsive" or None,
                15,
            )
            with pytest.raises(YagnaTimeoutError):  # nobody answered the Exec: 408
                pending.result(timeout=15)
        localnet.clear_faults("provider-2")


@pytest.mark.yagna
@yagna_tests
def test_fault_crash_at_command_fails_exec_and_the_activity_goes_unresponsive(
    client: YagnaClient, allocation: Allocation, localnet: LocalNet
):
    with Activity.open(client, allocation, "provider-2") as act:
        localnet.set_faults("provider-2", crash_exeunit_at_command=1)
        batch_id = act.exec(Script().run("/bin/echo", "first").run("/bin/echo", "second"))
        # A poll in flight hears of the crash; one that comes after finds nobody on the bus.
        with pytest.raises(YagnaServerError, match=r"crashed at command 1|address not found"):
            act.results(batch_id)

        def left_the_bus() -> bool | None:
            """An exec racing the crash may still hear "crashed"; then nobody is on the bus."""
            with pytest.raises(
                YagnaServerError, match=r"crashed at command 1|address not found"
            ) as e:
                act.exec(Script().run("/bin/true"))
            return "address not found" in str(e.value) or None

        poll("the crashed exe-unit to leave the bus", left_the_bus, 10)
        poll(
            "the crashed activity to turn Unresponsive",
            lambda: act.state() == "Unresponsive" or None,
            15,
        )
        assert localnet.provider("provider-2").state == "running"  # only the exe-unit died


@pytest.mark.yagna
@yagna_tests
def test_an_idle_activity_stays_alive_with_fresh_usage(idle: Activity):
    """Keep this test last: the activity has idled since the first integration test."""

    def alive_for_30s() -> bool | None:
        assert idle.state() == "Ready"
        usage = idle.client.activity.get_usage(idle.activity_id)
        assert time.time() - usage.timestamp < 3, usage
        return True if time.monotonic() - idle.created >= 30 else None

    poll("30 s of idling", alive_for_30s, timeout=40, interval=1.0)
    assert idle.run_script(Script().run("/bin/echo", "still here"))[0].stdout == "still here\n"
