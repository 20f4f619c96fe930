"""Documents the payment books do not know yet: hold them, ask yagna whether they are ours.

An invoice or debit note can name an agreement the requestor lost track of (the agreement actor
failed on our side while the provider had approved, then terminated it: the provider invoices) or
an activity it never recorded (the create call's answer was lost while yagna created it). Refusing
or ignoring such a document leaves an honest bill unpaid forever. Our yagna is the ground truth:
its requestor API lists only our own agreements and activities. So before dropping or refusing,
the payment actor fetches the agreement, accepts responsibility only if it is this run's (see
:func:`golem_actors.payments.adoption.why_not_ours`), records it and its activities (each unknown
one from the agreement's approval, the earliest it could have started), and then decides the
document as usual: within prices and budget, exactly once.

A document of an agreement not registered yet is first held: events may beat the instance's
registration by a few ms. Only if no registration comes within ``hold_s`` is yagna asked.

:class:`PaymentChecks` is an object the payment actor holds. Each question (:data:`Question`) is
a message that also tags its io call (the blocking part, :func:`verify_agreement`, runs on the io
pool), and one asked again later comes back through the actor's timers. It hands the actor the
documents it may now decide (:class:`Decide`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from golem_actors.actors.base import RuntimeActor
from golem_actors.actors.io import IoResult
from golem_actors.payments.adoption import unknown_activity_starts, why_not_ours
from golem_actors.payments.documents import yagna_id
from golem_actors.payments.ledger import PaymentLedger
from golem_actors.payments.terms import terms_of
from golem_actors.policy.journal import AgreementStatus
from golem_actors.yagna import YagnaClient
from golem_actors.yagna.errors import YagnaNotFoundError
from golem_actors.yagna.models import Agreement, Allocation, DebitNote, Invoice

__all__ = [
    "QUESTIONS",
    "Check",
    "Decide",
    "PaymentChecks",
    "Question",
    "Verified",
    "verify_agreement",
]

log = logging.getLogger(__name__)

_CHECKS = 5  # tries of one check when yagna does not answer (about half a minute in all)
_BILLABLE = frozenset({"Approved", "Terminated"})


@dataclass(frozen=True)
class Verified:
    """yagna's word on one agreement: ours with these activities, or why it is not ours."""

    agreement: Agreement | None
    activity_ids: tuple[str, ...] = ()
    why_not: str = ""


def verify_agreement(
    client: YagnaClient,
    agreement_id: str,
    *,
    since: dt.datetime,
    run_id: str | None,
    identity: str | None,
) -> Verified:
    """Blocking: fetch the agreement and, if it is this run's, list its activities.

    A 404 is an answer (not ours); any other error raises, so the caller can ask again.
    """
    try:
        agreement = client.market.get_agreement(agreement_id)
    except YagnaNotFoundError as exc:
        return Verified(None, why_not=f"yagna does not know it ({exc.status})")
    why = why_not_ours(agreement, since=since, run_id=run_id, identity=identity)
    if why is None and agreement.approved_date is None and agreement.state not in _BILLABLE:
        why = f"it was never approved (it is {agreement.state})"
    if why is not None:
        return Verified(None, why_not=why)
    return Verified(agreement, tuple(client.activity.activities(agreement_id)))


@dataclass(frozen=True)
class Check:
    """Ask yagna about ``agreement_id``; ``document`` is the one held until the answer (if any)."""

    agreement_id: str
    document: DebitNote | Invoice | None = None
    attempt: int = 1


@dataclass(frozen=True)
class _HoldOver:
    """The documents held for ``agreement_id`` waited long enough for its registration."""

    agreement_id: str


Question = Check | _HoldOver
#: Every question type, for the actor's handler of the ones told or asked again on a timer.
QUESTIONS: tuple[type[Question], ...] = (Check, _HoldOver)


@dataclass(frozen=True)
class Decide:
    """Documents the actor may now decide; ``resume``: it was waiting (busy) on this answer."""

    documents: tuple[DebitNote | Invoice, ...]
    resume: bool = False


class PaymentChecks:
    """The payment actor's documents of unknown agreements or activities, and its questions.

    ``ledger``, ``allocation`` and ``since`` are the actor's own: an agreement yagna says is ours
    is recorded in its books, and an agreement is ours only if made by the allocation's address
    at or after ``since``.
    """

    def __init__(
        self,
        actor: RuntimeActor,
        ledger: PaymentLedger,
        allocation: Allocation,
        *,
        since: dt.datetime,
        hold_s: float,
    ) -> None:
        self._actor = actor
        self._ledger = ledger
        self._allocation = allocation
        self._since = since
        self._hold_s = hold_s
        self._held: dict[str, list[DebitNote | Invoice]] = {}  # agreement id -> its documents
        self._checking: set[str] = set()  # unknown agreements being asked about
        self._checked_docs: set[str] = set()  # documents yagna was asked about once already

    def hold(self, document: DebitNote | Invoice) -> None:
        """Hold a document of an agreement not registered (yet): ``release`` or ask yagna."""
        agreement_id = document.agreement_id
        self._held.setdefault(agreement_id, []).append(document)
        self._actor.after(self._hold_s, _HoldOver(agreement_id), key=f"drop:{agreement_id}")

    def release(self, agreement_id: str) -> list[DebitNote | Invoice]:
        """The documents held for an agreement that is registered now."""
        return self._held.pop(agreement_id, [])

    def check_activity(self, document: DebitNote | Invoice) -> bool:
        """Ask yagna (once per document) about one naming an activity the books do not know.

        True if asked: the actor waits for the :class:`Decide` answer before deciding anything
        else, and then decides the document whatever yagna said.
        """
        if not self._names_unknown_activity(document):
            return False
        self._checked_docs.add(yagna_id(document))
        self._actor.actor_ref.tell(Check(document.agreement_id, document))
        return True

    def ask(self, question: Question) -> None:
        """Ask yagna now; the call's result comes back to the actor as ``io_checks``."""
        match question:
            case _HoldOver(agreement_id=agreement_id):
                if agreement_id in self._held and agreement_id not in self._checking:
                    self._checking.add(agreement_id)
                    self._actor.actor_ref.tell(Check(agreement_id))
            case Check():
                rt = self._actor.rt
                self._actor.io(
                    ("checks", question),
                    verify_agreement,
                    rt.client,
                    question.agreement_id,
                    since=self._since,
                    run_id=rt.journal.state.run_id if rt.journal is not None else None,
                    identity=self._allocation.address,
                )

    def answer(self, result: IoResult) -> Decide | None:
        """yagna's answer to a check: what to decide now, or None while it is asked again."""
        check = result.tag_as(Check)
        if not result.ok:
            if check.attempt < _CHECKS:
                retry = Check(check.agreement_id, check.document, check.attempt + 1)
                delay = min(10.0, 2.0**check.attempt)
                self._actor.after(delay, retry, key=_key(check))
                return None
            log.warning("cannot ask yagna about agreement %s: %s", check.agreement_id, result.error)
            return self._checked(check, found=False, why=str(result.error))
        verified = result.value_as(Verified)
        if verified.agreement is None:
            return self._checked(check, found=False, why=verified.why_not)
        found = self._record(verified.agreement, verified.activity_ids)
        return self._checked(check, found=found, why="")

    def _checked(self, check: Check, *, found: bool, why: str) -> Decide:
        if check.document is not None:  # an unknown activity: decide it now, whatever yagna said
            return Decide((check.document,), resume=True)
        self._checking.discard(check.agreement_id)
        documents = self._held.pop(check.agreement_id, [])
        if found:
            self._checked_docs.update(yagna_id(document) for document in documents)
            return Decide(tuple(documents))
        for document in documents:
            log.warning(
                "ignoring %s of unknown agreement %s: %s",
                type(document).__name__,
                check.agreement_id,
                why,
            )
        return Decide(())

    def _record(self, agreement: Agreement, activity_ids: tuple[str, ...]) -> bool:
        """Record what yagna says is ours, journaled like a registration; False if unusable."""
        agreement_id = agreement.agreement_id
        now = dt.datetime.now(dt.UTC)
        approved = agreement.approved_date or now
        journal = self._actor.rt.journal
        if not self._ledger.has_agreement(agreement_id):
            try:
                self._ledger.record_agreement(agreement_id, terms_of(agreement), approved)
            except ValueError as exc:
                log.error("agreement %s has terms we cannot check: %s", agreement_id, exc)  # noqa: TRY400
                return False
            log.warning("adopting agreement %s: ours in yagna, never registered", agreement_id)
            if journal is not None:
                journal.agreement(
                    agreement_id, AgreementStatus.APPROVED, agreement.provider_id or ""
                )
        known = {a for a in activity_ids if self._ledger.has_activity(a)}
        for activity_id, at in unknown_activity_starts(agreement, activity_ids, known, now).items():
            try:
                self._ledger.record_activity(agreement_id, activity_id, at)
            except (KeyError, ValueError) as exc:
                log.warning("recording activity %s: %s", activity_id, exc)
                continue
            log.warning("adopting activity %s of %s, never registered", activity_id, agreement_id)
            if journal is not None:
                journal.activity(activity_id, agreement_id, at)
        return True

    def _names_unknown_activity(self, document: DebitNote | Invoice) -> bool:
        if yagna_id(document) in self._checked_docs:
            return False
        if isinstance(document, DebitNote):
            return not self._ledger.has_activity(document.activity_id)
        return any(not self._ledger.has_activity(a) for a in document.activity_ids)


def _key(check: Check) -> str:
    document = check.document
    if document is None:
        return f"check:{check.agreement_id}"
    return f"check:{check.agreement_id}:{yagna_id(document)}"
