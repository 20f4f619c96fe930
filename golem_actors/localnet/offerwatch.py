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
from collections.abc import Collection, Iterable
from typing import Self

from golem_actors.localnet.offer import EXPIRATION
from golem_actors.yagna import ApiConfig, YagnaClient, YagnaError
from golem_actors.yagna.models import ProposalEvent

__all__ = ["OfferWatch"]

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

    def missing(self, node_ids: Collection[str], deadline: float) -> set[str]:
        """Those of ``node_ids`` whose offer has not been matched by ``deadline``
        (``time.monotonic()``); empty once every one has been seen."""
        while missing := set(node_ids) - self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                return missing
            wait = min(left, 1.0 if len(self._demand_ids) == 1 else 0.2)
            for demand_id in self._demand_ids:
                for event in self.client.market.demand_events(demand_id, timeout=wait):
                    if isinstance(event, ProposalEvent):
                        self.seen.add(event.proposal.issuer_id)
        return set()
