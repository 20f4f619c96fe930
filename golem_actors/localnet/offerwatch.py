"""Wait until the requestor's node sees the providers' offers, as a requestor would find them.

An offer published on a provider node reaches the hub only by yagna's broadcast, so a requestor
that starts the moment the provider agents are ready may find nobody. The only view the
requestor's node gives of the offers it knows is matching: a demand (one per subnet the
providers offer in) whose proposals name their issuers. Providers never hear of it: a provider
learns of a demand only from a counter-proposal.

The demand must be there *before* the providers publish: yagna subscribes a node to offer
broadcasts only with its first demand or offer, and an offer broadcast before that is lost until
the cyclic re-broadcast minutes later (seen in yagna 0.17.6: the hub's ``GsbBroadcastBind``
came with the first demand, and an offer broadcast 10 ms earlier never arrived).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping
from typing import Self

from golem_actors.localnet.offer import EXPIRATION
from golem_actors.yagna import ApiConfig, YagnaClient, YagnaError
from golem_actors.yagna.models import ProposalEvent

__all__ = ["AGENT_STARTED", "OfferWatch"]

#: An offer property localnet adds: when its agent was started (ms), unique per agent process.
AGENT_STARTED = "golem.node.debug.localnet.agent-started"
_SUBNET = "golem.node.debug.subnet"
_ANY_NODE = "(golem.node.id.name=*)"


class OfferWatch:
    """Demands on the requestor's node that collect the issuers of the offers it matches."""

    def __init__(self, config: ApiConfig, subnets: Iterable[str]) -> None:
        self.client = YagnaClient(config)
        self.subnets = sorted(set(subnets))
        self.seen: set[str] = set()  # issuer node ids
        self._demand_ids: list[str] = []

    def open(self) -> Self:
        expires = int((time.time() + 3600) * 1000)
        try:
            for subnet in self.subnets:
                props = {EXPIRATION: expires, _SUBNET: subnet}
                self._demand_ids.append(self.client.market.subscribe_demand(props, _ANY_NODE))
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        demand_ids, self._demand_ids = self._demand_ids, []
        for demand_id in demand_ids:
            with contextlib.suppress(YagnaError):
                self.client.market.unsubscribe_demand(demand_id)
        self.client.close()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *_: object) -> None:
        self.close()

    def missing(self, expected: Mapping[str, object], deadline: float) -> set[str]:
        """The node ids of ``expected`` (node id -> the ``AGENT_STARTED`` value of its offer)
        whose offer has not been matched by ``deadline`` (``time.monotonic()``); empty once
        every one has been seen. The value tells a restarted agent's offer from the one its
        predecessor left, which the requestor's node may not have dropped yet."""
        while missing := set(expected) - self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                return missing
            wait = min(left, 1.0 if len(self._demand_ids) == 1 else 0.2)
            for demand_id in self._demand_ids:
                for event in self.client.market.demand_events(demand_id, timeout=wait):
                    if not isinstance(event, ProposalEvent):
                        continue
                    issuer, props = event.proposal.issuer_id, event.proposal.properties
                    if issuer in expected and props.get(AGENT_STARTED) == expected[issuer]:
                        self.seen.add(issuer)
        return set()
