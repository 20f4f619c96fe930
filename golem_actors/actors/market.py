"""MarketActor: publishes demands, scores offers, keeps negotiated drafts ready, hands them out.

Every offer that passes the scorer is countered at once, so a provider's signed-ready draft is
waiting in the pool before anyone needs it: replacing a failed instance then costs one agreement,
not a negotiation. Clusters with the same demand share one subscription and one pool; each
request names providers to exclude (the cluster's blacklist) and a group (the cluster): among
the rest, the provider hosting the fewest of the group's live instances wins, then the best
score, so instances spread out and a restart lands on a different provider.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pykka

from golem_actors.actors.base import RuntimeActor, handles
from golem_actors.actors.io import IoResult
from golem_actors.actors.runtime import Runtime
from golem_actors.events import OfferReceived, ProposalRejected
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

DemandKey = str
#: How long a better-ranked provider's negotiation is waited for before settling for another.
NEGOTIATION_PATIENCE_S = 2.0
#: Scores an offer (properties, provider id): a float (higher is better) or a reason to reject.
Scorer = Callable[[Mapping[str, Any], str], "float | str"]
#: Builds our counter-proposal to an offer, or returns a reason to reject it.
Counter = Callable[[Mapping[str, Any]], "dict[str, Any] | str"]
#: Checks a provider's draft (ours, theirs, their offer): a reason to refuse it, or None.
Check = Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]], "str | None"]


@dataclass(frozen=True)
class PublishDemand:
    key: DemandKey
    properties: dict[str, Any]
    constraints: str
    scorer: Scorer
    counter: Counter
    check: Check


@dataclass(frozen=True)
class RequestProposal:
    key: DemandKey
    request_id: int
    reply_to: pykka.ActorRef[Any]
    exclude: frozenset[str] = frozenset()
    group: str = ""  # instances of one group spread over providers


@dataclass(frozen=True)
class ReleaseProvider:
    """An instance of ``group`` no longer runs on ``provider_id``."""

    group: str
    provider_id: str


@dataclass(frozen=True)
class CancelRequest:
    key: DemandKey
    request_id: int


@dataclass(frozen=True)
class ProviderFailed:
    """A provider failed an instance: its offers sink in the ranking (re-scoring)."""

    provider_id: str


@dataclass(frozen=True)
class ProposalGranted:
    request_id: int
    proposal: Proposal  # the provider's draft: create the agreement from it
    provider_id: str
    provider_name: str
    offer: Mapping[str, Any]


@dataclass(frozen=True)
class _Resubscribe:
    key: DemandKey


@dataclass(frozen=True)
class _Repoll:
    key: DemandKey


@dataclass(frozen=True)
class _Refresh:
    key: DemandKey


@dataclass(frozen=True)
class _Serve:
    key: DemandKey


@dataclass
class _Candidate:
    provider_id: str
    provider_name: str
    initial: Proposal
    score: float
    our_counter: str | None = None
    our_properties: Mapping[str, Any] = field(default_factory=dict)
    draft: Proposal | None = None
    consumed: bool = False  # its draft made an agreement
    countered_at: float = 0.0


@dataclass
class _Demand:
    spec: PublishDemand
    demand_id: str | None = None
    candidates: dict[str, _Candidate] = field(default_factory=dict)
    waiting: deque[RequestProposal] = field(default_factory=deque)
    since: dict[int, float] = field(default_factory=dict)
    penalties: dict[str, float] = field(default_factory=dict)
    polling: bool = False
    refreshing: bool = False
    refreshed_at: float = -1e9


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

    def _subscribe(self, key: DemandKey) -> None:
        spec = self._demands[key].spec
        self.io(
            ("subscribed", key),
            self.rt.client.market.subscribe_demand,
            spec.properties,
            spec.constraints,
        )

    def io_subscribed(self, result: IoResult) -> None:
        key = result.tag[1]
        demand = self._demands.get(key)
        if demand is None:
            return
        if not result.ok:
            log.warning("publishing the demand failed (%s); retrying", result.error)
            self.after(2.0, _Resubscribe(key), key=f"resubscribe:{key}")
            return
        demand.demand_id = result.value
        demand.candidates.clear()
        demand.refreshing = False
        demand.polling = False  # a poll of the old subscription may still be out: ignore it
        self._poll(key)

    @handles(_Resubscribe)
    def on_resubscribe(self, message: _Resubscribe) -> None:
        self._subscribe(message.key)

    @handles(_Repoll)
    def on_repoll(self, message: _Repoll) -> None:
        self._poll(message.key)

    @handles(_Serve)
    def on_serve(self, message: _Serve) -> None:
        demand = self._demands.get(message.key)
        if demand is not None:
            self._serve(demand)

    def _poll(self, key: DemandKey) -> None:
        demand = self._demands[key]
        if demand.polling or demand.demand_id is None:
            return
        demand.polling = True
        self.io(
            ("events", key, demand.demand_id),
            self.rt.client.market.demand_events,
            demand.demand_id,
            timeout=self._poll_s,
        )

    def io_events(self, result: IoResult) -> None:
        _, key, demand_id = result.tag
        demand = self._demands.get(key)
        if demand is None or demand_id != demand.demand_id:
            return  # a poll of a subscription that was replaced
        demand.polling = False
        if not result.ok:
            if isinstance(result.error, YagnaNotFoundError):  # expired: publish again
                log.info("demand %s expired; publishing it again", key)
                demand.demand_id = None
                self._subscribe(key)
            else:
                log.warning("polling offers: %s", result.error)
                self.after(1.0, _Repoll(key), key=f"repoll:{key}")
            return
        for event in result.value:
            if isinstance(event, ProposalEvent):
                self._on_proposal(demand, event.proposal)
            elif isinstance(event, ProposalRejectedEvent):
                self._on_rejected(demand, event)
        self._serve(demand)
        self._poll(key)

    def _on_proposal(self, demand: _Demand, proposal: Proposal) -> None:
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
                self._reject(demand, proposal, scored)
                return
            candidate = _Candidate(provider, name, proposal, float(scored))
            demand.candidates[provider] = candidate
            self._counter(demand, candidate)
            return
        # A draft: the provider's answer to our counter.
        known = demand.candidates.get(provider)
        if known is None or proposal.prev_proposal_id != known.our_counter:
            return
        problem = demand.spec.check(
            known.our_properties, proposal.properties, known.initial.properties
        )
        if problem is not None:
            self._reject(demand, proposal, problem)
            demand.candidates.pop(provider, None)
            return
        known.draft = proposal

    def _counter(self, demand: _Demand, candidate: _Candidate) -> None:
        ours = demand.spec.counter(candidate.initial.properties)
        if isinstance(ours, str):
            self._reject(demand, candidate.initial, ours)
            demand.candidates.pop(candidate.provider_id, None)
            return
        candidate.our_counter = None
        candidate.our_properties = ours
        candidate.draft = None
        candidate.countered_at = time.monotonic()
        self.io(
            ("countered", demand.spec.key, candidate.provider_id, demand.demand_id),
            self.rt.client.market.counter_proposal_demand,
            demand.demand_id,
            candidate.initial.proposal_id,
            ours,
            demand.spec.constraints,
        )

    def io_countered(self, result: IoResult) -> None:
        _, key, provider, demand_id = result.tag
        demand = self._demands.get(key)
        candidate = demand.candidates.get(provider) if demand else None
        if candidate is None or demand is None or demand.demand_id != demand_id:
            return
        if not result.ok:
            log.info("countering %s failed: %s", candidate.provider_name, result.error)
            assert demand is not None
            demand.candidates.pop(provider, None)
            return
        candidate.our_counter = result.value

    def _reject(self, demand: _Demand, proposal: Proposal, reason: str) -> None:
        self.rt.emit(ProposalRejected(provider_id=proposal.issuer_id, reason=reason))
        if demand.demand_id is not None:
            self.io(
                "rejected",
                self.rt.client.market.reject_proposal_demand,
                demand.demand_id,
                proposal.proposal_id,
                reason,
            )

    def io_rejected(self, result: IoResult) -> None:
        if not result.ok:
            log.debug("rejecting a proposal: %s", result.error)

    def _on_rejected(self, demand: _Demand, event: ProposalRejectedEvent) -> None:
        for provider, candidate in list(demand.candidates.items()):
            if event.proposal_id in (candidate.our_counter, candidate.initial.proposal_id):
                demand.candidates.pop(provider)
                reason = str((event.reason or {}).get("message", "rejected by the provider"))
                self.rt.emit(ProposalRejected(provider_id=provider, reason=reason))

    # -- requests ---------------------------------------------------------------------------

    @handles(RequestProposal)
    def on_request(self, request: RequestProposal) -> None:
        demand = self._demands.get(request.key)
        if demand is None:
            raise ValueError(f"no demand published under {request.key!r}")
        demand.waiting.append(request)
        demand.since[request.request_id] = time.monotonic()
        self._serve(demand)

    @handles(CancelRequest)
    def on_cancel(self, message: CancelRequest) -> None:
        demand = self._demands.get(message.key)
        if demand is not None:
            demand.waiting = deque(r for r in demand.waiting if r.request_id != message.request_id)
            demand.since.pop(message.request_id, None)

    @handles(ReleaseProvider)
    def on_release(self, message: ReleaseProvider) -> None:
        group = self._load.get(message.group, {})
        if group.get(message.provider_id, 0) > 0:
            group[message.provider_id] -= 1

    @handles(ProviderFailed)
    def on_provider_failed(self, message: ProviderFailed) -> None:
        for demand in self._demands.values():
            demand.penalties[message.provider_id] = (
                demand.penalties.get(message.provider_id, 1.0) * 0.5
            )

    def _serve(self, demand: _Demand) -> None:
        kept: deque[RequestProposal] = deque()
        while demand.waiting:
            request = demand.waiting.popleft()
            candidate = self._best(demand, request)
            if candidate is None:
                kept.append(request)
                continue
            assert candidate.draft is not None
            draft = candidate.draft
            demand.since.pop(request.request_id, None)
            try:
                request.reply_to.tell(
                    ProposalGranted(
                        request.request_id,
                        draft,
                        candidate.provider_id,
                        candidate.provider_name,
                        candidate.initial.properties,
                    )
                )
            except pykka.ActorDeadError:
                continue  # the requester is gone; the draft stays for the next one
            group = self._load.setdefault(request.group, {})
            group[candidate.provider_id] = group.get(candidate.provider_id, 0) + 1
            # A draft makes one agreement, and yagna never lets a proposal chain branch: the next
            # agreement with this provider needs a fresh chain, i.e. a fresh subscription.
            candidate.draft = None
            candidate.consumed = True
        demand.waiting = kept
        if kept and any(c.consumed for c in demand.candidates.values()):
            self._refresh(demand)

    def _refresh(self, demand: _Demand) -> None:
        """Publish the demand again so every provider makes a new Initial proposal."""
        now = time.monotonic()
        if demand.refreshing or now - demand.refreshed_at < 1.0:
            if not demand.refreshing:
                self.after(1.0, _Refresh(demand.spec.key), key=f"refresh:{demand.spec.key}")
            return
        demand.refreshing = True
        demand.refreshed_at = now
        old = demand.demand_id
        demand.demand_id = None
        if old is not None:
            self.io("unsubscribed", self.rt.client.market.unsubscribe_demand, old)
        self._subscribe(demand.spec.key)

    def io_unsubscribed(self, result: IoResult) -> None:
        if not result.ok:
            log.debug("unsubscribing an old demand: %s", result.error)

    @handles(_Refresh)
    def on_refresh(self, message: _Refresh) -> None:
        demand = self._demands.get(message.key)
        if demand is not None and demand.waiting:
            self._refresh(demand)

    def _best(self, demand: _Demand, request: RequestProposal) -> _Candidate | None:
        """The least-loaded, best-scored provider with a draft ready.

        If a better one is still negotiating (for a few seconds at most), wait for it rather
        than piling instances on whichever provider answered first.
        """
        load = self._load.get(request.group, {})

        def rank(c: _Candidate) -> tuple[int, float, str]:
            score = c.score * demand.penalties.get(c.provider_id, 1.0)
            return (load.get(c.provider_id, 0), -score, c.provider_id)

        now = time.monotonic()
        usable = [
            c
            for c in demand.candidates.values()
            if c.provider_id not in request.exclude
            and not c.consumed
            and (c.draft is not None or now - c.countered_at < NEGOTIATION_PATIENCE_S)
        ]
        if not usable:
            return None
        best = min(usable, key=rank)
        if best.draft is not None:
            return best
        ready = [c for c in usable if c.draft is not None]
        if ready and rank(min(ready, key=rank))[0] <= rank(best)[0]:
            return min(ready, key=rank)  # as little loaded: no reason to wait
        self.after(NEGOTIATION_PATIENCE_S, _Serve(demand.spec.key), key=f"serve:{demand.spec.key}")
        return None

    def stopping(self) -> None:
        for demand in self._demands.values():
            if demand.demand_id is not None:
                try:
                    self.rt.client.market.unsubscribe_demand(demand.demand_id)
                except Exception as exc:  # noqa: BLE001 - best effort on the way out
                    log.debug("unsubscribing demand: %s", exc)
