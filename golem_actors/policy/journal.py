"""What a run's journal says happened: its records, and the state they add up to.

Pure: no files, no clock. ``golem_actors.journal`` frames these records on disk; this module only
builds them (one constructor per kind, so every writer spells them the same) and folds them into a
:class:`JournalState` with :func:`replay`. Compaction writes :func:`snapshot` of a state, which
replays to the same state, so a compacted journal means exactly what the long one meant.

A record is a flat dict with a ``k`` (kind) key; amounts are decimal strings (never floats, money
is exact) and times are ISO-8601 strings. Replay is strict about the kinds it knows (a record
missing a field is damage, reported with its index) and skips kinds it does not (a newer writer).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from golem_actors.errors import GolemActorsError

__all__ = [
    "FORMAT_VERSION",
    "ActivityRecord",
    "AgreementRecord",
    "AgreementStatus",
    "DocStatus",
    "InvoiceRecord",
    "JournalReplayError",
    "JournalState",
    "NoteRecord",
    "activity",
    "agreement",
    "allocation",
    "closed",
    "debit_note",
    "header",
    "invoice",
    "replay",
    "snapshot",
    "task_done",
]

FORMAT_VERSION = 1

Record = dict[str, Any]


class JournalReplayError(GolemActorsError, ValueError):
    """A record that cannot mean anything: names its index and what is wrong with it."""


class AgreementStatus(enum.Enum):
    CREATED = "created"
    APPROVED = "approved"
    TERMINATED = "terminated"


class DocStatus(enum.Enum):
    """A debit note's or invoice's acceptance: ``SENDING`` is journaled before the accept goes to
    yagna, so after a crash it means "ask yagna whether it arrived", never "send it again"."""

    SENDING = "sending"
    ACCEPTED = "accepted"
    REFUSED = "refused"


@dataclass(frozen=True)
class AgreementRecord:
    agreement_id: str
    provider_id: str
    status: AgreementStatus


@dataclass(frozen=True)
class ActivityRecord:
    activity_id: str
    agreement_id: str
    requested_at: dt.datetime


@dataclass(frozen=True)
class NoteRecord:
    debit_note_id: str
    agreement_id: str
    activity_id: str
    amount: Decimal
    status: DocStatus


@dataclass(frozen=True)
class InvoiceRecord:
    invoice_id: str
    agreement_id: str
    amount: Decimal
    status: DocStatus


@dataclass
class JournalState:
    """Everything recovery needs. Debit notes: the latest decision per activity (notes are
    cumulative, so a later one supersedes the earlier ones); invoices: one per agreement."""

    run_id: str = ""
    created: str = ""
    allocation_id: str | None = None
    budget: Decimal | None = None
    agreements: dict[str, AgreementRecord] = field(default_factory=dict)
    activities: dict[str, ActivityRecord] = field(default_factory=dict)
    notes: dict[str, NoteRecord] = field(default_factory=dict)  # by activity id
    invoices: dict[str, InvoiceRecord] = field(default_factory=dict)  # by agreement id
    tasks: dict[str, Any] = field(default_factory=dict)  # task id -> result reference
    closed: bool = False  # the last session ended cleanly (a resumed one clears it)
    skipped: int = 0  # records of kinds this version does not know

    def open_agreements(self) -> list[AgreementRecord]:
        return [a for a in self.agreements.values() if a.status is not AgreementStatus.TERMINATED]

    def apply(self, record: Mapping[str, Any]) -> None:
        """Fold one record in (raises KeyError/ValueError/TypeError on a malformed one)."""
        fold = _FOLDS.get(record["k"])
        if fold is None:
            self.skipped += 1
        else:
            fold(self, record)

    def _run(self, record: Mapping[str, Any]) -> None:
        if record["v"] > FORMAT_VERSION:
            raise ValueError(f"journal format {record['v']} is newer than {FORMAT_VERSION}")
        self.run_id, self.created = str(record["run"]), str(record["at"])
        self.closed = False

    def _alloc(self, record: Mapping[str, Any]) -> None:
        self.allocation_id, self.budget = str(record["id"]), _money(record["budget"])

    def _agreement(self, record: Mapping[str, Any]) -> None:
        status = AgreementStatus(record["s"])
        known = self.agreements.get(record["id"])
        if known is not None and known.status is AgreementStatus.TERMINATED:
            return  # terminated is final, whatever arrives late
        provider = str(record.get("p") or (known.provider_id if known else ""))
        self.agreements[record["id"]] = AgreementRecord(str(record["id"]), provider, status)

    def _activity(self, record: Mapping[str, Any]) -> None:
        self.activities[record["id"]] = ActivityRecord(
            str(record["id"]), str(record["agr"]), _time(record["at"])
        )

    def _note(self, record: Mapping[str, Any]) -> None:
        note = NoteRecord(
            str(record["id"]),
            str(record["agr"]),
            str(record["act"]),
            _money(record["amt"]),
            DocStatus(record["s"]),
        )
        if note.status is not DocStatus.REFUSED:  # a refusal leaves the accepted one standing
            self.notes[note.activity_id] = note

    def _invoice(self, record: Mapping[str, Any]) -> None:
        inv = InvoiceRecord(
            str(record["id"]), str(record["agr"]), _money(record["amt"]), DocStatus(record["s"])
        )
        known = self.invoices.get(inv.agreement_id)
        if known is None or known.status is not DocStatus.ACCEPTED:
            self.invoices[inv.agreement_id] = inv  # accepted is final: paid once

    def _task(self, record: Mapping[str, Any]) -> None:
        self.tasks[str(record["id"])] = record["r"]

    def _closed(self, _: Mapping[str, Any]) -> None:
        self.closed = True


_FOLDS: dict[str, Callable[[JournalState, Mapping[str, Any]], None]] = {
    "run": JournalState._run,  # noqa: SLF001
    "alloc": JournalState._alloc,  # noqa: SLF001
    "agr": JournalState._agreement,  # noqa: SLF001
    "act": JournalState._activity,  # noqa: SLF001
    "dn": JournalState._note,  # noqa: SLF001
    "inv": JournalState._invoice,  # noqa: SLF001
    "task": JournalState._task,  # noqa: SLF001
    "closed": JournalState._closed,  # noqa: SLF001
}


def replay(records: Iterable[Mapping[str, Any]]) -> JournalState:
    """The state a sequence of records adds up to; the first must be the run header."""
    state = JournalState()
    for index, record in enumerate(records):
        if not isinstance(record, Mapping) or "k" not in record:
            raise JournalReplayError(f"record {index} is not a journal record: {record!r:.80}")
        if index == 0 and record["k"] != "run":
            raise JournalReplayError(f"record 0 must be the run header, got kind {record['k']!r}")
        try:
            state.apply(record)
        except (KeyError, ValueError, TypeError, InvalidOperation) as exc:
            raise JournalReplayError(
                f"record {index} ({record.get('k')!r}) is malformed: {type(exc).__name__}: {exc}"
            ) from None
    return state


def snapshot(state: JournalState) -> list[Record]:
    """Records that replay to ``state`` (what compaction writes)."""
    out: list[Record] = [
        {"k": "run", "v": FORMAT_VERSION, "run": state.run_id, "at": state.created}
    ]
    if state.allocation_id is not None and state.budget is not None:
        out.append(allocation(state.allocation_id, state.budget))
    out += [agreement(a.agreement_id, a.status, a.provider_id) for a in state.agreements.values()]
    out += [
        activity(a.activity_id, a.agreement_id, a.requested_at) for a in state.activities.values()
    ]
    out += [
        debit_note(n.debit_note_id, n.agreement_id, n.activity_id, n.amount, n.status)
        for n in state.notes.values()
    ]
    out += [
        invoice(i.invoice_id, i.agreement_id, i.amount, i.status) for i in state.invoices.values()
    ]
    out += [task_done(task_id, result) for task_id, result in state.tasks.items()]
    if state.closed:
        out.append(closed())
    out += [{"k": "skipped"}] * state.skipped  # unknown kinds stay counted, not kept
    return out


# -- record constructors ---------------------------------------------------------------------


def header(run_id: str, at: dt.datetime) -> Record:
    return {"k": "run", "v": FORMAT_VERSION, "run": run_id, "at": at.isoformat()}


def allocation(allocation_id: str, budget: Decimal) -> Record:
    return {"k": "alloc", "id": allocation_id, "budget": str(budget)}


def agreement(agreement_id: str, status: AgreementStatus, provider_id: str = "") -> Record:
    return {"k": "agr", "id": agreement_id, "s": status.value, "p": provider_id}


def activity(activity_id: str, agreement_id: str, requested_at: dt.datetime) -> Record:
    return {"k": "act", "id": activity_id, "agr": agreement_id, "at": requested_at.isoformat()}


def debit_note(
    debit_note_id: str, agreement_id: str, activity_id: str, amount: Decimal, status: DocStatus
) -> Record:
    return {
        "k": "dn",
        "id": debit_note_id,
        "agr": agreement_id,
        "act": activity_id,
        "amt": str(amount),
        "s": status.value,
    }


def invoice(invoice_id: str, agreement_id: str, amount: Decimal, status: DocStatus) -> Record:
    return {
        "k": "inv",
        "id": invoice_id,
        "agr": agreement_id,
        "amt": str(amount),
        "s": status.value,
    }


def task_done(task_id: str, result: Any) -> Record:
    """``result`` must be msgpack-able (a reference such as a path or a small value)."""
    return {"k": "task", "id": task_id, "r": result}


def closed() -> Record:
    return {"k": "closed"}


def _money(value: Any) -> Decimal:
    amount = Decimal(str(value))
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"amount {value!r} is not a finite, non-negative number")
    return amount


def _time(value: Any) -> dt.datetime:
    at = dt.datetime.fromisoformat(str(value))
    if at.tzinfo is None:
        raise ValueError(f"time {value!r} has no timezone")
    return at
