"""Task files by GFTP on localnet, at the edges: 1 KiB and 10 MiB in and out (sha-checked), an
output the task never wrote, and a provider killed while it fetches a large input. After each
run ``GftpStorage`` holds no publication and every GSB service it bound is closed."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from golem_actors import Golem, Task, WorkContext
from golem_actors.actors.task_attempts import Worker
from golem_actors.events import Event, TaskAttemptFailed, TaskStarted
from golem_actors.exescript import CommandFailedError
from golem_actors.localnet.network import LocalNet
from golem_actors.policy.task_book import TaskPolicy
from golem_actors.storage import gftp
from golem_actors.storage.gftp import GftpStorage
from golem_actors.storage.gftp_wire import GET_CHUNK
from golem_actors.storage.gsb_api import GsbApiService
from golem_actors.tasks.run import TaskRun
from tests.waiting import wait_for

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]

KIB, MIB = 1 << 10, 1 << 20
AT_ONCE = TaskPolicy(same_provider_after_s=0)  # a retry need not wait for another provider
COPY = ["/bin/sh", "-c", "cp /golem/input/in.bin /golem/output/out.bin"]


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> list[GsbApiService]:
    """Every GSB service bound from now on (each publication and upload slot is one)."""
    bound: list[GsbApiService] = []
    start = GsbApiService.start

    def recording(self: GsbApiService) -> None:
        start(self)
        bound.append(self)

    monkeypatch.setattr(GsbApiService, "start", recording)
    return bound


@pytest.fixture
def events(golem: Golem) -> Iterator[list[Event]]:
    seen: list[Event] = []
    assert golem.rt is not None
    golem.rt.events.subscribe(seen.append)
    yield seen
    golem.rt.events.unsubscribe(seen.append)


def nothing_left(golem: Golem, services: list[GsbApiService]) -> None:
    """The storage released every publication and upload slot of the run: none is bound."""
    storage = golem.storage.current
    assert isinstance(storage, GftpStorage)
    assert services, "no GSB service was bound: the files did not move by GFTP"
    wait_for("every publication released", lambda: not storage._entries or None, timeout=10)
    assert [s.address for s in services if s.running] == []
    assert list(storage._dir.iterdir()) == []  # no upload left behind, complete or partial


def results(run: TaskRun[Any, Any], count: int, timeout: float = 120) -> dict[Any, Any]:
    found: dict[Any, Any] = {}
    for _ in range(count):
        result = run.next_result(timeout=timeout)
        assert result is not None, f"{len(found)} of {count} results in time"
        found[result.task.data] = result
    return found


def sha3(data: bytes) -> str:
    return hashlib.sha3_256(data).hexdigest()


def test_files_of_1_kib_and_10_mib_go_in_and_come_back(
    golem: Golem, services: list[GsbApiService], tmp_path: Path
) -> None:
    sources = {}
    for size in (KIB, 10 * MIB):
        sources[size] = tmp_path / f"{size}.bin"
        sources[size].write_bytes(os.urandom(size))
    declarative = [
        Task(data=size, inputs={"/golem/input/in.bin": path}, commands=[COPY],
             outputs=["/golem/output/out.bin"])
        for size, path in sources.items()
    ]  # fmt: skip
    for size, result in results(golem.execute_tasks(declarative, max_workers=2), 2).items():
        assert result.ok, result.error
        back = result.files["/golem/output/out.bin"]
        assert (len(back), sha3(back)) == (size, sha3(sources[size].read_bytes()))
    nothing_left(golem, services)

    def worker(ctx: WorkContext, task: Task[int]) -> str:  # the same through the ctx API
        ctx.run(*COPY)
        local = tmp_path / f"back-{task.data}.bin"
        ctx.download_file("/golem/output/out.bin", local, timeout=120)
        return sha3(local.read_bytes())

    tasks = [Task(data=size, inputs={"/golem/input/in.bin": path})
             for size, path in sources.items()]  # fmt: skip
    for size, result in results(golem.execute_tasks(tasks, worker, max_workers=2), 2).items():
        assert result.ok, result.error
        assert result.result == sha3(sources[size].read_bytes())
    nothing_left(golem, services)


def test_a_transfer_to_a_missing_path_fails_the_task_as_its_policy_says(
    golem: Golem, services: list[GsbApiService], events: list[Event]
) -> None:
    missing = "/golem/output/never-written.bin"
    not_sent = f"transfer container:{missing} -> gftp://.* failed: cannot read never-written.bin"
    nowhere = "/golem/no/such/dir/in.bin"
    not_taken = f"-> container:{nowhere}\\) failed: transfer refused: '{nowhere}' is outside"

    def worker(ctx: WorkContext, task: Task[str]) -> bytes:
        return ctx.download_bytes(missing)

    cases: list[tuple[Task[str], Worker[str, bytes] | None, str]] = [
        (Task(data="output", commands=[["/bin/true"]], outputs=[missing]), None, not_sent),
        (Task(data="download"), worker, not_sent),
        (Task(data="input", inputs={nowhere: b"x"}, commands=[["/bin/true"]]), None, not_taken),
    ]
    for task, fn, said in cases:
        events.clear()
        run = golem.execute_tasks([task], fn, max_retries=1, task_timeout=60, policy=AT_ONCE)
        (result,) = results(run, 1).values()
        assert not result.ok
        assert result.attempts == 2  # the first try and the one retry max_retries allows
        assert isinstance(result.error, CommandFailedError), result.error
        assert re.search(said, str(result.error)), result.error
        failed = [e for e in events if isinstance(e, TaskAttemptFailed)]
        assert [(e.kind, e.retried) for e in failed] == [("task", True), ("task", False)]
        nothing_left(golem, services)


def test_a_provider_killed_mid_transfer_hands_the_task_to_another(
    golem: Golem,
    services: list[GsbApiService],
    events: list[Event],
    *,
    localnet: LocalNet,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    source = tmp_path / "large.bin"
    source.write_bytes(os.urandom(10 * MIB))
    fetching, killed = threading.Event(), threading.Event()
    handle = gftp._Published.handle

    def held(self: gftp._Published, component: str, payload: dict[str, Any]) -> Any:
        """The first chunk of the large file waits until its fetcher is dead."""
        if component == GET_CHUNK and self.size == 10 * MIB and not fetching.is_set():
            fetching.set()
            killed.wait(30)
        return handle(self, component, payload)

    monkeypatch.setattr(gftp._Published, "handle", held)
    task = Task(data=0, inputs={"/golem/input/in.bin": source}, commands=[COPY],
                outputs=["/golem/output/out.bin"])  # fmt: skip
    run = golem.execute_tasks([task], max_workers=1, max_retries=2, task_timeout=60)
    try:
        wait_for("the provider fetching the large input", fetching.is_set, timeout=90)
        victim = [e for e in events if isinstance(e, TaskStarted)][-1].provider_name
        localnet.kill(victim)
    finally:
        killed.set()
    (result,) = results(run, 1, timeout=150).values()
    assert result.ok, result.error
    assert result.provider_name != victim
    assert result.attempts == 2
    assert sha3(result.files["/golem/output/out.bin"]) == sha3(source.read_bytes())
    started = [e.provider_name for e in events if isinstance(e, TaskStarted)]
    assert started == [victim, result.provider_name]
    nothing_left(golem, services)
