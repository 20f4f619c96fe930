"""A provider's books for one agreement: usage per activity, debit notes due, invoice. Pure code.

Time is passed in (monotonic seconds), so the schedule is tested with a fake clock. A debit note
states the activity's total amount due so far (Golem debit notes are cumulative); the invoice is
the sum over the agreement's activities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from golem_actors.localnet.offer import amount_due

__all__ = ["ActivityMeter", "AgreementBook", "DebitNoteDue"]


@dataclass
class ActivityMeter:
    """Usage of one activity: wall time since creation and cpu seconds of its processes."""

    activity_id: str
    started: float
    ended: float | None = None
    cpu_seconds: float = 0.0

    def usage(self, now: float) -> list[float]:
        """The counters of ``golem.com.usage.vector``: duration_sec, cpu_sec."""
        end = self.ended if self.ended is not None else now
        return [round(max(0.0, end - self.started), 3), round(self.cpu_seconds, 3)]


@dataclass(frozen=True)
class DebitNoteDue:
    activity_id: str
    amount: Decimal
    usage: list[float]


@dataclass
class AgreementBook:
    """Everything a provider must remember to bill one agreement honestly (or not: overcharge)."""

    agreement_id: str
    coefficients: list[float]
    debit_note_interval: float
    accept_timeout: float
    overcharge: float = 1.0
    approved_at: float = 0.0
    payable: bool = False  # mid-agreement payments agreed: debit notes carry a due date
    activities: dict[str, ActivityMeter] = field(default_factory=dict)
    unaccepted: dict[str, float] = field(default_factory=dict)  # debit note id -> deadline
    _next_note: dict[str, float] = field(default_factory=dict)

    def start_activity(self, activity_id: str, now: float) -> ActivityMeter:
        meter = self.activities.setdefault(activity_id, ActivityMeter(activity_id, now))
        self._next_note.setdefault(activity_id, now + self.debit_note_interval)
        return meter

    def end_activity(self, activity_id: str, now: float) -> None:
        meter = self.activities.get(activity_id)
        if meter is not None and meter.ended is None:
            meter.ended = now
        self._next_note.pop(activity_id, None)

    def end_all(self, now: float) -> None:
        for activity_id in list(self.activities):
            self.end_activity(activity_id, now)

    def live_activities(self) -> list[ActivityMeter]:
        return [m for m in self.activities.values() if m.ended is None]

    def amount(self, meter: ActivityMeter, now: float) -> Decimal:
        base = amount_due(self.coefficients, meter.usage(now))
        return _charge(base, self.overcharge)

    def debit_notes_due(self, now: float) -> list[DebitNoteDue]:
        """Debit notes to send now; each activity's next one is scheduled an interval later."""
        due = []
        for activity_id, at in list(self._next_note.items()):
            if now >= at:
                meter = self.activities[activity_id]
                due.append(DebitNoteDue(activity_id, self.amount(meter, now), meter.usage(now)))
                self._next_note[activity_id] = now + self.debit_note_interval
        return due

    def debit_note_sent(self, debit_note_id: str, now: float) -> None:
        self.unaccepted[debit_note_id] = now + self.accept_timeout

    def debit_note_accepted(self, debit_note_id: str) -> bool:
        return self.unaccepted.pop(debit_note_id, None) is not None

    def overdue(self, now: float) -> str | None:
        """The first debit note left unaccepted past its accept timeout, if any."""
        for debit_note_id, deadline in self.unaccepted.items():
            if now > deadline:
                return debit_note_id
        return None

    def invoice_amount(self, now: float) -> Decimal:
        total = sum((self.amount(m, now) for m in self.activities.values()), Decimal(0))
        return total.normalize() if total else Decimal(0)


def _charge(amount: Decimal, factor: float) -> Decimal:
    if factor == 1.0:
        return amount
    with localcontext() as ctx:
        ctx.prec = 60
        return (amount * Decimal(str(factor))).quantize(Decimal("1e-18")).normalize()
