"""Debugging on localnet: the activity's usage, state and cost from ctx, instance snapshots
that know their cost, and the events file read during and after a run.

Its own small localnet, whose providers send a debit note every second (the shared one's send
one every 2 minutes), so that costs show within a test."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from golem_actors.eventlog import read_events
from golem_actors.events import (
    ActivityCreated,
    AgreementApproved,
    AgreementTerminated,
    DebitNoteAccepted,
    Event,
)
from golem_actors.localnet.network import LocalNet, default_specs
from golem_actors.status import status_document
from tests.actors.remote import Remote, remote_ctx
from tests.waiting import wait_for

pytestmark = [pytest.mark.yagna]


@pytest.fixture(scope="module")
def billed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    specs = default_specs(2, debit_note_interval=1.0)
    with LocalNet(specs, data_dir=tmp_path_factory.mktemp("billed")) as net:
        yield net


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("control") / "events.jsonl"


@pytest.fixture(scope="module")
def remote(billed: LocalNet, events_file: Path) -> Iterator[Remote]:
    with remote_ctx(billed, events_file=events_file, debit_note_interval_s=1) as session:
        yield session


def test_ctx_reads_the_activitys_state_and_usage(remote: Remote) -> None:
    state = remote.call(lambda ctx: ctx.state())
    assert state.current == "Ready"  # deployed and started by the service's start()
    first = remote.call(lambda ctx: ctx.usage())
    before = first.current_usage
    assert before is not None
    assert all(value >= 0 for value in before)
    busy = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"  # some cpu for the counters
    remote.call(lambda ctx: ctx.run("/bin/sh", "-c", busy))

    def grown() -> bool:
        now = remote.call(lambda ctx: ctx.usage())
        assert now.current_usage is not None
        return now.timestamp > first.timestamp and now.current_usage > before

    wait_for("the usage counters to grow", grown, timeout=15)


def test_ctx_cost_and_the_snapshot_follow_the_accepted_debit_notes(remote: Remote) -> None:
    handle = remote.cluster.handles[0]
    wait_for("a debit note accepted", lambda: remote.call(lambda ctx: ctx.cost()) > 0, 20)
    cost = remote.call(lambda ctx: ctx.cost())
    assert Decimal(0) < cost < Decimal(1)
    agreement = handle.agreement_id
    assert agreement is not None
    assert remote.call(lambda ctx: ctx.agreement_id) == agreement
    # The snapshot follows the same notes (it may have moved on by one since).
    wait_for("the snapshot to show the cost", lambda: handle.snapshot().cost >= cost, 10)
    (shown,) = status_document(remote.golem)["instances"]
    assert Decimal(shown["cost"]) >= cost  # and /status with it
    later = remote.call(lambda ctx: ctx.cost())
    wait_for("more notes accepted", lambda: remote.call(lambda ctx: ctx.cost()) > later, 20)


def test_the_events_file_reads_while_the_run_goes_on(remote: Remote, events_file: Path) -> None:
    wait_for("a debit note in the file", lambda: _has(events_file, DebitNoteAccepted), 20)
    read = read_events(events_file)  # each line flushed: what a kill -9 now would leave
    assert not read.truncated
    assert read.totals is None  # still running
    assert read.budget == Decimal(5)
    approved = [e for e in read.events if isinstance(e, AgreementApproved)]
    assert [e.agreement_id for e in approved] == [remote.cluster.handles[0].agreement_id]
    assert any(isinstance(e, ActivityCreated) for e in read.events)
    assert remote.golem.config.app_key not in events_file.read_text()


def _has(path: Path, kind: type[Event]) -> bool:
    return any(isinstance(e, kind) for e in read_events(path).events)


def test_after_the_run_the_file_ends_with_its_totals(billed: LocalNet, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with remote_ctx(billed, events_file=path, debit_note_interval_s=1) as session:
        session.call(lambda ctx: ctx.run("/bin/true"))
    golem = session.golem
    read = read_events(path)
    assert read.totals is not None
    assert read.totals == golem.final_totals
    assert any(isinstance(e, AgreementTerminated) for e in read.events)
    assert billed.app_key not in path.read_text()
