"""How a ``Golem`` session publishes a demand: the demand itself and its three judges.

The market actor is given, with each demand, how to score an offer, what to counter-propose, and
how to check the provider's counter; all three are pure policy (``scoring``, ``negotiation``)
bound here to the session's scorer and payment platform, so the market actor stays generic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import pykka

from golem_actors.actors.market import PublishDemand
from golem_actors.policy.demand import DemandSpec, build_demand
from golem_actors.policy.negotiation import (
    CounterRejectedError,
    check_provider_counter,
    counter_properties,
)
from golem_actors.policy.payload import ImageResolver
from golem_actors.policy.scoring import OfferScorer

__all__ = ["publish_demand"]


def publish_demand(
    market: pykka.ActorRef[Any],
    name: str,
    spec: DemandSpec,
    decoration: tuple[dict[str, Any], list[str]],
    *,
    scorer: OfferScorer,
    image_resolver: ImageResolver,
) -> str:
    """Publish (once per distinct demand) and return the market's key for it.

    ``decoration`` is what yagna's allocation adds to every demand (properties, constraints).
    """
    demand = build_demand(
        spec,
        now=dt.datetime.now(dt.UTC),
        decoration_properties=decoration[0],
        decoration_constraints=decoration[1],
        image_resolver=image_resolver,
    )
    fingerprint = (demand.constraints, tuple(sorted(map(str, demand.properties.items()))))
    key = f"{name}:{hash(fingerprint)}"
    market.tell(
        PublishDemand(
            key,
            demand.properties,
            demand.constraints,
            _scorer(scorer),
            _counter(demand.properties, spec.payment_platform),
            _check,
        )
    )
    return key


def _scorer(scorer: OfferScorer) -> Callable[[Mapping[str, Any], str], float | str]:
    def score(props: Mapping[str, Any], provider_id: str) -> float | str:
        result = scorer.score(props, provider_id)
        return result.value if result.value is not None else result.reason

    return score


def _counter(demand_props: Mapping[str, Any], platform: str) -> Any:
    def counter(offer_props: Mapping[str, Any]) -> dict[str, Any] | str:
        try:
            return counter_properties(demand_props, offer_props, payment_platform=platform)
        except CounterRejectedError as exc:
            return str(exc)

    return counter


def _check(
    ours: Mapping[str, Any], theirs: Mapping[str, Any], offer: Mapping[str, Any]
) -> str | None:
    return check_provider_counter(ours, theirs, offer_props=offer)
