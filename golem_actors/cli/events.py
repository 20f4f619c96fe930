"""``golem-actors events FILE``: read a run's events file — its timeline, then its summary.

The file is what ``golem-actors run --events-file`` (or ``Golem(events_file=...)``) wrote. The
summary is the one ``golem-actors run`` prints at its end, built by the same code from the same
events, so a run that was killed before it could print one still gets it here.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from golem_actors.eventlog import EventsRead, event_to_json, read_events
from golem_actors.events import Event
from golem_actors.summary import RunSummary

__all__ = ["add_parser", "format_event", "run"]

_SHORT = 8  # characters of an id kept in the timeline


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "events",
        help="read a run's events file: its timeline and summary",
        description="Prints the timeline of a run's events file (written by `golem-actors run "
        "--events-file FILE`), then the run's summary: per provider agreements, uptime, tasks, "
        "restarts and cost; the totals if the run stopped cleanly.",
    )
    parser.add_argument("file", type=Path, help="the events file (JSON lines)")
    parser.add_argument(
        "--summary", action="store_true", help="print only the summary, not the timeline"
    )
    parser.add_argument(
        "--type",
        action="append",
        default=[],
        metavar="TYPE",
        help="only events of this type in the timeline, e.g. AgreementApproved (repeatable)",
    )
    parser.add_argument(
        "--full-ids", action="store_true", help=f"ids in full (default: first {_SHORT} chars)"
    )


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201


def _field(key: str, value: Any, *, full_ids: bool) -> str:
    if isinstance(value, float):
        text = f"{value:.3f}"
    elif isinstance(value, str) and not full_ids and key.endswith("_id") and len(value) > 12:  # noqa: PLR2004
        text = value[:_SHORT] + "…"
    else:
        text = str(value)
    if isinstance(value, str) and (" " in text or not text):
        text = repr(text)
    return f"{key}={text}"


def format_event(event: Event, start: float, *, full_ids: bool = False) -> str:
    """One timeline line: wall clock (UTC), seconds since the start, type, fields."""
    body = event_to_json(event)
    kind, at = body.pop("type"), body.pop("at")
    clock = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%H:%M:%S.%f")[:-3]
    fields = " ".join(_field(k, v, full_ids=full_ids) for k, v in body.items())
    return f"{clock} {at - start:>+9.3f}s  {kind:<22} {fields}".rstrip()


def run(args: argparse.Namespace) -> int:
    read = read_events(args.file)
    if not args.summary:
        _timeline(read, args)
    summary = RunSummary()
    for event in read.events:
        summary.on_event(event)
    end = read.events[-1].at if read.events else None
    _say(summary.render(read.totals, now=end))
    if read.totals is None:
        _say("# no final totals: the run did not stop cleanly (or is still running)")
    if read.truncated:
        _say("# the last line was cut off (the run was killed while writing it); skipped")
    if read.unknown:
        _say(f"# {read.unknown} event(s) of types this version does not know were skipped")
    return 0


def _timeline(read: EventsRead, args: argparse.Namespace) -> None:
    wanted = set(args.type)
    start = read.events[0].at if read.events else 0.0
    if read.events:
        day = dt.datetime.fromtimestamp(start, dt.UTC).strftime("%Y-%m-%d")
        _say(f"# {len(read.events)} events from {day} (UTC); budget {read.budget} GLM")
    for event in read.events:
        if not wanted or type(event).__name__ in wanted:
            _say(format_event(event, start, full_ids=args.full_ids))
