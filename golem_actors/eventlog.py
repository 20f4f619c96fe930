"""The event log file: every event of a run as one JSON line, to read after the run.

    Golem(events_file="run.jsonl")            # or: golem-actors run ... --events-file run.jsonl
    golem-actors events run.jsonl             # the timeline, then the end-of-run summary

Each line is ``{"type": "AgreementApproved", "at": 1714557600.12, "agreement_id": ..., ...}``:
the event's class, its Unix time and its fields (amounts as decimal strings). The first line
(``"type": "_log"``) says which format and budget; a run that stopped cleanly ends with its
payment totals (``"type": "_totals"``). Every line is flushed as it is written, so a killed run
leaves a file that reads up to its last event; a line cut off by the kill is reported, not an
error. Events hold no secrets, and each line is scrubbed of the app key all the same.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import typing
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from golem_actors import events as ev
from golem_actors.errors import GolemActorsError
from golem_actors.payments.decisions import Totals
from golem_actors.yagna.transport import redact

__all__ = [
    "FORMAT_VERSION",
    "EventLog",
    "EventLogError",
    "EventsRead",
    "event_from_json",
    "event_to_json",
    "read_events",
]

FORMAT_VERSION = 1
_HEADER, _TOTALS = "_log", "_totals"
_TOTALS_FIELDS = ("budget", "debit_notes", "invoices", "committed", "remaining")


class EventLogError(GolemActorsError, ValueError):
    """The events file cannot be written or read; the message names the file and the line."""


def _event_types() -> dict[str, type[ev.Event]]:
    found: dict[str, type[ev.Event]] = {}
    todo = [ev.Event]
    while todo:
        for sub in todo.pop().__subclasses__():
            found[sub.__name__] = sub
            todo.append(sub)
    return found


def _value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)  # an event field of another type: kept readable


def event_to_json(event: ev.Event) -> dict[str, Any]:
    """The event as a JSON object: its type, ``at``, then its fields."""
    body = {f.name: _value(getattr(event, f.name)) for f in dataclasses.fields(event)}
    return {"type": type(event).__name__, "at": body.pop("at"), **body}


def event_from_json(data: dict[str, Any]) -> ev.Event | None:
    """The event a JSON object describes; None for a type this version does not know.

    Raises ``ValueError`` for a known type whose fields do not fit.
    """
    cls = _event_types().get(str(data.get("type")))
    if cls is None:
        return None
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue  # a field added later has a default, or the constructor says what misses
        value = data[f.name]
        if hints.get(f.name) is Decimal and value is not None:
            try:
                value = Decimal(str(value))
            except InvalidOperation:
                raise ValueError(f"{f.name}: not an amount: {value!r}") from None
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"{cls.__name__}: {exc}") from None


class EventLog:
    """Appends every event of a bus to a file, one flushed JSON line each."""

    def __init__(
        self, path: Path | str, *, budget: Decimal | None = None, secret: str = ""
    ) -> None:
        self.path = Path(path)
        self._secret = secret
        self._lock = threading.Lock()
        self._bus: ev.EventBus | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] | None = self.path.open("w", encoding="utf-8")
        except OSError as exc:
            raise EventLogError(f"events file {self.path}: cannot write it: {exc}") from None
        header = {"type": _HEADER, "at": time.time(), "version": FORMAT_VERSION}
        self._write({**header, "budget": None if budget is None else str(budget)})

    def attach(self, bus: ev.EventBus) -> None:
        self._bus = bus
        bus.subscribe(self.on_event)

    def on_event(self, event: ev.Event) -> None:
        self._write(event_to_json(event))

    def close(self, totals: Totals | None = None) -> None:
        """Stop listening; with the run's final ``totals``, end the file with them."""
        if self._bus is not None:
            self._bus.unsubscribe(self.on_event)
            self._bus = None
        if totals is not None:
            amounts = {name: str(getattr(totals, name)) for name in _TOTALS_FIELDS}
            self._write({"type": _TOTALS, "at": time.time(), **amounts})
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _write(self, record: dict[str, Any]) -> None:
        line = redact(json.dumps(record, separators=(",", ":")), self._secret)
        with self._lock:
            if self._file is None:
                return
            try:
                self._file.write(line + "\n")
                self._file.flush()  # a killed run keeps every event written so far
            except OSError:
                self._file = None  # a full disk must not stop the run; the file ends here


@dataclass
class EventsRead:
    """What an events file holds."""

    events: list[ev.Event] = field(default_factory=list)
    totals: Totals | None = None
    budget: Decimal | None = None
    unknown: int = 0  # lines of event types this version does not know (skipped)
    truncated: bool = False  # the last line was cut off (a killed run)


def read_events(path: Path | str) -> EventsRead:
    """Read an events file; ``EventLogError`` names what is wrong and where."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EventLogError(f"events file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EventLogError(f"events file {path}: cannot read it: {exc}") from None
    lines = text.split("\n")
    ended = lines[-1] == ""  # a complete file ends with a line end
    if ended:
        lines.pop()
    if not lines:
        raise EventLogError(f"events file {path} is empty")
    read = EventsRead()
    for number, line in enumerate(lines, 1):
        last = number == len(lines)
        try:
            _take(read, json.loads(line), first=number == 1)
        except ValueError as exc:
            if last and not ended and number > 1:
                read.truncated = True  # the kill cut the line being written
                break
            raise EventLogError(f"{path}:{number}: not an event ({exc}): {line[:120]!r}") from None
    return read


def _take(read: EventsRead, record: Any, *, first: bool) -> None:
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")  # noqa: TRY004 - a bad line, like bad JSON
    kind = record.get("type")
    if first:
        if kind != _HEADER:
            raise ValueError("an events file starts with its _log line")
        if record.get("version") != FORMAT_VERSION:
            raise ValueError(f"format version {record.get('version')!r}, expected {FORMAT_VERSION}")
        budget = record.get("budget")
        read.budget = None if budget is None else Decimal(str(budget))
        return
    if kind == _TOTALS:
        try:
            read.totals = Totals(**{name: Decimal(str(record[name])) for name in _TOTALS_FIELDS})
        except (KeyError, InvalidOperation) as exc:
            raise ValueError(f"bad totals: {exc!r}") from None
        return
    event = event_from_json(record)
    if event is None:
        read.unknown += 1
    else:
        read.events.append(event)
