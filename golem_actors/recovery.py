"""Picking a run up after a crash: end what it left open, and find what it still owes.

Runs once, synchronously, when a session starts on a journal that already holds a run, before
any new agreement is made. yagna is the ground truth for money: an invoice or debit note counts as
accepted when yagna says so, whatever the journal's last word was ("sending" may or may not have
arrived before the crash), so nothing is accepted twice. The journal says which agreements and
activities were ours; yagna's agreement list by app session (the run id) adds any agreement whose
id never reached the journal.

The result, :class:`~golem_actors.payments.adoption.Recovered`, seeds the payment actor's books
(agreements with their terms, activities, what was accepted) and hands it the documents still
waiting for a decision; from there the usual rules apply: within prices and budget, once, one at
a time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from golem_actors.errors import GolemActorsError
from golem_actors.journal import Journal
from golem_actors.payments.adoption import Recovered, unknown_activity_starts
from golem_actors.policy.journal import AgreementStatus, DocStatus
from golem_actors.yagna import YagnaClient, YagnaError, YagnaGoneError
from golem_actors.yagna.errors import YagnaNotFoundError
from golem_actors.yagna.models import Agreement, DebitNote, Invoice

__all__ = ["RecoveryError", "end_open_agreements", "recover"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Agreement states that can still bill (or become billable): these get terminated.
_LIVE = frozenset({"Approved", "Pending"})


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
    from its agreement's approval (see
    :func:`~golem_actors.payments.adoption.unknown_activity_starts`)."""
    billed: list[tuple[str, tuple[str, ...]]] = [(n.agreement_id, (n.activity_id,)) for n in notes]
    billed += [(i.agreement_id, i.activity_ids) for i in invoices]
    now = dt.datetime.now(dt.UTC)
    for agreement_id, activity_ids in billed:
        starts = unknown_activity_starts(ours[agreement_id], activity_ids, out.activities, now)
        for activity_id, at in starts.items():
            out.activities[activity_id] = (agreement_id, at)


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


class RecoveryError(GolemActorsError, RuntimeError):
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
