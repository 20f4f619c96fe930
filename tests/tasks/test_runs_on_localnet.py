"""The task model end to end on localnet, with faults injected: every task ends exactly once
with the right result, the budget holds, every agreement is terminated, every invoice accepted
once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Unpack

import pykka
import pytest

from golem_actors import Golem, GolemOptions, Task, TaskResult, WorkContext
from golem_actors.events import (
    AgreementApproved,
    AgreementTerminated,
    Event,
    InvoiceAccepted,
    TaskAttemptFailed,
    TaskStarted,
)
from golem_actors.localnet.network import LocalNet
from golem_actors.policy.task_book import TaskPolicy
from golem_actors.yagna import ApiConfig

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]

BUDGET = Decimal(2)


class Session:
    def __init__(self, localnet: LocalNet, **options: Unpack[GolemOptions]) -> None:
        config = ApiConfig(app_key=localnet.app_key, api_url=localnet.api_url)
        settings: GolemOptions = {"settle_timeout_s": 20, **options}
        self.golem = Golem(config=config, budget=BUDGET, **settings)
        self.events: list[Event] = []
        self._lock = threading.Lock()
        self.golem.start()
        assert self.golem.rt is not None
        self.golem.rt.events.subscribe(self._record)

    def _record(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: type[Event]) -> list[Event]:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]

    def on(self, kind: type[Event], callback: Callable[[Event], None]) -> None:
        assert self.golem.rt is not None
        self.golem.rt.events.subscribe(callback, kind)


@pytest.fixture
def session(localnet: LocalNet) -> Iterator[Session]:
    s = Session(localnet)
    try:
        yield s
    finally:
        s.golem.stop()
    assert pykka.ActorRegistry.get_all() == []  # no actor outlives its run
    check_books(s)


def check_books(s: Session) -> None:
    """Every agreement terminated, no invoice accepted twice, the budget never exceeded."""
    approved = {e.agreement_id for e in s.of(AgreementApproved)}  # type: ignore[attr-defined]
    terminated = {e.agreement_id for e in s.of(AgreementTerminated)}  # type: ignore[attr-defined]
    assert approved <= terminated
    paid = Counter(e.agreement_id for e in s.of(InvoiceAccepted))  # type: ignore[attr-defined]
    assert all(n == 1 for n in paid.values()), paid
    totals = s.golem.final_totals
    assert totals is not None
    assert totals.committed <= BUDGET
    assert s.golem.final_allocation is not None
    assert s.golem.final_allocation.spent_amount <= BUDGET


def collect(run: object, tasks: list[Task], timeout: float = 150) -> dict[str, TaskResult]:
    """Every result, checking each task comes exactly once."""
    results: dict[str, TaskResult] = {}
    deadline = time.monotonic() + timeout
    while len(results) < len(tasks):
        left = deadline - time.monotonic()
        assert left > 0, f"only {len(results)} of {len(tasks)} tasks finished"
        result = run.next_result(timeout=left)  # type: ignore[attr-defined]
        assert result is not None, f"the run ended after {len(results)} of {len(tasks)}"
        assert result.task.id not in results, f"{result.task.id} reported twice"
        results[result.task.id] = result
    assert run.next_result(timeout=0.5) is None  # type: ignore[attr-defined]
    return results


def squares(n: int, *, broken: int | None = None) -> list[Task]:
    def command(i: int) -> list[str]:
        if i == broken:
            return ["/bin/sh", "-c", "echo broken >&2; exit 3"]
        return ["/bin/sh", "-c", f"echo $(({i} * {i}))"]

    return [
        Task(data=i, commands=[command(i)], parse=lambda o: int(str(o.stdout[0]))) for i in range(n)
    ]


def test_declarative_tasks_a_failing_command_fails_only_its_task(session: Session) -> None:
    tasks = squares(30, broken=7)
    run = session.golem.execute_tasks(
        tasks, max_workers=4, task_timeout=30, max_retries=2, batch_size=5
    )
    results = collect(run, tasks)
    broken = results["task-7"]
    assert not broken.ok
    assert broken.attempts == 3  # the first try and max_retries retries
    assert "exit" in str(broken.error) or "broken" in str(broken.error)
    failed_on = {e.provider_id for e in session.of(TaskAttemptFailed) if e.task_id == "task-7"}  # type: ignore[attr-defined]
    assert len(failed_on) == 3  # each retry on a different provider
    for i in range(30):
        if i != 7:
            assert results[f"task-{i}"].ok, results[f"task-{i}"].error
            assert results[f"task-{i}"].result == i * i
    summary = run.summary
    assert summary.succeeded == 29
    assert summary.failed == 1


def test_worker_function_with_files_in_and_out(session: Session) -> None:
    def worker(ctx: WorkContext, task: Task) -> str:
        ctx.run("/bin/sh", "-c", "tr a-z A-Z < /golem/input/in.txt > /golem/output/out.txt")
        return ctx.provider_name

    tasks = [
        Task(
            data=i,
            inputs={"/golem/input/in.txt": f"hello {i}".encode()},
            outputs=["/golem/output/out.txt"],
        )
        for i in range(6)
    ]
    run = session.golem.execute_tasks(tasks, worker, max_workers=3, task_timeout=30)
    results = collect(run, tasks)
    for i in range(6):
        result = results[f"task-{i}"]
        assert result.ok, result.error
        assert result.files["/golem/output/out.txt"] == f"HELLO {i}".encode()
        assert result.result == result.provider_name


def slow_worker(seconds: float) -> Callable[[WorkContext, Task], int]:
    def worker(ctx: WorkContext, task: Task) -> int:
        ctx.run("/bin/sleep", str(seconds))
        return int(task.data) * 2

    return worker


def test_a_provider_killed_mid_task(session: Session, localnet: LocalNet) -> None:
    victim: list[str] = []

    def kill_first(event: Event) -> None:
        assert isinstance(event, TaskStarted)
        if not victim:
            victim.append(event.provider_name)
            threading.Thread(target=localnet.kill, args=(event.provider_name,)).start()

    session.on(TaskStarted, kill_first)
    tasks = [Task(data=i) for i in range(10)]
    run = session.golem.execute_tasks(tasks, slow_worker(1.0), max_workers=3, task_timeout=60)
    results = collect(run, tasks)
    assert all(r.ok and r.result == 2 * int(r.task.data) for r in results.values())
    assert all(r.provider_name != victim[0] for r in results.values())
    failures = [e for e in session.of(TaskAttemptFailed) if e.kind == "provider"]  # type: ignore[attr-defined]
    assert failures  # the task on the killed provider failed there and was retried


def test_a_hung_provider_times_out_and_the_task_moves(session: Session, localnet: LocalNet) -> None:
    victim: list[str] = []

    def hang_first(event: Event) -> None:
        assert isinstance(event, TaskStarted)
        if not victim:
            victim.append(event.provider_name)
            localnet.set_faults(event.provider_name, hang=True)

    session.on(TaskStarted, hang_first)
    tasks = [Task(data=i) for i in range(6)]
    no_copies = TaskPolicy(speculate=False)  # else a copy elsewhere wins before the hang shows
    run = session.golem.execute_tasks(
        tasks, slow_worker(0.5), max_workers=3, task_timeout=6, policy=no_copies
    )
    results = collect(run, tasks)
    assert all(r.ok for r in results.values())
    # A hang shows as yagna giving up on the exe-unit (a provider failure) or as the task timeout.
    failed = [e for e in session.of(TaskAttemptFailed) if e.kind in ("timeout", "provider")]  # type: ignore[attr-defined]
    assert failed
    for task_id in {e.task_id for e in failed}:  # type: ignore[attr-defined]
        assert results[task_id].provider_name != victim[0]
        assert results[task_id].attempts >= 2


def test_the_task_timeout_moves_a_task_to_another_provider(session: Session) -> None:
    stuck: list[str] = []
    lock = threading.Lock()

    def worker(ctx: WorkContext, task: Task) -> str:
        with lock:
            if not stuck:
                stuck.append(ctx.provider_name)
        if ctx.provider_name == stuck[0]:
            ctx.run("/bin/sleep", "60")
        return ctx.provider_name

    policy = TaskPolicy(speculate=False)
    tasks = [Task(data=i) for i in range(4)]
    run = session.golem.execute_tasks(tasks, worker, max_workers=3, task_timeout=4, policy=policy)
    results = collect(run, tasks, timeout=60)
    assert all(r.ok and r.result != stuck[0] for r in results.values())
    timeouts = [e for e in session.of(TaskAttemptFailed) if e.kind == "timeout"]  # type: ignore[attr-defined]
    assert timeouts
    assert all(e.provider_id != results[e.task_id].provider_id for e in timeouts)  # type: ignore[attr-defined]
    assert run.summary.timeouts == len(timeouts)


def test_a_straggler_is_copied_and_the_first_result_wins(session: Session) -> None:
    slow: list[str] = []
    lock = threading.Lock()

    def worker(ctx: WorkContext, task: Task) -> str:
        with lock:
            if not slow:
                slow.append(ctx.provider_name)
        if ctx.provider_name == slow[0]:
            ctx.run("/bin/sleep", "40")  # the straggler: its copy elsewhere wins long before
        ctx.run("/bin/true")
        return ctx.provider_name

    policy = TaskPolicy(speculate_after_s=1.0, speculate_factor=0.0)
    tasks = [Task(data=i) for i in range(4)]
    started = time.monotonic()
    run = session.golem.execute_tasks(tasks, worker, max_workers=3, task_timeout=120, policy=policy)
    results = collect(run, tasks, timeout=35)
    assert time.monotonic() - started < 35
    assert all(r.ok and r.result != slow[0] for r in results.values())
    assert run.summary.speculative >= 1


def test_an_overcharging_provider_is_banned_and_not_paid(localnet: LocalNet) -> None:
    s = Session(localnet, debit_note_interval_s=1)
    try:
        greedy = "provider-1"
        localnet.set_faults(greedy, overcharge=1000.0)
        tasks = [Task(data=i) for i in range(12)]
        run = s.golem.execute_tasks(tasks, slow_worker(1.0), max_workers=4, task_timeout=60)
        results = collect(run, tasks)
        assert all(r.ok for r in results.values())
    finally:
        s.golem.stop()
    assert pykka.ActorRegistry.get_all() == []
    check_books(s)
    approvals = [e for e in s.of(AgreementApproved) if isinstance(e, AgreementApproved)]
    greedy_agreements = {e.agreement_id for e in approvals if e.provider_name == greedy}
    paid = {e.agreement_id for e in s.of(InvoiceAccepted)}  # type: ignore[attr-defined]
    assert not greedy_agreements & paid  # its overcharged invoice was refused


def test_a_resumed_run_does_not_redo_tasks_its_journal_recorded(
    localnet: LocalNet, tmp_path: Path
) -> None:
    tasks = squares(6)
    first = Session(localnet, journal=tmp_path)
    try:
        results = collect(first.golem.execute_tasks(tasks[:4], max_workers=2), tasks[:4])
    finally:
        first.golem.stop()
    assert {r.task.id: r.result for r in results.values()} == {f"task-{i}": i * i for i in range(4)}

    second = Session(localnet, journal=tmp_path)  # the same run directory: resumed
    try:
        assert second.golem.completed_tasks() == {f"task-{i}": i * i for i in range(4)}
        results = collect(second.golem.execute_tasks(tasks, max_workers=2), tasks)
    finally:
        second.golem.stop()
    assert {r.task.id: r.result for r in results.values()} == {f"task-{i}": i * i for i in range(6)}
    redone = {e.task_id for e in second.of(TaskStarted)}  # type: ignore[attr-defined]
    assert redone == {"task-4", "task-5"}  # only the two without a recorded result ran
    assert all(results[f"task-{i}"].attempts == 0 for i in range(4))
    check_books(second)
