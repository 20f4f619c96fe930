"""Offer scoring strategies and the ranked pool of scored offers. Pure code.

A scorer turns an offer's properties into a ``Score``: a positive value (higher is better) or a
rejection with a reason, so the market can say why it turned a provider down. The default,
``LeastExpensiveLinearPayu``, is yapapi's ``LeastExpensiveLinearPayuMS``: reject anything that is
not linear pay-per-use, has a negative price, or a price above its cap; otherwise score
``1 / (1.01 + cost of expected_time_s on every counter)``, so cheaper is better and every score
lies in (0, 1/1.01].

``OfferBook`` fixes what yapapi cannot do (yapapi#820: offers are scored once): it keeps the
offers it was given, re-scores them all with ``rescore`` and down-ranks a provider with
``penalize`` (yapapi's ``DecreaseScoreForUnconfirmedAgreement`` multiplies by 0.5), and picks the
best offer outside a caller's exclusion set, so each service cluster keeps its own blacklist while
sharing one pool. Ties go to the offer added first (then the smaller provider id), never to chance,
so runs are reproducible; yapapi shuffles instead.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Generic, Protocol, TypeVar

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
    "HasProperties",
    "LeastExpensiveLinearPayu",
    "OfferBook",
    "OfferEntry",
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
        if self.value is None:
            if not self.reason:
                raise ValueError("a rejecting Score needs a reason")
        elif (
            isinstance(self.value, bool)
            or not isinstance(self.value, int | float)
            or not math.isfinite(self.value)
            or self.value <= 0
        ):
            raise ValueError(f"Score.value must be a finite number > 0 or None, got {self.value!r}")

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
        t = self.expected_time_s
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t <= 0:
            raise ValueError(f"expected_time_s must be a positive number, got {t!r}")

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


class HasProperties(Protocol):
    """An offer as the book keeps it: anything exposing its flat properties (e.g. a Proposal)."""

    @property
    def properties(self) -> Mapping[str, Any]: ...


OfferT = TypeVar("OfferT", bound=HasProperties)


@dataclass(frozen=True)
class OfferEntry(Generic[OfferT]):
    """One provider's current offer, its scorer's value, and the provider's penalty factor."""

    provider_id: str
    offer: OfferT
    base_score: float
    penalty: float
    order: int  # insertion order: the tie-break

    @property
    def score(self) -> float:
        """The value offers are ranked by: the scorer's value times the provider's penalty."""
        return self.base_score * self.penalty

    def _rank(self) -> tuple[float, int, str]:
        return (-self.score, self.order, self.provider_id)


def _check_score(value: Any) -> float:
    if isinstance(value, Score):
        if value.value is None:
            raise ValueError(f"cannot add a rejected offer (score reason: {value.reason})")
        return value.value
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"score must be a finite number > 0, got {value!r}")
    return float(value)


def _check_provider(provider_id: Any) -> str:
    if not isinstance(provider_id, str) or not provider_id:
        raise ValueError(f"provider_id must be a non-empty string, got {provider_id!r}")
    return provider_id


class OfferBook(Generic[OfferT]):
    """Scored offers, one per provider, ranked best first. Owned by one actor: not thread-safe.

    Penalties belong to providers, not offers: they survive ``remove`` and a new offer from the
    same provider, so a provider that failed us stays down-ranked until ``forgive``.
    """

    def __init__(self) -> None:
        self._entries: dict[str, OfferEntry[OfferT]] = {}
        self._penalties: dict[str, float] = {}
        self._counter = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, provider_id: object) -> bool:
        return provider_id in self._entries

    def __iter__(self) -> Iterator[OfferEntry[OfferT]]:
        """Entries best first."""
        return iter(self.ranked())

    def get(self, provider_id: str) -> OfferEntry[OfferT] | None:
        return self._entries.get(provider_id)

    def ranked(self) -> list[OfferEntry[OfferT]]:
        return sorted(self._entries.values(), key=OfferEntry._rank)  # noqa: SLF001

    def penalty(self, provider_id: str) -> float:
        return self._penalties.get(provider_id, 1.0)

    def add(self, provider_id: str, offer: OfferT, score: Score | float) -> OfferEntry[OfferT]:
        """Add or replace ``provider_id``'s offer (a newer offer replaces the older one)."""
        entry = OfferEntry(
            _check_provider(provider_id),
            offer,
            _check_score(score),
            self.penalty(provider_id),
            self._counter,
        )
        self._counter += 1
        self._entries[provider_id] = entry
        return entry

    def remove(self, provider_id: str) -> OfferEntry[OfferT] | None:
        """Drop the provider's offer (gone from the market, or used); None if there was none."""
        return self._entries.pop(provider_id, None)

    def best(self, exclude: Collection[str] = ()) -> OfferEntry[OfferT] | None:
        """The best-ranked offer whose provider is not in ``exclude``; None if there is none."""
        candidates = (e for e in self._entries.values() if e.provider_id not in exclude)
        return min(candidates, key=OfferEntry._rank, default=None)  # noqa: SLF001

    def penalize(self, provider_id: str, factor: float) -> float:
        """Multiply the provider's penalty by ``factor`` in (0, 1]; returns the new penalty.

        A provider without an offer in the book is remembered too, for its next offer.
        """
        _check_provider(provider_id)
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not 0 < factor <= 1:
            raise ValueError(f"penalty factor must be in (0, 1], got {factor!r}")
        penalty = self.penalty(provider_id) * factor
        if penalty <= 0:  # underflow after very many penalties: keep it ranked, last
            penalty = math.ulp(0.0)
        self._penalties[provider_id] = penalty
        self._set_penalty(provider_id, penalty)
        return penalty

    def forgive(self, provider_id: str) -> None:
        """Clear the provider's penalty."""
        self._penalties.pop(provider_id, None)
        self._set_penalty(provider_id, 1.0)

    def _set_penalty(self, provider_id: str, penalty: float) -> None:
        entry = self._entries.get(provider_id)
        if entry is not None:
            self._entries[provider_id] = OfferEntry(
                entry.provider_id, entry.offer, entry.base_score, penalty, entry.order
            )

    def rescore(self, scorer: OfferScorer) -> dict[str, str]:
        """Score every offer again; drop those now rejected. Returns {provider id: reason}."""
        rejected: dict[str, str] = {}
        for provider_id, entry in list(self._entries.items()):
            verdict = scorer.score(entry.offer.properties, provider_id)
            if verdict.value is None:
                rejected[provider_id] = verdict.reason
                del self._entries[provider_id]
            else:
                self._entries[provider_id] = OfferEntry(
                    provider_id, entry.offer, verdict.value, entry.penalty, entry.order
                )
        return rejected
