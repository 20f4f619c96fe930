"""How a ``Golem`` session publishes a demand: the demand itself and its three judges.

``SessionDemand`` holds what every demand of a session shares (subnet, payment platform,
expiration, payment terms, extra properties and constraints, scorer, image resolver), checked when
the session is made: a bad subnet or platform would otherwise surface only at the first
``run_service``, after the budget was reserved. ``run_service`` may override the payment terms and
add properties and constraints for its own cluster.

The market actor is given, with each demand, how to score an offer, what to counter-propose, and
how to check the provider's counter; all three are pure policy (``scoring``, ``negotiation``)
bound here to the session's scorer and payment platform, so the market actor stays generic. It is
also given how to build the same demand again for a fresh expiration (``renew``), so a long-lived
service keeps finding offers: the image is resolved once, the clock is read at each renewal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypedDict, Unpack

import pykka

from golem_actors.actors.market import PublishDemand
from golem_actors.policy.demand import (
    AUTO,
    DEBIT_NOTE_INTERVAL,
    PAYMENT_TIMEOUT,
    Demand,
    DemandError,
    DemandSpec,
    build_demand,
    payment_timeout_for,
)
from golem_actors.policy.negotiation import (
    CounterRejectedError,
    TermRange,
    check_provider_counter,
    counter_properties,
)
from golem_actors.policy.payload import ImageResolver, VmPayload
from golem_actors.policy.scoring import OfferScorer

__all__ = [
    "SESSION",
    "ClusterDemand",
    "DemandOptions",
    "PaymentTimeout",
    "SessionDemand",
    "publish_demand",
]

#: ``run_service(payment_timeout_s=SESSION)``: the session's setting.
SESSION: Final = "session"
PaymentTimeout = int | Literal["auto"] | None


class DemandOptions(TypedDict, total=False):
    """``Golem(...)``'s newer demand settings, for ``GolemOptions`` (``execute_tasks``)."""

    registry_url: str | None
    payment_timeout_s: PaymentTimeout
    extra_properties: Mapping[str, Any] | None
    extra_constraints: Sequence[str]


class ClusterDemand(TypedDict, total=False):
    """What ``run_service(..., **demand)`` may set for its own cluster's demand; left out: the
    session's."""

    payment_timeout_s: PaymentTimeout | Literal["session"]
    debit_note_interval_s: int | None
    extra_properties: Mapping[str, Any] | None  # added to the session's (these win)
    extra_constraints: Sequence[str]  # added to the session's


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
    payment_timeout_s: PaymentTimeout = AUTO  # "auto": mid-agreement payments from 5 h
    extra_properties: Mapping[str, Any] = field(default_factory=dict)
    extra_constraints: Sequence[str] = ()

    def __post_init__(self) -> None:
        self.spec(VmPayload())  # the demand's own checks, on a payload that passes its own
        if not callable(getattr(self.scorer, "score", None)):
            raise TypeError(
                f"scorer must have a score(offer_properties, provider_id), got {self.scorer!r}"
            )

    def spec(
        self,
        payload: VmPayload,
        *,
        debit_note_interval_s: int | None = None,
        payment_timeout_s: PaymentTimeout | Literal["session"] = SESSION,
        extra_properties: Mapping[str, Any] | None = None,
        extra_constraints: Sequence[str] = (),
    ) -> DemandSpec:
        """The demand for ``payload``: the session's settings, with a cluster's own on top (its
        extra properties win over the session's, its constraints are added). Raises DemandError
        naming a bad field."""
        timeout: int | str | None = payment_timeout_s
        if timeout == SESSION:
            timeout = self.payment_timeout_s
        for given in (self.extra_constraints, extra_constraints):
            if isinstance(given, str) or not isinstance(given, Sequence):
                raise DemandError("extra_constraints must be a tuple (or list) of filters")
        for more in (self.extra_properties, extra_properties or {}):
            if not isinstance(more, Mapping):
                raise DemandError("extra_properties must be a mapping of names to values")
        return DemandSpec(
            payload,
            subnet=self.subnet,
            expiration=self.expiration,
            payment_platform=self.payment_platform,
            debit_note_interval_s=(
                self.debit_note_interval_s
                if debit_note_interval_s is None
                else debit_note_interval_s
            ),
            payment_timeout_s=payment_timeout_for(timeout, self.expiration),
            extra_properties={**self.extra_properties, **(extra_properties or {})},
            extra_constraints=(*self.extra_constraints, *extra_constraints),
        )

    def publish(
        self,
        market: pykka.ActorRef[Any],
        name: str,
        payload: VmPayload,
        decoration: tuple[dict[str, Any], list[str]],
        **overrides: Unpack[ClusterDemand],
    ) -> str:
        """Publish (once per distinct demand) and return the market's key for it; ``overrides``
        are a cluster's own settings (see ``spec``)."""
        return publish_demand(
            market,
            name,
            self.spec(payload, **overrides),
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
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> str:
    """Publish (once per distinct demand) and return the market's key for it.

    ``decoration`` is what yagna's allocation adds to every demand (properties, constraints);
    ``clock`` is read for each build of it (the first, and every renewal).
    """
    resolved: dict[str, str | None] = {}

    def resolve_once(payload: VmPayload) -> str | None:  # renewals name the same image
        if "package" not in resolved:
            resolved["package"] = image_resolver(payload)
        return resolved["package"]

    def build() -> Demand:
        return build_demand(
            spec,
            now=clock(),
            decoration_properties=decoration[0],
            decoration_constraints=decoration[1],
            image_resolver=resolve_once,
        )

    demand = build()
    fingerprint = (demand.constraints, tuple(sorted(map(str, demand.properties.items()))))
    key = f"{name}:{hash(fingerprint)}"

    def message(built: Demand) -> PublishDemand:
        return PublishDemand(
            key,
            built.properties,
            built.constraints,
            _scorer(scorer),
            _counter(built.properties, spec.payment_platform),
            _check(built.properties),
            renew=lambda: message(build()),
            lifetime_s=spec.expiration.total_seconds(),
        )

    market.tell(message(demand))
    return key


def _scorer(scorer: OfferScorer) -> Callable[[Mapping[str, Any], str], float | str]:
    def score(props: Mapping[str, Any], provider_id: str) -> float | str:
        result = scorer.score(props, provider_id)
        return result.value if result.value is not None else result.reason

    return score


def _as_asked(demand_props: Mapping[str, Any]) -> dict[str, TermRange]:
    """The session's debit-note interval and payment timeout are the terms, not a floor: a
    provider's longer default would otherwise win (yapapi's rule), so ``debit_note_interval_s``
    and ``payment_timeout_s`` would not do what they say. As golem-js asks and ya-provider adopts
    (whatever lies in its range); the accept timeout keeps 'at least what we asked'."""
    return {
        term: TermRange(min=demand_props[term], max=demand_props[term])
        for term in (DEBIT_NOTE_INTERVAL, PAYMENT_TIMEOUT)
        if term in demand_props
    }


def _counter(demand_props: Mapping[str, Any], platform: str) -> Any:
    limits = _as_asked(demand_props)

    def counter(offer_props: Mapping[str, Any]) -> dict[str, Any] | str:
        try:
            return counter_properties(
                demand_props, offer_props, payment_platform=platform, limits=limits
            )
        except CounterRejectedError as exc:
            return str(exc)

    return counter


def _check(demand_props: Mapping[str, Any]) -> Any:
    limits = _as_asked(demand_props)

    def check(
        ours: Mapping[str, Any], theirs: Mapping[str, Any], offer: Mapping[str, Any]
    ) -> str | None:
        return check_provider_counter(ours, theirs, offer_props=offer, limits=limits)

    return check
