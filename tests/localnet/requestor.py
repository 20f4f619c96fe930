"""A requestor played with raw client calls, for localnet's tests: nothing from the runtime."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from golem_actors.yagna import YagnaClient
from golem_actors.yagna.models import (
    Allocation,
    Invoice,
    Proposal,
    ProposalEvent,
    ProposalRejectedEvent,
)
from tests.waiting import wait_for


@dataclass
class Demand:
    client: YagnaClient
    allocation: Allocation
    properties: dict[str, Any]
    constraints: str
    demand_id: str = ""
    rejections: list[ProposalRejectedEvent] = field(default_factory=list)
    _seen: list[Proposal] = field(default_factory=list)

    def publish(self) -> Demand:
        self.demand_id = self.client.market.subscribe_demand(self.properties, self.constraints)
        return self

    def close(self) -> None:
        self.client.market.unsubscribe_demand(self.demand_id)

    def poll(self, timeout: float = 1.0) -> list[Proposal]:
        proposals = []
        for event in self.client.market.demand_events(self.demand_id, timeout=timeout):
            if isinstance(event, ProposalEvent):
                proposals.append(event.proposal)
            elif isinstance(event, ProposalRejectedEvent):
                self.rejections.append(event)
        self._seen.extend(proposals)
        return proposals

    def offers(self, count: int, timeout: float = 15.0) -> dict[str, Proposal]:
        """Initial proposals from ``count`` distinct providers, keyed by provider name."""
        found: dict[str, Proposal] = {}

        def probe() -> dict[str, Proposal] | None:
            for proposal in self.poll():
                if proposal.state == "Initial":
                    found[proposal.properties["golem.node.id.name"]] = proposal
            return found if len(found) >= count else None

        return wait_for(f"offers from {count} providers", probe, timeout)

    def counter(self, proposal: Proposal) -> str:
        return self.client.market.counter_proposal_demand(
            self.demand_id, proposal.proposal_id, self.properties, self.constraints
        )

    def answer_to(self, our_id: str, timeout: float = 10.0) -> Proposal:
        def probe() -> Proposal | None:
            for proposal in [*self._seen, *self.poll()]:
                if proposal.prev_proposal_id == our_id:
                    return proposal
            return None

        return wait_for("the provider's counter-proposal", probe, timeout)

    def agree(self, proposal: Proposal, timeout: float = 15.0) -> str:
        """Counter, then make, confirm and wait for an agreement; returns its id."""
        answer = self.answer_to(self.counter(proposal))
        valid_to = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
        agreement_id = self.client.market.create_agreement(answer.proposal_id, valid_to)
        self.client.market.confirm_agreement(agreement_id)
        self.client.market.wait_for_approval(agreement_id, timeout=timeout)
        return agreement_id


def demand(
    client: YagnaClient,
    allocation: Allocation,
    *,
    constraints: str = "(golem.runtime.name=vm)",
    properties: dict[str, Any] | None = None,
) -> Demand:
    """A demand decorated for the allocation's platform, in the ``public`` subnet."""
    decoration = client.payment.demand_decorations([allocation.allocation_id])
    props = {
        "golem.srv.comp.expiration": int((time.time() + 3600) * 1000),
        "golem.node.debug.subnet": "public",
        "golem.com.payment.chosen-platform": allocation.payment_platform,
        **decoration.property_dict(),
        **(properties or {}),
    }
    all_constraints = "(&" + "".join(decoration.constraints) + constraints + ")"
    return Demand(client, allocation, props, all_constraints).publish()


def invoice_for(client: YagnaClient, agreement_id: str, after: dt.datetime) -> Invoice:
    def probe() -> Invoice | None:
        for event in client.payment.invoice_events(after=after, timeout=1):
            invoice = client.payment.get_invoice(event.invoice_id)
            if invoice.agreement_id == agreement_id:
                return invoice
        return None

    return wait_for(f"the invoice for {agreement_id}", probe)
