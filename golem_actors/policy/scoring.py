"""Offer scoring strategies. Pure code.

A scorer turns an offer's properties into a ``Score``: a positive value (higher is better) or a
rejection with a reason, so the market can say why it turned a provider down. The default,
``LeastExpensiveLinearPayu``, is yapapi's ``LeastExpensiveLinearPayuMS``: reject anything that is
not linear pay-per-use, has a negative price, or a price above its cap; otherwise score
``1 / (1.01 + cost of expected_time_s on every counter)``, so cheaper is better and every score
lies in (0, 1/1.01].

Re-scoring after failures (yapapi#820: offers are scored once) lives in ``offer_pool``: a
provider that failed is down-ranked (halved, as yapapi's ``DecreaseScoreForUnconfirmedAgreement``)
among the drafts of every demand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Protocol

from golem_actors import arguments
from golem_actors.policy.pricing import (
    CPU_SEC,
    DURATION_SEC,
    PRICING_MODEL,
    SCHEME,
    LinearPricing,
    PricingError,
)

__all__ = [
    "DEFAULT_MAX_PRICE_FOR",
    "DEFAULT_MAX_START_PRICE",
    "LeastExpensiveLinearPayu",
    "OfferScorer",
    "Score",
    "default_scorer",
]

# yapapi's engine default caps (``Golem._initialize_default_strategy``), in GLM.
DEFAULT_MAX_START_PRICE: Final = Decimal("1.0")
DEFAULT_MAX_PRICE_FOR: Final[Mapping[str, Decimal]] = {
    CPU_SEC: Decimal("0.2"),
    DURATION_SEC: Decimal("0.1"),
}


@dataclass(frozen=True)
class Score:
    """A scorer's verdict: ``value`` > 0 (higher is better), or None with the ``reason`` why not."""

    value: float | None
    reason: str = ""

    def __post_init__(self) -> None:
        arguments.optional_number("Score.value", self.value, gt=0)
        if self.value is None and not self.reason:
            raise ValueError("a rejecting Score needs a reason")

    @property
    def accepted(self) -> bool:
        return self.value is not None

    @classmethod
    def reject(cls, reason: str) -> Score:
        return cls(None, reason)


class OfferScorer(Protocol):
    """Anything that scores an offer's flat properties for the provider that made it."""

    def score(self, offer_properties: Mapping[str, Any], provider_id: str) -> Score: ...


def _cap(raw: Any, what: str) -> Decimal:
    try:
        value = Decimal(str(raw)) if not isinstance(raw, bool) else Decimal("NaN")
    except InvalidOperation:
        value = Decimal("NaN")
    if value.is_nan() or value < 0:
        raise ValueError(f"{what} must be a price >= 0 (Infinity for no cap), got {raw!r}")
    return value


@dataclass(frozen=True)
class LeastExpensiveLinearPayu:
    """Cheapest linear pay-per-use offer for ``expected_time_s`` on every counter, within caps.

    ``max_start_price`` caps the start price and ``max_price_for`` the unit price of the counters
    it names (a counter it does not name is uncapped); prices are in GLM per unit of the counter.
    """

    max_start_price: Decimal = Decimal("Infinity")
    max_price_for: Mapping[str, Decimal] = field(default_factory=dict)
    expected_time_s: float = 60.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_start_price", _cap(self.max_start_price, "max_start_price"))
        given: object = self.max_price_for
        items = given.items() if isinstance(given, Mapping) else None
        if items is None:
            raise ValueError("max_price_for must map usage counters to prices")
        caps: dict[str, Decimal] = {}
        for counter, price in items:
            if not isinstance(counter, str) or not counter:
                raise ValueError(f"max_price_for keys must be counter names, got {counter!r}")
            caps[counter] = _cap(price, f"max_price_for[{counter!r}]")
        object.__setattr__(self, "max_price_for", caps)
        arguments.number("expected_time_s", self.expected_time_s, gt=0)

    def score(self, offer_properties: Mapping[str, Any], provider_id: str) -> Score:  # noqa: ARG002 - the protocol passes it for scorers that judge providers
        scheme = offer_properties.get(SCHEME)
        if scheme != "payu":
            return Score.reject(f"{SCHEME} is {scheme!r}, not 'payu'")
        model = offer_properties.get(PRICING_MODEL)
        if model != "linear":
            return Score.reject(f"{PRICING_MODEL} is {model!r}, not 'linear'")
        try:
            pricing = LinearPricing.from_properties(offer_properties)
        except PricingError as exc:
            return Score.reject(f"bad pricing: {exc}")
        if pricing.start_price > self.max_start_price:
            return Score.reject(
                f"start price {pricing.start_price} is above the cap {self.max_start_price}"
            )
        for counter, price in zip(pricing.usage_vector, pricing.prices, strict=True):
            cap = self.max_price_for.get(counter)
            if cap is not None and price > cap:
                return Score.reject(f"price for {counter} {price} is above the cap {cap}")
        cost = pricing.cost(dict.fromkeys(pricing.usage_vector, self.expected_time_s))
        return Score(float(Decimal(1) / (Decimal("1.01") + cost)))


def default_scorer() -> LeastExpensiveLinearPayu:
    """The scorer yapapi's engine uses by default: start price <= 1, cpu <= 0.2, time <= 0.1."""
    return LeastExpensiveLinearPayu(
        max_start_price=DEFAULT_MAX_START_PRICE, max_price_for=DEFAULT_MAX_PRICE_FOR
    )
