"""What each agreement has cost so far, kept current from the payment events.

For ``ctx.cost()`` and the instances' snapshots (``InstanceSnapshot.cost``). Debit notes are
cumulative per activity, so before its invoice an agreement costs the sum over its activities of
the highest note accepted; its accepted invoice then replaces that. ``DebitNoteAccepted`` does
not carry the activity: it is looked up from the note's ``DebitNoteReceived``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from decimal import Decimal

from golem_actors import events as ev

__all__ = ["CostBook"]

log = logging.getLogger(__name__)

ZERO = Decimal(0)


class CostBook:
    """Per agreement: accepted debit notes (per activity) and the accepted invoice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._note_activity: dict[str, str] = {}  # debit note -> its activity, until accepted
        self._notes: dict[str, dict[str, Decimal]] = {}  # agreement -> activity -> highest
        self._invoices: dict[str, Decimal] = {}
        self._watchers: dict[str, list[Callable[[str, Decimal], object]]] = {}

    def on_event(self, event: ev.Event) -> None:
        """Subscribe this to the run's ``EventBus``."""
        with self._lock:
            if isinstance(event, ev.DebitNoteReceived):
                self._note_activity[event.debit_note_id] = event.activity_id
                return
            if isinstance(event, ev.DebitNoteAccepted):
                activity = self._note_activity.pop(event.debit_note_id, "")
                notes = self._notes.setdefault(event.agreement_id, {})
                notes[activity] = max(notes.get(activity, ZERO), event.amount)
            elif isinstance(event, ev.InvoiceAccepted):
                self._invoices[event.agreement_id] = event.amount
            else:
                return
            agreement = event.agreement_id
            cost = self._cost(agreement)
            watchers = list(self._watchers.get(agreement, ()))
        for watcher in watchers:
            try:
                watcher(agreement, cost)
            except Exception:
                log.exception("a cost watcher of %s failed", agreement)

    def agreement(self, agreement_id: str) -> Decimal:
        """GLM accepted for this agreement so far (0 if nothing yet)."""
        with self._lock:
            return self._cost(agreement_id)

    def watch(self, agreement_id: str, callback: Callable[[str, Decimal], object]) -> None:
        """Call ``callback(agreement_id, cost)`` whenever the agreement's cost changes (from
        the thread that emits the payment event; keep it quick)."""
        with self._lock:
            self._watchers.setdefault(agreement_id, []).append(callback)
            cost = self._cost(agreement_id)
        if cost:
            callback(agreement_id, cost)

    def _cost(self, agreement_id: str) -> Decimal:
        invoice = self._invoices.get(agreement_id)
        if invoice is not None:
            return invoice
        return sum(self._notes.get(agreement_id, {}).values(), ZERO)
