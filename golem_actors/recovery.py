"""Picking a run up after a crash: end what it left open, and find what it still owes.

Runs once, synchronously, when a session starts on a journal that already holds a run, before
any new agreement is made. yagna is the ground truth for money: an invoice or debit note counts as
accepted when yagna says so, whatever the journal's last word was ("sending" may or may not have
arrived before the crash), so nothing is accepted twice. The journal says which agreements and
activities were ours; yagna's agreement list by app session (the run id) adds any agreement whose
id never reached the journal.

The result, :class:`Recovered`, seeds the payment actor's books (agreements with their terms,
activities, what was accepted) and hands it the documents still waiting for a decision; from there
the usual rules apply: within prices and budget, once, one at a time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from golem_actors.journal import Journal
from golem_actors.payments.decisions import Code, DebitNoteIn, InvoiceIn
from golem_actors.payments.ledger import PaymentLedger
from golem_actors.payments.terms import Terms
from golem_actors.policy.journal import AgreementStatus, DocStatus
from golem_actors.yagna import YagnaClient, YagnaError, YagnaGoneError
from golem_actors.yagna.errors import YagnaNotFoundError
from golem_actors.yagna.models import Agreement, DebitNote, Invoice

__all__ = [
    "Recovered",
    "RecoveryError",
    "end_open_agreements",
    "recover",
    "seed_ledger",
    "spent_before",
    "unknown_activity_starts",
    "why_not_ours",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Agreement states that can still bill (or become billable): these get terminated.
_LIVE = frozenset({"Approved", "Pending"})


@dataclass
class Recovered:
    """What a crashed run left: its agreements (all ended now) and its payment documents."""

    agreements: list[Agreement] = field(default_factory=list)
    activities: dict[str, tuple[str, dt.datetime]] = field(default_factory=dict)  # id -> agr, at
    accepted_notes: list[DebitNote] = field(default_factory=list)
    accepted_invoices: list[Invoice] = field(default_factory=list)
    rejected_invoices: list[Invoice] = field(default_factory=list)  # refused before the crash
    pending: list[DebitNote | Invoice] = field(default_factory=list)  # RECEIVED: to decide
    terminated: list[str] = field(default_factory=list)  # ended by this recovery
    problems: list[str] = field(default_factory=list)


def end_open_agreements(
    client: YagnaClient,
    journal: Journal,
    *,
    reason: str = "requestor recovered: no longer needed",
    approval_wait_s: float = 5.0,
    billable: list[Agreement] | None = None,
) -> tuple[list[str], list[str]]:
    """Terminate every agreement of this run yagna still has live; returns (ended, problems).

    Used at recovery and as the last sweep of a clean stop (a terminate lost to an API fault
    leaves nothing behind either way). ``billable``, if given, collects every agreement of the
    run that yagna says was approved: each may send an invoice, even one the runtime lost track
    of (a negotiation given up on our side while the provider approved).
    """
    ended: list[str] = []
    problems: list[str] = []
    for agreement_id in _our_agreements(client, journal, problems):
        try:
            agreement = client.market.get_agreement(agreement_id)
            state = agreement.state
            if state == "Pending":  # confirmed before the crash: the provider may approve yet
                try:
                    client.market.wait_for_approval(agreement_id, timeout=approval_wait_s)
                except YagnaError:
                    state = client.market.get_agreement(agreement_id).state
                else:
                    state = "Approved"
                    agreement = client.market.get_agreement(agreement_id)  # with its approval
            if billable is not None and agreement.approved_date is not None:
                billable.append(agreement)
            if state == "Pending":  # never approved (the provider died or hangs): withdraw it
                _cancel(client, agreement_id, reason)
                ended.append(agreement_id)
            elif state in _LIVE:
                _terminate(client, agreement_id, reason)
                ended.append(agreement_id)
            if state in _LIVE or state == "Terminated":
                journal.agreement(agreement_id, AgreementStatus.TERMINATED)
        except YagnaError as exc:
            problems.append(f"ending agreement {agreement_id}: {exc}")
    return ended, problems


def recover(client: YagnaClient, journal: Journal) -> Recovered:
    """End the crashed run's agreements and collect what it still owes (see the module doc)."""
    out = Recovered()
    out.terminated, out.problems = end_open_agreements(client, journal)
    state = journal.state
    ours: dict[str, Agreement] = {}
    for agreement_id in _our_agreements(client, journal, None):
        try:
            agreement = _asked(
                functools.partial(client.market.get_agreement, agreement_id),
                f"reading agreement {agreement_id}",
            )
        except YagnaNotFoundError:  # yagna never made it: nothing to end or pay
            continue
        if agreement.approved_date is not None or agreement.state == "Terminated":
            ours[agreement_id] = agreement
    out.agreements = list(ours.values())
    for act in state.activities.values():
        if act.agreement_id in ours:
            out.activities[act.activity_id] = (act.agreement_id, act.requested_at)
    listed_notes = _asked(client.payment.debit_notes, "listing debit notes")
    listed_invoices = _asked(client.payment.invoices, "listing invoices")
    notes = [n for n in listed_notes if n.agreement_id in ours]
    invoices = [i for i in listed_invoices if i.agreement_id in ours]
    _bound_unknown_activities(out, ours, notes, invoices)
    _sort_documents(out, journal, notes, invoices)
    for problem in out.problems:
        log.warning("recovery: %s", problem)
    log.info(
        "recovery of run %s: %d agreements ended, %d documents to decide",
        state.run_id,
        len(out.terminated),
        len(out.pending),
    )
    return out


def _bound_unknown_activities(
    out: Recovered,
    ours: dict[str, Agreement],
    notes: list[DebitNote],
    invoices: list[Invoice],
) -> None:
    """An activity the journal never heard of (a crash right after it was created) is bounded
    from its agreement's approval (see :func:`unknown_activity_starts`)."""
    billed: list[tuple[str, tuple[str, ...]]] = [(n.agreement_id, (n.activity_id,)) for n in notes]
    billed += [(i.agreement_id, i.activity_ids) for i in invoices]
    now = dt.datetime.now(dt.UTC)
    for agreement_id, activity_ids in billed:
        starts = unknown_activity_starts(ours[agreement_id], activity_ids, out.activities, now)
        for activity_id, at in starts.items():
            out.activities[activity_id] = (agreement_id, at)


def unknown_activity_starts(
    agreement: Agreement, activity_ids: Iterable[str], known: Container[str], now: dt.datetime
) -> dict[str, dt.datetime]:
    """When each of ``agreement``'s activities not in ``known`` may have started at the earliest.

    An activity the requestor never recorded (a crash, or a create whose answer was lost) cannot
    have started before its agreement was approved, so that bounds its bill; ``now`` stands in for
    an approval time yagna does not state.
    """
    start = agreement.approved_date or now
    return {activity_id: start for activity_id in activity_ids if activity_id not in known}


def why_not_ours(
    agreement: Agreement,
    *,
    since: dt.datetime,
    run_id: str | None = None,
    identity: str | None = None,
) -> str | None:
    """Why ``agreement`` is not one this run made (None if it is): the requestor must be us, it
    must be created at or after ``since`` (the session's start), and with a journal, its app
    session must be the run id (what :func:`recover` lists a run's agreements by)."""
    requestor = agreement.requestor_id
    if identity is not None and requestor is not None and requestor.lower() != identity.lower():
        return f"its requestor is {requestor}, not us ({identity})"
    created = agreement.timestamp or agreement.approved_date
    if created is None:
        return "yagna does not say when it was created"
    if created < since:
        return f"it was created at {created.isoformat()}, before this session ({since.isoformat()})"
    if run_id is not None and agreement.app_session_id != run_id:
        return f"its app session is {agreement.app_session_id!r}, not this run's {run_id!r}"
    return None


def _sort_documents(
    out: Recovered, journal: Journal, notes: list[DebitNote], invoices: list[Invoice]
) -> None:
    """yagna's word on each document: accepted (seed the books) or still to decide."""
    for note in notes:
        if note.status == "ACCEPTED":
            out.accepted_notes.append(note)
            _confirm_note(journal, note)
        elif note.status == "RECEIVED":
            out.pending.append(note)
    for invoice in invoices:
        if invoice.status in {"ACCEPTED", "SETTLED"}:
            out.accepted_invoices.append(invoice)
            journal.invoice(
                invoice.invoice_id, invoice.agreement_id, invoice.amount, DocStatus.ACCEPTED
            )
        elif invoice.status == "RECEIVED":
            out.pending.append(invoice)
        elif invoice.status == "REJECTED":
            out.rejected_invoices.append(invoice)


def seed_ledger(
    ledger: PaymentLedger,
    recovered: Recovered,
    now: dt.datetime,
    terms_of: Callable[[Agreement], Terms],
) -> list[str]:
    """Put what a crashed session decided into fresh books; returns what could not be."""
    problems: list[str] = []
    for agreement in recovered.agreements:
        try:
            terms = terms_of(agreement)
            ledger.record_agreement(agreement.agreement_id, terms, agreement.approved_date or now)
            ledger.record_termination(agreement.agreement_id, now)  # ended by this recovery
        except ValueError as exc:
            problems.append(f"agreement {agreement.agreement_id}: {exc}")
    for activity_id, (agreement_id, at) in recovered.activities.items():
        try:
            ledger.record_activity(agreement_id, activity_id, at)
        except (KeyError, ValueError) as exc:
            problems.append(f"activity {activity_id}: {exc}")
    for note in recovered.accepted_notes:
        try:
            ledger.record_debit_note_accepted(
                DebitNoteIn(
                    note.debit_note_id,
                    note.agreement_id,
                    note.activity_id,
                    note.total_amount_due,
                    note.timestamp or now,
                )
            )
        except (KeyError, ValueError) as exc:
            problems.append(f"debit note {note.debit_note_id}: {exc}")
    for invoice in recovered.accepted_invoices:
        doc = InvoiceIn(
            invoice.invoice_id, invoice.agreement_id, invoice.amount, invoice.activity_ids
        )
        try:
            ledger.record_invoice_received(doc)
            ledger.record_invoice_accepted(doc)
        except (KeyError, ValueError) as exc:
            problems.append(f"invoice {invoice.invoice_id}: {exc}")
    for invoice in recovered.rejected_invoices:
        # Refused before the crash: settling must not wait for it as if it were still to come.
        # The crashed session's reason is not kept; refusals of a provider's invoice are
        # overcharges in practice (the others are for agreements that are not ours).
        doc = InvoiceIn(
            invoice.invoice_id, invoice.agreement_id, invoice.amount, invoice.activity_ids
        )
        ledger.record_invoice_received(doc)
        ledger.record_invoice_refused(doc, Code.OVERCHARGE)
    return problems


def spent_before(recovered: Recovered) -> Decimal:
    """What the crashed session committed per yagna: each agreement's accepted invoice, or
    before one, its activities' highest accepted debit notes."""
    paid = {i.agreement_id: i.amount for i in recovered.accepted_invoices}
    notes: dict[str, Decimal] = {}
    for note in recovered.accepted_notes:
        if note.agreement_id not in paid:
            notes[note.activity_id] = max(
                notes.get(note.activity_id, Decimal(0)), note.total_amount_due
            )
    return sum(paid.values(), Decimal(0)) + sum(notes.values(), Decimal(0))


class RecoveryError(RuntimeError):
    """yagna did not tell what the crashed run left (asked a few times): nothing was decided
    blind. Starting again asks again; what was already ended or paid is not done twice."""


def _asked(call: Callable[[], T], what: str, *, tries: int = 4) -> T:
    """A read recovery cannot do without, asked again on a failed answer (about 3 s in all):
    going on without it would leave the crashed run's invoices undecided and its spending
    unknown to the budget."""
    for attempt in range(1, tries + 1):
        try:
            return call()
        except YagnaNotFoundError:
            raise  # a definite answer
        except YagnaError as exc:
            if attempt == tries:
                raise RecoveryError(f"{what}: {exc}") from exc
            time.sleep(0.4 * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _our_agreements(client: YagnaClient, journal: Journal, problems: list[str] | None) -> list[str]:
    """The journal's agreements and yagna's of the run's app session (``problems`` None: a
    failed listing raises ``RecoveryError``, else it is noted and the journal's are used)."""
    ids = dict.fromkeys(journal.state.agreements)
    try:
        listed = _asked(
            lambda: client.market.agreements(app_session_id=journal.state.run_id),
            "listing the run's agreements",
        )
        for entry in listed:
            ids.setdefault(str(entry["id"]), None)
    except (RecoveryError, KeyError, TypeError) as exc:
        if problems is None:
            raise RecoveryError(str(exc)) from exc
        problems.append(str(exc))
    return list(ids)


def _cancel(client: YagnaClient, agreement_id: str, reason: str) -> None:
    """Withdraw a confirmed agreement the provider has not approved: it can no longer approve
    (and bill) it later. Should yagna refuse, terminating is the other way to end it."""
    try:
        client.market.cancel_agreement(agreement_id, reason)
    except YagnaGoneError:
        return  # decided meanwhile
    except YagnaError:
        _terminate(client, agreement_id, reason)


def _terminate(client: YagnaClient, agreement_id: str, reason: str) -> None:
    with contextlib.suppress(YagnaGoneError):  # ended meanwhile: nothing to do
        client.market.terminate_agreement(agreement_id, reason, code="Cancelled")


def _confirm_note(journal: Journal, note: DebitNote) -> None:
    known = journal.state.notes.get(note.activity_id)
    if (
        known is not None
        and known.debit_note_id == note.debit_note_id
        and known.status is not DocStatus.ACCEPTED
    ):
        journal.debit_note(
            note.debit_note_id,
            note.agreement_id,
            note.activity_id,
            note.total_amount_due,
            DocStatus.ACCEPTED,
        )
