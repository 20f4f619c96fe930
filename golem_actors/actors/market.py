"""MarketActor: publishes demands, scores offers, keeps negotiated drafts ready, hands them out.

Every offer that passes the scorer is countered at once, so a provider's signed-ready draft is
waiting in the pool before anyone needs it: replacing a failed instance then costs one agreement,
not a negotiation. Clusters with the same demand share one pool (``policy.offer_pool``); each
request names providers to exclude (the cluster's blacklist) and a group (the cluster): among
the rest, the provider hosting the fewest of the group's live instances wins, then the best
score, so instances spread out and a restart lands on a different provider. A draft makes one
agreement, so when requests outnumber the drafts left, several subscriptions are published at
once and each yields one more draft per provider. Time is read from the runtime's scheduler, so
patience and the timers that re-check it share one clock (a test's manual one included).

A demand built with ``renew`` is published anew (a fresh expiration) a margin before it expires
(``policy.demand.renewal_times``), so a service running for days still finds offers for its
restarts. The old subscriptions keep serving their drafts and finishing their negotiations until
the old expiration, then they are dropped.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field, replace

import pykka

from golem_actors.actors.base import RuntimeActor, handles
from golem_actors.actors.io import IoResult
from golem_actors.actors.market_messages import (
    CancelRequest,
    DemandKey,
    ProposalGranted,
    ProviderFailed,
    PublishDemand,
    Refresh,
    ReleaseProvider,
    Renew,
    Repoll,
    RequestProposal,
    Resubscribe,
    Retire,
    Serve,
)
from golem_actors.actors.runtime import Runtime
from golem_actors.events import (
    DemandPublished,
    OfferReceived,
    ProposalCountered,
    ProposalRejected,
)
from golem_actors.policy.demand import renewal_times
from golem_actors.policy.offer_pool import (
    NEGOTIATION_PATIENCE_S,
    Candidate,
    OfferPool,
    Subscription,
)
from golem_actors.yagna import YagnaNotFoundError
from golem_actors.yagna.models import Proposal, ProposalEvent, ProposalRejectedEvent

__all__ = [
    "CancelRequest",
    "DemandKey",
    "MarketActor",
    "ProposalGranted",
    "ProviderFailed",
    "PublishDemand",
    "ReleaseProvider",
    "RequestProposal",
]

log = logging.getLogger(__name__)

#: Live subscriptions per demand at most: each costs yagna one offer round per provider.
MAX_SUBSCRIPTIONS = 8
#: New subscriptions are published at most this often (a burst of requests is served in rounds).
REFRESH_INTERVAL_S = 1.0


@dataclass
class _Demand:
    spec: PublishDemand
    pool: OfferPool = field(default_factory=OfferPool)
    waiting: deque[RequestProposal] = field(default_factory=deque)
    publishing: int = 0  # subscriptions asked of yagna, not yet answered
    refreshed_at: float = -1e9
    generation: int = 0  # renewals so far: a subscription answered for an older one is stale


class MarketActor(RuntimeActor):
    role = "market"

    def __init__(self, rt: Runtime, *, poll_s: float = 20.0) -> None:
        super().__init__(rt, None)
        self._demands: dict[DemandKey, _Demand] = {}
        self._load: dict[str, dict[str, int]] = {}  # group -> provider -> instances granted
        self._poll_s = poll_s

    # -- demands ----------------------------------------------------------------------------

    @handles(PublishDemand)
    def on_publish(self, message: PublishDemand) -> None:
        if message.key in self._demands:
            return
        self._demands[message.key] = _Demand(message)
        self._subscribe(message.key)
        self._plan_renewal(message)

    def _subscribe(self, key: DemandKey) -> None:
        demand = self._demands[key]
        demand.publishing += 1
        self.io(
            ("subscribed", key, demand.generation),
            self.rt.client.market.subscribe_demand,
            demand.spec.properties,
            demand.spec.constraints,
        )

    def io_subscribed(self, result: IoResult) -> None:
        _, key, generation = result.tag
        demand = self._demands.get(key)
        if demand is None:
            return
        demand.publishing -= 1
        if not result.ok:
            log.warning("publishing the demand failed (%s); retrying", result.error)
            self.after(2.0, Resubscribe(key), key=f"resubscribe:{key}")
            return
        if generation != demand.generation:  # made with the expiration a renewal replaced
            self.io("unsubscribed", self.rt.client.market.unsubscribe_demand, result.value)
            self._subscribe(key)
            return
        now = self.rt.scheduler.now()
        demand.pool.subscriptions[result.value] = Subscription(result.value, now)
        self.rt.emit(DemandPublished(demand_id=result.value, key=str(key)))
        self._poll(key, result.value)

    def _plan_renewal(self, spec: PublishDemand) -> None:
        if spec.renew is not None and spec.lifetime_s:
            renew_in, _ = renewal_times(spec.lifetime_s)
            self.after(renew_in, Renew(spec.key), key=f"renew:{spec.key}")

    @handles(Renew)
    def on_renew(self, message: Renew) -> None:
        """Publish the demand with a fresh expiration; the old subscriptions retire when the old
        expiration comes, serving their drafts (and negotiations under way) until then."""
        key, demand = message.key, self._demands.get(message.key)
        if demand is None or demand.spec.renew is None or not demand.spec.lifetime_s:
            return
        _, retire_in = renewal_times(demand.spec.lifetime_s)
        try:
            demand.spec = replace(demand.spec.renew(), key=key)
        except Exception as exc:  # noqa: BLE001 - e.g. its manifest expired meanwhile
            log.warning("demand %s cannot be renewed (%s): no offers once it expires", key, exc)
            return
        demand.generation += 1
        retiring = frozenset(demand.pool.subscriptions)
        self.after(retire_in, Retire(key, retiring), key=f"retire:{key}:{demand.generation}")
        log.info(
            "demand %s renewed; %d old subscription(s) retire in %.0f s",
            key,
            len(retiring),
            retire_in,
        )
        self._subscribe(key)
        self._plan_renewal(demand.spec)

    @handles(Retire)
    def on_retire(self, message: Retire) -> None:
        demand = self._demands.get(message.key)
        if demand is None:
            return
        for demand_id in message.demand_ids & demand.pool.subscriptions.keys():
            del demand.pool.subscriptions[demand_id]
            self.io("unsubscribed", self.rt.client.market.unsubscribe_demand, demand_id)
        if not demand.pool.subscriptions and not demand.publishing:
            self._subscribe(message.key)

    @handles(Resubscribe)
    def on_resubscribe(self, message: Resubscribe) -> None:
        demand = self._demands.get(message.key)
        if demand is not None and not demand.pool.subscriptions and not demand.publishing:
            self._subscribe(message.key)
        elif demand is not None:
            self._refresh(demand)

    @handles(Repoll)
    def on_repoll(self, message: Repoll) -> None:
        self._poll(message.key, message.demand_id)

    @handles(Serve)
    def on_serve(self, message: Serve) -> None:
        demand = self._demands.get(message.key)
        if demand is not None:
            self._serve(demand)

    def _poll(self, key: DemandKey, demand_id: str) -> None:
        demand = self._demands.get(key)
        sub = demand.pool.subscriptions.get(demand_id) if demand else None
        if sub is None or sub.polling:
            return
        sub.polling = True
        self.io(
            ("events", key, demand_id),
            self.rt.client.market.demand_events,
            demand_id,
            timeout=self._poll_s,
        )

    def io_events(self, result: IoResult) -> None:
        _, key, demand_id = result.tag
        demand = self._demands.get(key)
        sub = demand.pool.subscriptions.get(demand_id) if demand else None
        if demand is None or sub is None:
            return  # a poll of a subscription that was dropped
        sub.polling = False
        if not result.ok:
            if isinstance(result.error, YagnaNotFoundError):  # expired: publish again
                log.info("a subscription of demand %s expired; publishing again", key)
                del demand.pool.subscriptions[demand_id]
                if not demand.pool.subscriptions and not demand.publishing:
                    self._subscribe(key)
            else:
                log.warning("polling offers: %s", result.error)
                self.after(1.0, Repoll(key, demand_id), key=f"repoll:{demand_id}")
            return
        for event in result.value:
            if isinstance(event, ProposalEvent):
                self._on_proposal(demand, sub, event.proposal)
            elif isinstance(event, ProposalRejectedEvent):
                self._on_rejected(sub, event)
        self._serve(demand)
        self._poll(key, demand_id)

    def _on_proposal(self, demand: _Demand, sub: Subscription, proposal: Proposal) -> None:
        provider = proposal.issuer_id
        name = str(proposal.properties.get("golem.node.id.name", provider[:10]))
        if proposal.state == "Initial":
            scored = demand.spec.scorer(proposal.properties, provider)
            self.rt.emit(
                OfferReceived(
                    provider_id=provider,
                    provider_name=name,
                    score=scored if isinstance(scored, float | int) else None,
                )
            )
            if isinstance(scored, str):
                self._reject(sub.demand_id, proposal, scored)
                return
            candidate = Candidate(provider, name, proposal, float(scored))
            sub.candidates[provider] = candidate
            self._counter(demand, sub, candidate)
            return
        # A draft: the provider's answer to our counter.
        known = sub.candidates.get(provider)
        if known is None or proposal.prev_proposal_id != known.our_counter:
            return
        problem = demand.spec.check(
            known.our_properties, proposal.properties, known.initial.properties
        )
        if problem is not None:
            self._reject(sub.demand_id, proposal, problem)
            sub.candidates.pop(provider, None)
            return
        known.draft = proposal

    def _counter(self, demand: _Demand, sub: Subscription, candidate: Candidate) -> None:
        ours = demand.spec.counter(candidate.initial.properties)
        if isinstance(ours, str):
            self._reject(sub.demand_id, candidate.initial, ours)
            sub.candidates.pop(candidate.provider_id, None)
            return
        candidate.our_counter = None
        candidate.our_properties = ours
        candidate.draft = None
        candidate.countered_at = self.rt.scheduler.now()
        self.io(
            ("countered", demand.spec.key, candidate.provider_id, sub.demand_id),
            self.rt.client.market.counter_proposal_demand,
            sub.demand_id,
            candidate.initial.proposal_id,
            ours,
            demand.spec.constraints,
        )

    def io_countered(self, result: IoResult) -> None:
        _, key, provider, demand_id = result.tag
        demand = self._demands.get(key)
        candidate = demand.pool.find(demand_id, provider) if demand else None
        if candidate is None:
            return
        if not result.ok:
            log.info("countering %s failed: %s", candidate.provider_name, result.error)
            assert demand is not None
            demand.pool.subscriptions[demand_id].candidates.pop(provider, None)
            return
        candidate.our_counter = result.value
        self.rt.emit(ProposalCountered(provider_id=provider, proposal_id=result.value))

    def _reject(self, demand_id: str, proposal: Proposal, reason: str) -> None:
        self.rt.emit(ProposalRejected(provider_id=proposal.issuer_id, reason=reason))
        self.io(
            "rejected",
            self.rt.client.market.reject_proposal_demand,
            demand_id,
            proposal.proposal_id,
            reason,
        )

    def io_rejected(self, result: IoResult) -> None:
        if not result.ok:
            log.debug("rejecting a proposal: %s", result.error)

    def _on_rejected(self, sub: Subscription, event: ProposalRejectedEvent) -> None:
        for provider, candidate in list(sub.candidates.items()):
            if event.proposal_id in (candidate.our_counter, candidate.initial.proposal_id):
                sub.candidates.pop(provider)
                reason = str((event.reason or {}).get("message", "rejected by the provider"))
                self.rt.emit(ProposalRejected(provider_id=provider, reason=reason))

    # -- requests ---------------------------------------------------------------------------

    @handles(RequestProposal)
    def on_request(self, request: RequestProposal) -> None:
        demand = self._demands.get(request.key)
        if demand is None:
            raise ValueError(f"no demand published under {request.key!r}")
        demand.waiting.append(request)
        self._serve(demand)

    @handles(CancelRequest)
    def on_cancel(self, message: CancelRequest) -> None:
        demand = self._demands.get(message.key)
        if demand is not None:
            demand.waiting = deque(r for r in demand.waiting if r.request_id != message.request_id)

    @handles(ReleaseProvider)
    def on_release(self, message: ReleaseProvider) -> None:
        group = self._load.get(message.group, {})
        if group.get(message.provider_id, 0) > 0:
            group[message.provider_id] -= 1

    @handles(ProviderFailed)
    def on_provider_failed(self, message: ProviderFailed) -> None:
        for demand in self._demands.values():
            demand.pool.penalize(message.provider_id)

    def _serve(self, demand: _Demand) -> None:
        kept: deque[RequestProposal] = deque()
        wait = False
        now = self.rt.scheduler.now()
        while demand.waiting:
            request = demand.waiting.popleft()
            load = self._load.get(request.group, {})
            candidate, patience = demand.pool.pick(exclude=request.exclude, load=load, now=now)
            wait = wait or patience
            if candidate is None:
                kept.append(request)
                continue
            try:
                request.reply_to.tell(
                    ProposalGranted(
                        request.request_id,
                        candidate.draft,
                        candidate.provider_id,
                        candidate.provider_name,
                        candidate.initial.properties,
                    )
                )
            except pykka.ActorDeadError:
                continue  # the requester is gone; the draft stays for the next one
            group = self._load.setdefault(request.group, {})
            group[candidate.provider_id] = group.get(candidate.provider_id, 0) + 1
            candidate.draft = None
            candidate.consumed = True
        demand.waiting = kept
        if wait:
            key = demand.spec.key
            self.after(NEGOTIATION_PATIENCE_S, Serve(key), key=f"serve:{key}")
        self._drop_spent(demand, now)
        if kept:
            self._refresh(demand)

    @staticmethod
    def _blocked(demand: _Demand) -> frozenset[str]:
        """Providers every waiting request excludes: their drafts serve none of them."""
        if not demand.waiting:
            return frozenset()
        return frozenset.intersection(*(r.exclude for r in demand.waiting))

    def _drop_spent(self, demand: _Demand, now: float) -> None:
        spent = demand.pool.spent_subscriptions(now=now, blocked=self._blocked(demand))
        for demand_id in spent:
            del demand.pool.subscriptions[demand_id]
            self.io("unsubscribed", self.rt.client.market.unsubscribe_demand, demand_id)

    def _refresh(self, demand: _Demand) -> None:
        """Publish the demand again (several times for many waiting requests): new drafts."""
        now = self.rt.scheduler.now()
        key = demand.spec.key
        if now - demand.refreshed_at < REFRESH_INTERVAL_S:
            self.after(REFRESH_INTERVAL_S, Refresh(key), key=f"refresh:{key}")
            return
        self._drop_spent(demand, now)
        wanted = demand.pool.subscriptions_wanted(
            len(demand.waiting),
            now=now,
            pending=demand.publishing,
            cap=MAX_SUBSCRIPTIONS,
            blocked=self._blocked(demand),
        )
        if wanted == 0 and not demand.pool.subscriptions and not demand.publishing:
            wanted = 1  # everything dropped: listen again
        if wanted == 0:
            # Drafts are on their way; if they never come (a provider may never answer), look
            # again once their negotiation is past its patience.
            self.after(REFRESH_INTERVAL_S, Refresh(key), key=f"refresh:{key}")
            return
        demand.refreshed_at = now
        for _ in range(wanted):
            self._subscribe(key)

    def io_unsubscribed(self, result: IoResult) -> None:
        if not result.ok:
            log.debug("unsubscribing an old demand: %s", result.error)

    @handles(Refresh)
    def on_refresh(self, message: Refresh) -> None:
        demand = self._demands.get(message.key)
        if demand is not None and demand.waiting:
            self._refresh(demand)

    def stopping(self) -> None:
        for demand in self._demands.values():
            for demand_id in demand.pool.subscriptions:
                try:
                    self.rt.client.market.unsubscribe_demand(demand_id)
                except Exception as exc:  # noqa: BLE001 - best effort on the way out
                    log.debug("unsubscribing demand: %s", exc)
