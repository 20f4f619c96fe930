"""The provider on the market: publish its offer, answer demands, pass agreements on.

Demands reach the offer as proposals; each gets a counter-proposal or a rejection naming why
(``offer.decide``, pure). An agreement a requestor proposes arrives on the same event stream and
goes to ``Agreements`` to approve, in the pool: approving blocks, the stream must not.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from golem_actors.localnet.offer import decide
from golem_actors.localnet.provider.agreements import Agreements
from golem_actors.localnet.provider.shared import POLL, Context, Ledger
from golem_actors.yagna import YagnaClient, YagnaError, YagnaNotFoundError
from golem_actors.yagna.models import AgreementEvent, ProposalEvent

__all__ = ["Market"]

log = logging.getLogger(__name__)


class Market:
    """The offer subscription and negotiation; the ledger holds the offer id."""

    def __init__(self, ctx: Context, ledger: Ledger, agreements: Agreements) -> None:
        self._ctx = ctx
        self._ledger = ledger
        self._agreements = agreements

    def publish(self, yagna: YagnaClient) -> None:
        """Subscribe the offer, after dropping any an earlier run of this provider left."""
        self._drop_stale_offers(yagna)
        self._ledger.offer_id = self._subscribe(yagna)

    def withdraw(self, yagna: YagnaClient) -> None:
        offer_id = self._ledger.offer_id
        if offer_id:
            try:
                yagna.market.unsubscribe_offer(offer_id)
            except YagnaError as exc:
                log.warning("%s: unsubscribing the offer failed: %s", self._ctx.name, exc)

    def run(self) -> None:
        """The loop: answer proposals, pass agreements on, re-publish an expired offer."""
        with self._ctx.yagna() as yagna:
            while not self._ctx.stop.is_set():
                if self._ctx.hung():
                    continue
                try:
                    events = yagna.market.offer_events(self._offer(), timeout=POLL)
                except YagnaNotFoundError:  # the subscription expired: publish again
                    self._ledger.offer_id = self._subscribe(yagna)
                    self._ctx.status.write()
                    continue
                for event in events:
                    if isinstance(event, ProposalEvent):
                        self._answer(yagna, event)
                    elif isinstance(event, AgreementEvent):
                        self._ctx.submit(self._agreements.approve, event.agreement)

    def _drop_stale_offers(self, yagna: YagnaClient) -> None:
        """An earlier process of this provider that was killed left its offer subscribed:
        demands would still match it and wait for a counter-proposal nobody sends. Like
        ya-provider, unsubscribe every offer of this identity before publishing ours."""
        try:
            for offer in yagna.market.offers():
                if offer.offer_id:
                    yagna.market.unsubscribe_offer(offer.offer_id)
        except YagnaError as exc:
            log.warning("%s: dropping stale offers failed: %s", self._ctx.name, exc)

    def _subscribe(self, yagna: YagnaClient) -> str:
        spec = self._ctx.spec
        props = spec.offer_properties(self._ctx.config.node_id)
        return yagna.market.subscribe_offer(props, spec.offer_constraints())

    def _offer(self) -> str:
        offer_id = self._ledger.offer_id
        if offer_id is None:
            raise RuntimeError("the offer is not published yet")
        return offer_id

    def _answer(self, yagna: YagnaClient, event: ProposalEvent) -> None:
        """Counter a demand this provider can serve, reject any other, naming why."""
        proposal = event.proposal
        if proposal.state not in {"Draft", "Initial"}:
            return
        self._ctx.crash_if("proposal")
        offer_id = self._offer()
        spec = self._ctx.spec
        if self._ctx.faults.read().reject_proposals:
            decision_reason = "this provider rejects all proposals (fault injected)"
            accept = False
            props: dict[str, Any] = {}
        else:
            decision = decide(
                spec,
                self._ctx.config.node_id,
                proposal.properties,
                proposal.constraints,
                now_ms=time.time() * 1000,
            )
            accept, decision_reason, props = (
                decision.accept,
                decision.reason,
                dict(decision.properties),
            )
        try:
            if accept:
                yagna.market.counter_proposal_offer(
                    offer_id, proposal.proposal_id, props, spec.offer_constraints()
                )
            else:
                log.info("%s: rejecting proposal: %s", self._ctx.name, decision_reason)
                yagna.market.reject_proposal_offer(offer_id, proposal.proposal_id, decision_reason)
        except YagnaError as exc:
            log.info("%s: answering a proposal failed: %s", self._ctx.name, exc)
