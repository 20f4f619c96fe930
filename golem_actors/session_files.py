"""A ``Golem`` session's files: its journal (what a crashed run is recovered from) and its events
file (every event as one JSON line, for reading after the run).

Both are opened before anything costs money, so a bad path fails ``start`` with nothing
reserved; both are closed last, once the actors are gone, so their final entries are in.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from golem_actors.eventlog import EventLog
from golem_actors.events import EventBus
from golem_actors.journal import Journal, JournalError
from golem_actors.payments.decisions import Totals

__all__ = ["JOURNAL_NAME", "SessionFiles", "journal_path"]

JOURNAL_NAME = "journal.gaj"  # the journal's name inside a run directory


def journal_path(value: Path | str) -> Path:
    """A run directory (no suffix: its ``journal.gaj``) or a journal file."""
    path = Path(value)
    return path / JOURNAL_NAME if path.is_dir() or not path.suffix else path


class SessionFiles:
    """The journal and the events file of one session; either may be absent (None)."""

    def __init__(self, journal: Path | str | None, events_file: Path | str | None) -> None:
        self.journal_path = journal_path(journal) if journal is not None else None
        self.events_path = Path(events_file) if events_file is not None else None
        self.journal: Journal | None = None
        self.event_log: EventLog | None = None

    def open(self, *, budget: Decimal, secret: str | None) -> None:
        """Open both (``JournalError``, or ``EventLogError`` naming the file); all or nothing."""
        if self.events_path is not None:
            self.event_log = EventLog(self.events_path, budget=budget, secret=secret or "")
        if self.journal_path is not None:
            try:
                self.journal = Journal.open(self.journal_path)
            except JournalError:
                self.discard()
                raise

    def attach(self, events: EventBus) -> None:
        """Start writing the session's events to the events file."""
        if self.event_log is not None:
            self.event_log.attach(events)

    def discard(self) -> None:
        """The session did not start: close both, the journal left as it was (not closed)."""
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        if self.event_log is not None:
            self.event_log.close()
            self.event_log = None

    def close(self, totals: Totals | None) -> None:
        """The session ended: the events file gets the totals, the journal is marked closed."""
        if self.event_log is not None:
            self.event_log.close(totals)
        if self.journal is not None:
            self.journal.mark_closed()
            self.journal.close()
