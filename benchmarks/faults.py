"""Fault rounds on localnet: does anything get lost when everything goes wrong?

    python -m benchmarks.faults --rounds 50

Each round runs a short service run as a ``golem-actors run`` subprocess, through the API fault
proxy (5xx, resets, lost answers, hangs, malformed JSON, slow answers), with a provider fault
(crash, hang, agreement termination, overcharging), and usually kills the requestor with SIGKILL
at a random moment. Then the same run directory is resumed in-process (still through the proxy),
its service must come back, and it stops cleanly. yagna is then asked (directly, no proxy) about
every agreement of the round, its invoices and debit notes, and the figures are summed over all
rounds. The last line is ``rounds=N name=value ...``; every figure after ``rounds`` must be 0.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.faults_app import TASKS, Sleeper, read_results, start_tasks
from golem_actors import TaskResult
from golem_actors.golem import Golem, GolemError
from golem_actors.journal import Journal, scan
from golem_actors.localnet.apifaults import ApiFaultProxy, FaultPlan
from golem_actors.localnet.network import LocalNet
from golem_actors.yagna import ApiConfig, YagnaClient

APP = Path(__file__).with_name("faults_app.py")
FIGURES = (
    "invoices_lost",
    "invoices_paid_twice",
    "debit_notes_paid_late",
    "agreements_left_open",
    "spend_above_budget",
    "tasks_lost_or_duplicated",
    "instances_not_restored",
)
INSTANCES = 2
BUDGET = Decimal(5)


@dataclass
class Round:
    number: int
    api_rate: float
    provider_fault: str
    killed_at: float | None
    mode: str = "cli"  # what the killed run was: the CLI (a service) or the API (+ tasks)
    figures: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds

    def line(self) -> str:
        bad = {k: v for k, v in self.figures.items() if v}
        kill = f"kill@{self.killed_at:.1f}s" if self.killed_at is not None else "no-kill"
        phases = " ".join(f"{k}={v:.0f}s" for k, v in self.phases.items())
        return (
            f"round {self.number}: {self.mode} api={self.api_rate:.2f} "
            f"provider={self.provider_fault} "
            f"{kill} {bad or 'ok'} [{phases}] {'; '.join(self.notes)[:300]}"
        )


def _provider_fault(
    net: LocalNet, rng: random.Random, fixed: str | None = None
) -> tuple[str, str | None]:
    """One provider fault (what, on whom), applied at once; ``none`` some of the time."""
    name = rng.choice(sorted(net.providers))
    what = rng.choice(["none", "crash", "hang", "terminate", "overcharge"])
    what = what if fixed is None else fixed
    if what == "crash":
        net.set_faults(name, crash_at=rng.choice(["exec", "debit_note", "activity"]))
    elif what == "hang":
        net.set_faults(name, hang=True)
    elif what == "terminate":
        net.set_faults(name, terminate_after=rng.uniform(1.0, 4.0))
    elif what == "overcharge":
        net.set_faults(name, overcharge=3.0)
    else:
        return what, None
    return f"{what}:{name}", name


def _heal(net: LocalNet) -> None:
    for name, provider in net.providers.items():
        if provider.state.startswith("exited"):
            net.restart_provider(name)
        else:
            net.clear_faults(name)


@dataclass(frozen=True)
class Fixed:
    """Choices a test pins instead of drawing them (None: drawn as usual)."""

    api_rate: float | None = None
    fault: str | None = None  # none, crash, hang, terminate, overcharge
    kill_at: float | None = None  # 0: no kill
    mode: str | None = None  # cli, tasks
    duration: float | None = None


def run_round(
    net: LocalNet, number: int, rng: random.Random, work: Path, fixed: Fixed | None = None
) -> Round:
    fixed = fixed or Fixed()
    run_dir = work / f"round-{number}"
    work.mkdir(parents=True, exist_ok=True)
    api_rate = rng.choice([0.0, 0.03, 0.06, 0.1])
    api_rate = api_rate if fixed.api_rate is None else fixed.api_rate
    plan = FaultPlan(rate=api_rate, seed=rng.randrange(1 << 30), hang_s=4.0, slow_s=0.5)
    result = Round(number, api_rate, "none", None)
    overcharger: str | None = None
    with ApiFaultProxy(net.api_url, plan) as proxy:
        result.provider_fault, victim = _provider_fault(net, rng, fixed.fault)
        if result.provider_fault.startswith("overcharge"):
            overcharger = victim
        duration = rng.uniform(4.0, 10.0) if fixed.duration is None else fixed.duration
        # Up to a few seconds past the duration: the kill lands while it works or while it stops.
        kill_at = rng.uniform(1.0, duration + 4.0) if rng.random() < 0.75 else None
        kill_at = kill_at if fixed.kill_at is None else (fixed.kill_at or None)
        result.mode = rng.choice(["cli", "tasks"]) if fixed.mode is None else fixed.mode
        with _phase(result, "run"):
            _run_subprocess(
                net, proxy.url, run_dir, duration=duration, kill_at=kill_at, result=result
            )
        with _phase(result, "heal"):
            _heal(net)
        # The same run, resumed in-process: recovery, then the service must come back.
        config = ApiConfig(app_key=net.app_key, api_url=proxy.url)
        with _logged(work / f"round-{number}-resume.log"):
            with _phase(result, "resume"):
                golem = _start(config, run_dir, result)
            try:
                with _phase(result, "restore"):
                    cluster = golem.run_service(Sleeper, INSTANCES, health_interval_s=1.0)
                    tasks = start_tasks(golem)
                    restored = cluster.wait_running(timeout=90)
                if not restored:
                    running = sum(1 for s in cluster.snapshots() if s.state.value == "running")
                    result.figures["instances_not_restored"] += INSTANCES - running
                with _phase(result, "tasks"):
                    _check_reports(read_results(tasks, time.monotonic() + 90), result)
            finally:
                with _phase(result, "stop"):
                    golem.stop()
    with _phase(result, "check"):
        _check(net, run_dir, overcharger, result)
        _check_tasks(run_dir, result)
    _heal(net)  # a fault that fired late (a crash knob read after the run) ends with the round
    return result


def _run_subprocess(
    net: LocalNet, url: str, run_dir: Path, *, duration: float, kill_at: float | None, result: Round
) -> None:
    """``golem-actors run`` for ``duration`` s through the proxy; SIGKILLed at ``kill_at``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YAGNA_")}
    env |= {"YAGNA_APPKEY": net.app_key, "YAGNA_API_URL": url}
    if result.mode == "tasks":  # the service and a batch of tasks, through the Python API
        argv = [sys.executable, "-m", "benchmarks.faults_app", str(run_dir), f"{duration:.1f}"]
        argv += [str(BUDGET)]
    else:  # the service alone, through the CLI
        argv = [sys.executable, "-m", "golem_actors.cli", "--log-level", "INFO", "run"]
        argv += [f"{APP}:Sleeper", "-n", str(INSTANCES), "--duration", f"{duration:.1f}"]
        argv += ["--no-table", "--run-dir", str(run_dir), "--yagna", url, "--budget", str(BUDGET)]
    with (run_dir.parent / f"round-{result.number}.log").open("w") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            if kill_at is not None:
                result.killed_at = kill_at
                try:
                    process.wait(kill_at)
                    result.killed_at = None  # it finished first
                except subprocess.TimeoutExpired:
                    process.send_signal(signal.SIGKILL)
            process.wait(120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
                result.notes.append("the run did not end within 120 s")
    if result.killed_at is None and process.returncode != 0:
        result.notes.append(f"the run exited with {process.returncode}")


@contextlib.contextmanager
def _phase(result: Round, name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        result.phases[name] = time.monotonic() - started


@contextlib.contextmanager
def _logged(path: Path) -> Iterator[None]:
    """The resumed session's log (INFO and up, with times) in ``path``."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("golem_actors")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()


def _start(config: ApiConfig, run_dir: Path, result: Round) -> Golem:
    """Start the resumed session; a start failing to an API fault is simply tried again (as a
    user would), never half-done: nothing is committed before start succeeds."""
    for attempt in range(1, 6):
        golem = Golem(config=config, budget=BUDGET, journal=run_dir, settle_timeout_s=30)
        try:
            golem.start()
        except GolemError as exc:
            result.notes.append(f"start {attempt} failed: {exc}"[:120])
            continue
        return golem
    raise RuntimeError(f"round {result.number}: the resumed session never started")


def _check(  # noqa: C901, PLR0912 - one pass over yagna's records, figure by figure
    net: LocalNet, run_dir: Path, overcharger: str | None, result: Round
) -> None:
    """Ask yagna (no proxy) what really happened to this round's agreements and money."""
    with Journal.open(run_dir / "journal.gaj") as journal:
        run_id = journal.state.run_id
        journaled = dict(journal.state.agreements)
    config = ApiConfig(app_key=net.app_key, api_url=net.api_url)
    with YagnaClient(config) as client:
        ids = {str(e["id"]) for e in client.market.agreements(app_session_id=run_id)}
        ids |= set(journaled)
        agreements = {a: client.market.get_agreement(a) for a in ids}
        for agreement_id, agreement in agreements.items():
            if agreement.state in {"Approved", "Pending"}:
                result.figures["agreements_left_open"] += 1
                result.notes.append(f"open {agreement_id[:8]} {agreement.state}")
        over = {a for a, ag in agreements.items() if _provider_name(net, ag) == overcharger}
        deadline = time.monotonic() + 20
        while True:  # invoices of live providers may still be on their way
            invoices = [i for i in client.payment.invoices() if i.agreement_id in ids]
            waiting = [i for i in invoices if i.status == "RECEIVED"]
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(1)
        notes = [n for n in client.payment.debit_notes() if n.agreement_id in ids]
    accepted: dict[str, list[Any]] = {}
    for invoice in invoices:
        if invoice.status in {"ACCEPTED", "SETTLED"}:
            accepted.setdefault(invoice.agreement_id, []).append(invoice)
        elif invoice.status == "RECEIVED" and invoice.agreement_id not in over:
            result.figures["invoices_lost"] += 1
            agreement = agreements[invoice.agreement_id]
            known = journaled.get(invoice.agreement_id)
            result.notes.append(
                f"invoice {invoice.invoice_id[:8]} never decided (agreement "
                f"{invoice.agreement_id[:8]} {agreement.state} with "
                f"{_provider_name(net, agreement)}, approved {agreement.approved_date}, "
                f"journal: {known.status.value if known else 'unknown'}, "
                f"amount {invoice.amount})"
            )
    result.figures["invoices_paid_twice"] += sum(len(v) - 1 for v in accepted.values() if v)
    spent = sum((i.amount for v in accepted.values() for i in v), Decimal(0))
    by_activity: dict[str, Decimal] = {}
    for note in notes:
        if note.agreement_id in accepted:
            continue  # the invoice covers its notes
        if note.status == "ACCEPTED":
            by_activity[note.activity_id] = max(
                by_activity.get(note.activity_id, Decimal(0)), note.total_amount_due
            )
        elif note.status == "RECEIVED" and note.agreement_id not in over:
            late = [
                n
                for n in notes
                if n.activity_id == note.activity_id
                and n.status == "ACCEPTED"
                and n.total_amount_due >= note.total_amount_due
            ]
            if not late:  # not covered by a later accepted note either
                result.figures["debit_notes_paid_late"] += 1
                result.notes.append(f"debit note {note.debit_note_id[:8]} never accepted")
    spent += sum(by_activity.values(), Decimal(0))
    if spent > BUDGET:
        result.figures["spend_above_budget"] += 1


def _check_tasks(run_dir: Path, result: Round) -> None:
    """No task's result in the journal twice, none wrong (read from the raw records, so a task
    done by the killed run and again by the resumed one shows)."""
    data = (run_dir / "journal.gaj").read_bytes()
    done = [r for r in scan(data).records if r.get("k") == "task"]
    counts = Counter(str(r["id"]) for r in done)
    twice = {task: n for task, n in counts.items() if n > 1}
    wrong = [r["id"] for r in done if r["r"] != int(str(r["id"]).removeprefix("sq-")) ** 2]
    bad = sum(n - 1 for n in twice.values()) + len(wrong)  # lost ones: see _check_reports
    result.figures["tasks_lost_or_duplicated"] += bad
    if bad:
        result.notes.append(f"journaled twice {twice} wrong {wrong}")


def _check_reports(reports: list[TaskResult], result: Round) -> None:
    """The resumed run reports every task exactly once, successfully and right (those the
    killed run finished come from the journal, the others are run now)."""
    counts = Counter(r.task.id for r in reports)
    lost = [f"sq-{i}" for i in range(TASKS) if f"sq-{i}" not in counts]
    twice = {task: n for task, n in counts.items() if n > 1}
    failed = {r.task.id: str(r.error)[:60] for r in reports if not r.ok}
    wrong = [r.task.id for r in reports if r.ok and r.result != r.task.data**2]
    bad = len(lost) + sum(n - 1 for n in twice.values()) + len(failed) + len(wrong)
    result.figures["tasks_lost_or_duplicated"] += bad
    if bad:
        result.notes.append(f"reported: lost {lost} twice {twice} failed {failed} wrong {wrong}")


def _provider_name(net: LocalNet, agreement: Any) -> str | None:
    provider_id = agreement.provider_id
    for name, provider in net.providers.items():
        if getattr(provider, "node_id", None) == provider_id:
            return name
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--providers", type=int, default=4)
    parser.add_argument("--work-dir", type=Path, help="keep the logs and journals here")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    totals: Counter[str] = Counter()
    killed = 0
    with tempfile.TemporaryDirectory(prefix="golem-faults-") as tmp:
        work = args.work_dir or Path(tmp)
        with LocalNet(providers=args.providers, data_dir=work / "localnet") as net:
            for number in range(1, args.rounds + 1):
                started = time.monotonic()
                result = run_round(net, number, rng, work / "runs")
                totals.update(result.figures)
                killed += result.killed_at is not None
                print(f"{result.line()} ({time.monotonic() - started:.0f} s)", flush=True)
    print(f"# {killed} of {args.rounds} requestors were SIGKILLed mid-run", flush=True)
    figures = " ".join(f"{name}={totals[name]}" for name in FIGURES)
    print(f"rounds={args.rounds} {figures}", flush=True)
    return 0 if not any(totals[name] for name in FIGURES) else 1


if __name__ == "__main__":
    sys.exit(main())
