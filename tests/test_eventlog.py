"""The events file: every event type round-trips, a killed run's file still reads, bad files
are named clearly, and the app key never reaches it."""

from __future__ import annotations

import dataclasses
import json
import typing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from golem_actors import events as ev
from golem_actors.eventlog import (
    EventLog,
    EventLogError,
    event_from_json,
    event_to_json,
    read_events,
)
from golem_actors.payments.decisions import Totals

SECRET = "0123456789abcdef-app-key"


def sample(cls: type[ev.Event], n: int) -> ev.Event:
    """An instance of ``cls`` with a distinct value in every field."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        if f.name == "at":
            values[f.name] = 1714557600.25 + n
        elif hint is Decimal:
            values[f.name] = Decimal(f"0.{n}01")
        elif hint is bool:
            values[f.name] = True
        elif hint is int:
            values[f.name] = n
        elif hint in (float, float | None):
            values[f.name] = n + 0.5
        else:
            values[f.name] = f"{f.name}-{n}"
    return cls(**values)


EVENT_TYPES = [getattr(ev, name) for name in ev.__all__ if name not in ("Event", "EventBus")]


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.__name__)
def test_every_event_type_round_trips_through_json(cls: type[ev.Event]) -> None:
    event = sample(cls, EVENT_TYPES.index(cls))
    line = json.dumps(event_to_json(event))
    assert event_from_json(json.loads(line)) == event


def totals() -> Totals:
    d = Decimal
    return Totals(d("5"), d("0.25"), d("0.5"), d("0.5"), d("4.5"))


def write(path: Path, events: list[ev.Event], final: Totals | None = None) -> None:
    bus = ev.EventBus()
    log = EventLog(path, budget=Decimal(5), secret=SECRET)
    log.attach(bus)
    for event in events:
        bus.emit(event)
    log.close(final)
    bus.emit(ev.BatchStarted(activity_id="after-close"))  # not written: it detached


def test_a_written_file_reads_back_with_its_totals(tmp_path: Path) -> None:
    path = tmp_path / "run" / "events.jsonl"  # its directory is made
    events = [sample(cls, i) for i, cls in enumerate(EVENT_TYPES)]
    write(path, events, totals())
    read = read_events(path)
    assert read.events == events
    assert (read.totals, read.budget) == (totals(), Decimal(5))
    assert not read.truncated
    assert read.unknown == 0


def test_the_app_key_never_reaches_the_file(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    leaky = ev.AgreementTerminated(
        agreement_id="a", provider_id="p", by_provider=True, reason=f"Bearer {SECRET} was sent"
    )
    write(path, [leaky])
    text = path.read_text()
    assert SECRET not in text
    assert "Bearer <redacted> was sent" in text


def test_a_killed_runs_file_reads_up_to_the_cut_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    events = [sample(ev.BatchStarted, 1), sample(ev.BatchFinished, 2)]
    write(path, events)  # no totals: it did not stop cleanly
    with path.open("a") as file:
        file.write('{"type":"BatchStarted","at":17145')  # the kill cut this line
    read = read_events(path)
    assert read.events == events
    assert read.truncated
    assert read.totals is None


def test_unknown_event_types_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write(path, [sample(ev.BatchStarted, 1)])
    with path.open("a") as file:
        file.write('{"type":"FromTheFuture","at":1.0,"x":1}\n')
    read = read_events(path)
    assert (len(read.events), read.unknown) == (1, 1)


def test_bad_files_are_named_with_their_line(tmp_path: Path) -> None:
    with pytest.raises(EventLogError, match="does not exist"):
        read_events(tmp_path / "missing.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(EventLogError, match="is empty"):
        read_events(empty)
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"hello": "world"}\n')
    with pytest.raises(EventLogError, match=r"foreign\.jsonl:1: .*starts with its _log line"):
        read_events(foreign)
    corrupt = tmp_path / "corrupt.jsonl"
    write(corrupt, [sample(ev.BatchStarted, 1)])
    lines = corrupt.read_text().splitlines()
    corrupt.write_text("\n".join([lines[0], "garbage{", *lines[1:]]) + "\n")
    with pytest.raises(EventLogError, match=r"corrupt\.jsonl:2: not an event"):
        read_events(corrupt)  # a bad line in the middle is corruption, not a kill
    wrong = tmp_path / "wrong.jsonl"
    write(wrong, [])
    with wrong.open("a") as file:
        file.write('{"type":"BatchFinished","at":1.0,"activity_id":"a"}\n')
    with pytest.raises(EventLogError, match=r"wrong\.jsonl:2: .*BatchFinished"):
        read_events(wrong)  # a known type missing fields


def test_an_unwritable_file_is_refused_at_once(tmp_path: Path) -> None:
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(EventLogError, match=r"dir\.jsonl: cannot write it"):
        EventLog(tmp_path / "dir.jsonl")
