"""How a ``Golem`` session publishes a demand: the demand itself and its three judges.

``SessionDemand`` holds what every demand of a session shares (subnet, payment platform,
expiration, debit-note interval, scorer, image resolver), checked when the session is made: a
bad subnet or platform would otherwise surface only at the first ``run_service``, after the
budget was reserved.

The market actor is given, with each demand, how to score an offer, what to counter-propose, and
how to check the provider's counter; all three are pure policy (``scoring``, ``negotiation``)
bound here to the session's scorer and payment platform, so the market actor stays generic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pykka

from golem_actors.actors.market import PublishDemand
from golem_actors.policy.demand import DemandSpec, build_demand
from golem_actors.policy.negotiation import (
    CounterRejectedError,
    check_provider_counter,
    counter_properties,
)
from golem_actors.policy.payload import ImageResolver, VmPayload
from golem_actors.policy.scoring import OfferScorer

__all__ = ["SessionDemand", "publish_demand"]


@dataclass(frozen=True)
class SessionDemand:
    """The settings every demand of one session shares; a ``ValueError`` (``TypeError`` for the
    scorer) names a bad one."""

    subnet: str
    payment_platform: str
    expiration: dt.timedelta
    debit_note_interval_s: int
    scorer: OfferScorer
    image_resolver: ImageResolver

    def __post_init__(self) -> None:
        self.spec(VmPayload())  # the demand's own checks, on a payload that passes its own
        if not callable(getattr(self.scorer, "score", None)):
            raise TypeError(
                f"scorer must have a score(offer_properties, provider_id), got {self.scorer!r}"
            )

    def spec(self, payload: VmPayload) -> DemandSpec:
        return DemandSpec(
            payload,
            subnet=self.subnet,
            expiration=self.expiration,
            payment_platform=self.payment_platform,
            debit_note_interval_s=self.debit_note_interval_s,
        )

    def publish(
        self,
        market: pykka.ActorRef[Any],
        name: str,
        payload: VmPayload,
        decoration: tuple[dict[str, Any], list[str]],
    ) -> str:
        """Publish (once per distinct demand) and return the market's key for it."""
        return publish_demand(
            market,
            name,
            self.spec(payload),
            decoration,
            scorer=self.scorer,
            image_resolver=self.image_resolver,
        )


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
