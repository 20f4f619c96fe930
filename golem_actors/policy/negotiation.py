"""What we counter a provider's offer with, when we refuse its answer, and what was agreed.

Golem negotiation in three steps, all pure functions here:

1. ``counter_properties``: to an initial offer we answer with our demand plus
   ``golem.com.payment.chosen-platform`` (yapapi ``engine.py`` and golem-js
   ``counterProposal`` set it only in the counter) and the payment terms (GAP-3). For each term
   we asked for and the provider offers, we take the provider's value when it lies in our
   acceptable range and otherwise propose the nearest bound (yapapi ``PropValueRange.clamp``);
   the provider may accept that or reject. By default a term's range is "at least what our demand
   asked": a longer debit-note interval, payment timeout or accept timeout is always easier on
   the requestor. A term the provider does not offer is left out (yapapi echoes the mid-agreement
   terms only to providers that offer them), which for the payment timeout means no MAP.
2. ``check_provider_counter``: the provider's draft answer is refused if its prices differ from
   its offer, it dropped a term we countered with, moved one out of our range, or cannot be paid
   on our platform.
3. ``agreed_terms``: read an agreement's demand and offer into the terms the payment logic
   enforces. The provider issues debit notes by the values in *its* side (localnet clamps our
   ask to its own range and keeps it in the offer; ya-provider does the same), so those are taken
   from the offer; mid-agreement payments need the payment timeout on both sides (GAP-3: without
   it a provider may not issue payable debit notes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from golem_actors import arguments
from golem_actors.errors import GolemActorsError
from golem_actors.policy.demand import (
    ACCEPT_TIMEOUT,
    CHOSEN_PLATFORM,
    DEBIT_NOTE_INTERVAL,
    PAYMENT_TIMEOUT,
    platform_address_property,
)
from golem_actors.policy.pricing import (
    COEFFS,
    PRICING_MODEL,
    SCHEME,
    USAGE_VECTOR,
    LinearPricing,
    PricingError,
)

__all__ = [
    "NEGOTIABLE_TERMS",
    "AgreedTerms",
    "AgreementTermsError",
    "CounterRejectedError",
    "TermRange",
    "agreed_terms",
    "check_provider_counter",
    "counter_properties",
]

NEGOTIABLE_TERMS: Final = (DEBIT_NOTE_INTERVAL, PAYMENT_TIMEOUT, ACCEPT_TIMEOUT)
_LEGACY_INTERVAL: Final = "golem.com.scheme.payu.interval_sec"  # pre-GAP-3 offers


class CounterRejectedError(GolemActorsError, ValueError):
    """We cannot counter this offer; the message is the reason to give the provider."""


class AgreementTermsError(GolemActorsError, ValueError):
    """An agreement's terms are missing or malformed; the message names the property."""


@dataclass(frozen=True)
class TermRange:
    """Acceptable values of one negotiable term, in seconds; None leaves that side open."""

    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        for side in ("min", "max"):
            arguments.optional_number(f"TermRange.{side}", getattr(self, side), gt=0)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"TermRange is empty: min={self.min} > max={self.max}")

    def __contains__(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def clamp(self, value: float) -> int:
        """The nearest whole number of seconds inside the range (the wire type is uint32)."""
        if self.min is not None and value < self.min:
            return math.ceil(self.min)
        if self.max is not None and value > self.max:
            return math.floor(self.max)
        return int(value) if value == int(value) else math.ceil(value)


def _seconds(value: Any) -> float | None:
    """A term's value if it is a positive finite number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value <= 0:
        return None
    return float(value)


def _ranges(
    asked: Mapping[str, Any], limits: Mapping[str, TermRange] | None
) -> dict[str, TermRange]:
    """Per term: the explicit limit if given, else 'at least what we asked'."""
    ranges: dict[str, TermRange] = {}
    for term in NEGOTIABLE_TERMS:
        if limits is not None and term in limits:
            ranges[term] = limits[term]
        elif term in asked:
            ours = _seconds(asked[term])
            if ours is None:
                raise ValueError(f"our demand's {term} must be a positive number: {asked[term]!r}")
            ranges[term] = TermRange(min=ours)
    if limits is not None:
        unknown = sorted(set(limits) - set(NEGOTIABLE_TERMS))
        if unknown:
            raise ValueError(f"limits name properties that are not negotiable terms: {unknown}")
    return ranges


def counter_properties(
    demand_props: Mapping[str, Any],
    offer_props: Mapping[str, Any],
    *,
    payment_platform: str,
    limits: Mapping[str, TermRange] | None = None,
) -> dict[str, Any]:
    """Our counter-proposal's properties to ``offer_props``; raises CounterRejectedError.

    ``limits`` overrides a term's acceptable range (keys: ``NEGOTIABLE_TERMS``).
    """
    if platform_address_property(payment_platform) not in offer_props:
        offered = sorted(
            k.split(".")[4]
            for k in offer_props
            if k.startswith("golem.com.payment.platform.") and k.count(".") >= 5  # noqa: PLR2004
        )
        raise CounterRejectedError(
            f"no common payment platform: we pay on {payment_platform}, the offer takes {offered}"
        )
    ranges = _ranges(demand_props, limits)
    counter = {k: v for k, v in demand_props.items() if k not in NEGOTIABLE_TERMS}
    counter[CHOSEN_PLATFORM] = payment_platform
    for term in NEGOTIABLE_TERMS:
        if term not in demand_props or term not in offer_props:
            continue  # we did not ask, or the provider does not negotiate it
        theirs = _seconds(offer_props[term])
        if theirs is None:
            raise CounterRejectedError(
                f"the offer's {term} must be a positive number, got {offer_props[term]!r}"
            )
        acceptable = ranges[term]
        counter[term] = offer_props[term] if theirs in acceptable else acceptable.clamp(theirs)
    return counter


def _pricing_terms(props: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(props.get(k) for k in (SCHEME, PRICING_MODEL, USAGE_VECTOR))


def _pricing_problem(
    their_props: Mapping[str, Any], offer_props: Mapping[str, Any] | None
) -> str | None:
    try:
        pricing = LinearPricing.from_properties(their_props)
    except PricingError as exc:
        return f"the provider's counter has bad pricing: {exc}"
    if offer_props is None:
        return None
    if _pricing_terms(their_props) != _pricing_terms(offer_props):
        return "the provider's counter changed its pricing scheme, model or usage vector"
    try:
        offered = LinearPricing.from_properties(offer_props)
    except PricingError as exc:
        return f"the provider's offer has bad pricing: {exc}"
    if pricing != offered:
        return (
            f"the provider's counter changed its prices from {offer_props[COEFFS]!r} "
            f"to {their_props[COEFFS]!r}"
        )
    return None


def _platform_problem(our_props: Mapping[str, Any], their_props: Mapping[str, Any]) -> str | None:
    platform = our_props.get(CHOSEN_PLATFORM)
    if not isinstance(platform, str):
        return None
    if platform_address_property(platform) not in their_props:
        return f"the provider's counter has no address on {platform}"
    theirs = their_props.get(CHOSEN_PLATFORM)
    if theirs is not None and theirs != platform:
        return f"the provider's counter chose platform {theirs!r}, we chose {platform!r}"
    return None


def _terms_problem(
    our_props: Mapping[str, Any],
    their_props: Mapping[str, Any],
    limits: Mapping[str, TermRange] | None,
) -> str | None:
    ranges = _ranges(our_props, limits)
    for term in NEGOTIABLE_TERMS:
        if term not in our_props:
            continue
        if term not in their_props:
            return f"the provider's counter dropped {term}"
        value = _seconds(their_props[term])
        if value is None:
            return f"the provider's counter has a bad {term}: {their_props[term]!r}"
        if value not in ranges[term]:
            return (
                f"the provider's counter moved {term} to {their_props[term]!r}, "
                f"outside our range (we countered with {our_props[term]!r})"
            )
    return None


def check_provider_counter(
    our_props: Mapping[str, Any],
    their_props: Mapping[str, Any],
    *,
    offer_props: Mapping[str, Any] | None = None,
    limits: Mapping[str, TermRange] | None = None,
) -> str | None:
    """Why to refuse the provider's draft ``their_props`` to our counter ``our_props``, or None.

    ``offer_props`` is the provider's initial offer: when given, the draft must keep its pricing
    exactly (scheme, model, usage vector, coefficients). ``limits`` as in ``counter_properties``,
    except that by default a term may only become more generous than what we countered with.
    """
    return (
        _pricing_problem(their_props, offer_props)
        or _platform_problem(our_props, their_props)
        or _terms_problem(our_props, their_props, limits)
    )


@dataclass(frozen=True)
class AgreedTerms:
    """What an agreement binds both sides to, as the payment logic enforces it.

    ``debit_note_interval_s`` / ``accept_timeout_s`` are None when the provider does not negotiate
    them (then no interval is enforced and notes are accepted without a known deadline).
    ``payment_timeout_s`` is set exactly when mid-agreement payments were agreed.
    """

    pricing: LinearPricing
    debit_note_interval_s: float | None
    payment_timeout_s: float | None
    accept_timeout_s: float | None
    payment_platform: str | None = None

    @property
    def mid_agreement_payments(self) -> bool:
        """May the provider send payable debit notes (with a due date) before the invoice?"""
        return self.payment_timeout_s is not None


def _term(props: Mapping[str, Any], key: str, side: str) -> float | None:
    if key not in props:
        return None
    value = _seconds(props[key])
    if value is None:
        raise AgreementTermsError(f"the agreement's {side} {key} must be a positive number")
    return value


def agreed_terms(
    agreement_demand_props: Mapping[str, Any],
    agreement_offer_props: Mapping[str, Any],
) -> AgreedTerms:
    """The terms of an agreement from its demand and offer properties (as yagna returns them)."""
    try:
        pricing = LinearPricing.from_properties(agreement_offer_props)
    except PricingError as exc:
        raise AgreementTermsError(f"the agreement's offer has bad pricing: {exc}") from None
    interval = _term(agreement_offer_props, DEBIT_NOTE_INTERVAL, "offer")
    if interval is None:
        interval = _term(agreement_offer_props, _LEGACY_INTERVAL, "offer")
    accept = _term(agreement_offer_props, ACCEPT_TIMEOUT, "offer")
    offered_timeout = _term(agreement_offer_props, PAYMENT_TIMEOUT, "offer")
    asked_timeout = _term(agreement_demand_props, PAYMENT_TIMEOUT, "demand")
    timeout = offered_timeout if asked_timeout is not None else None
    platform = agreement_demand_props.get(CHOSEN_PLATFORM)
    if platform is not None and not isinstance(platform, str):
        raise AgreementTermsError(f"the agreement's demand {CHOSEN_PLATFORM} must be a string")
    return AgreedTerms(
        pricing=pricing,
        debit_note_interval_s=interval,
        payment_timeout_s=timeout,
        accept_timeout_s=accept,
        payment_platform=platform,
    )
