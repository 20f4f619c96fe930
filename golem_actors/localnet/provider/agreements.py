"""The provider's agreements: approve them (within capacity), notice their end, close them.

An agreement reaches the provider as an ``AgreementEvent`` on its offer (``Market`` hands it here)
and ends either by the requestor's termination, seen on ``/market-api/v1/agreementEvents``, or by
the provider (a debit note left unaccepted, shutdown, an injected fault). Closing one is the same
either way: its activities stop, the termination goes out if the provider ends it, and the
invoice follows.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from golem_actors.localnet.offer import agreement_problem
from golem_actors.localnet.provider.activities import Activities
from golem_actors.localnet.provider.billing import Billing
from golem_actors.localnet.provider.shared import POLL, Context, Ledger
from golem_actors.yagna import YagnaClient, YagnaError
from golem_actors.yagna.models import Agreement, AgreementOperationEvent, AgreementTerminatedEvent

__all__ = ["Agreements"]

log = logging.getLogger(__name__)


class Agreements:
    """Approval and closing of agreements; the ledger holds the open ones."""

    def __init__(
        self, ctx: Context, ledger: Ledger, activities: Activities, billing: Billing
    ) -> None:
        self._ctx = ctx
        self._ledger = ledger
        self._activities = activities
        self._billing = billing

    def approve(self, agreement: Agreement) -> None:
        """Approve, or reject when full or its demand expired (blocks up to 10 s: run it in the
        pool)."""
        if self._ctx.stop.is_set():
            return
        self._ctx.crash_if("agreement")
        agreement_id = agreement.agreement_id
        with self._ctx.yagna() as yagna:
            full = self._ledger.agreement_count() >= self._ctx.spec.max_agreements
            refuse = agreement_problem(agreement.demand.properties, now_ms=time.time() * 1000)
            if full or self._ctx.faults.read().reject_proposals or refuse:
                yagna.market.reject_agreement(agreement_id, refuse or "no capacity")
                return
            book = self._billing.open_book(agreement)
            self._ledger.open(agreement, book)
            try:
                yagna.market.approve_agreement(agreement_id, timeout=10)
            except YagnaError as exc:
                log.info("%s: approving %s failed: %s", self._ctx.name, agreement_id, exc)
                self._ledger.close(agreement_id)
                return
            book.approved_at = time.monotonic()
            self._ctx.status.write()
            log.info("%s: approved agreement %s", self._ctx.name, agreement_id)

    def run(self) -> None:
        """The loop: close the agreements the requestor terminates."""
        self._ctx.follow(self._events, self._on_event)

    @staticmethod
    def _events(yagna: YagnaClient, after: dt.datetime) -> list[AgreementOperationEvent]:
        return yagna.market.agreement_events(after=after, timeout=POLL)

    def _on_event(self, event: AgreementOperationEvent) -> None:
        if (
            isinstance(event, AgreementTerminatedEvent)
            and self._ledger.book(event.agreement_id) is not None
        ):
            self._ctx.submit(self.finish, event.agreement_id, "terminated by the requestor")

    def finish(self, agreement_id: str, why: str, *, terminate: bool = False) -> None:
        """``end`` with a client of its own (for the pool)."""
        with self._ctx.yagna() as yagna:
            self.end(yagna, agreement_id, why, terminate=terminate)

    def end(self, yagna: YagnaClient, agreement_id: str, why: str, *, terminate: bool) -> None:
        """Stop the agreement's activities, terminate it if we end it, and send the invoice."""
        book = self._ledger.close(agreement_id)
        if book is None:
            return  # already ended (both sides of one daemon see each termination event)
        now = time.monotonic()
        self._activities.stop_agreement(book, now)
        book.end_all(now)
        if terminate:
            try:
                yagna.market.terminate_agreement(agreement_id, why)
            except YagnaError as exc:
                log.info("%s: terminating %s: %s", self._ctx.name, agreement_id, exc)
        self._billing.invoice(yagna, book, now, why)
        self._ctx.status.write()

    def end_all(self, yagna: YagnaClient, why: str) -> None:
        """Terminate and invoice every open agreement (the provider is shutting down)."""
        for agreement_id, _ in self._ledger.books():
            self.end(yagna, agreement_id, why, terminate=True)
