"""Linear pay-per-use pricing read from an offer, and what a given usage may cost. Pure code.

Golem's linear model (GAP-3 era ``ComLinear`` in yapapi, ``LinearPricing`` in golem-js): the offer
lists usage counters in ``golem.com.usage.vector`` and one coefficient per counter in
``golem.com.pricing.model.linear.coeffs``, followed by one more coefficient, the start (fixed)
price. Amounts are Decimal so a budget check never drifts the way float sums do; coefficients that
arrive as JSON floats are read through ``str`` so ``0.0001`` stays ``0.0001``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation, localcontext
from typing import Any, Final

from golem_actors import arguments
from golem_actors.errors import GolemActorsError

__all__ = [
    "COEFFS",
    "CPU_SEC",
    "DURATION_SEC",
    "GIB",
    "PRICING_MODEL",
    "SCHEME",
    "STORAGE_GIB",
    "USAGE_VECTOR",
    "LinearPricing",
    "PricingError",
]

SCHEME: Final = "golem.com.scheme"
PRICING_MODEL: Final = "golem.com.pricing.model"
COEFFS: Final = "golem.com.pricing.model.linear.coeffs"
USAGE_VECTOR: Final = "golem.com.usage.vector"

DURATION_SEC: Final = "golem.usage.duration_sec"
CPU_SEC: Final = "golem.usage.cpu_sec"
STORAGE_GIB: Final = "golem.usage.storage_gib"
GIB: Final = "golem.usage.gib"

# The token (GLM) has 18 decimals; amounts are rounded to that, never finer.
_TOKEN_QUANTUM: Final = Decimal("1e-18")
# Enough digits for 18 decimals on top of any realistic amount, so arithmetic never rounds early.
_PRECISION: Final = 80


class PricingError(GolemActorsError, ValueError):
    """An offer's pricing, or a usage given to it, is missing or malformed; the message says how."""


def _price(raw: Any, what: str) -> Decimal:
    """A coefficient as Decimal: a finite number >= 0 (JSON gives floats or ints, never bools)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal | str):
        raise PricingError(f"{what} must be a number, got {raw!r}")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise PricingError(f"{what} must be a number, got {raw!r}") from None
    if not value.is_finite():
        raise PricingError(f"{what} must be finite, got {raw!r}")
    if value < 0:
        raise PricingError(f"{what} must not be negative, got {raw!r}")
    return value


def _usage(raw: Any, what: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
        raise PricingError(f"usage of {what} must be a number, got {raw!r}")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise PricingError(f"usage of {what} must be finite, got {raw!r}")
    value = Decimal(str(raw))
    if not value.is_finite() or value < 0:
        raise PricingError(f"usage of {what} must be a finite number >= 0, got {raw!r}")
    return value


@dataclass(frozen=True)
class LinearPricing:
    """Prices per usage counter (in ``usage_vector`` order) plus a start price, all in GLM."""

    usage_vector: tuple[str, ...]
    prices: tuple[Decimal, ...]
    start_price: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "usage_vector", tuple(self.usage_vector))
        object.__setattr__(self, "prices", tuple(self.prices))
        if len(self.usage_vector) != len(self.prices):
            raise PricingError(
                f"{len(self.prices)} prices for {len(self.usage_vector)} usage counters"
            )
        for counter in self.usage_vector:
            if not isinstance(counter, str) or not counter:
                raise PricingError(f"{USAGE_VECTOR} entries must be non-empty strings: {counter!r}")
        if len(set(self.usage_vector)) != len(self.usage_vector):
            raise PricingError(f"{USAGE_VECTOR} names a counter twice: {list(self.usage_vector)}")
        prices = tuple(
            _price(p, f"price for {c}") for c, p in zip(self.usage_vector, self.prices, strict=True)
        )
        object.__setattr__(self, "prices", prices)
        object.__setattr__(self, "start_price", _price(self.start_price, "start price"))

    @classmethod
    def from_properties(cls, props: Mapping[str, Any]) -> LinearPricing:
        """Read an offer's (flat) properties; raises PricingError naming what is wrong."""
        model = props.get(PRICING_MODEL)
        if model is not None and model != "linear":
            raise PricingError(f"{PRICING_MODEL} is {model!r}, not 'linear'")
        if COEFFS not in props:
            raise PricingError(f"the offer has no {COEFFS}")
        if USAGE_VECTOR not in props:
            raise PricingError(f"the offer has no {USAGE_VECTOR}")
        coeffs, vector = props[COEFFS], props[USAGE_VECTOR]
        if not isinstance(coeffs, list | tuple):
            raise PricingError(f"{COEFFS} must be a list of numbers, got {coeffs!r}")
        if not isinstance(vector, list | tuple):
            raise PricingError(f"{USAGE_VECTOR} must be a list of counter names, got {vector!r}")
        if len(coeffs) != len(vector) + 1:
            raise PricingError(
                f"{COEFFS} must hold one price per counter of {USAGE_VECTOR} plus the start "
                f"price: {len(coeffs)} coefficients for {len(vector)} counters"
            )
        prices = tuple(_price(c, f"{COEFFS}[{i}]") for i, c in enumerate(coeffs))
        return cls(tuple(vector), prices[:-1], prices[-1])

    @property
    def price_by_counter(self) -> dict[str, Decimal]:
        return dict(zip(self.usage_vector, self.prices, strict=True))

    def price_for(self, counter: str) -> Decimal:
        """The price of one unit of ``counter``; a counter the offer does not bill is an error."""
        if counter not in self.usage_vector:
            billed = list(self.usage_vector)
            raise PricingError(f"counter {counter!r} is not in the offer's {USAGE_VECTOR} {billed}")
        return self.prices[self.usage_vector.index(counter)]

    def cost(self, usage: Mapping[str, float] | Sequence[float]) -> Decimal:
        """start price + price · usage, rounded *up* to the token's 18 decimals.

        ``usage`` is either the counters in ``usage_vector`` order (as debit notes carry them) or
        a mapping by counter name, where a counter left out counts as zero and an unknown one is an
        error (a typo would otherwise price as free). Rounding up makes the result an upper bound
        for a provider that rounds its own amount to 18 decimals.
        """
        if isinstance(usage, Mapping):
            unknown = sorted(set(usage) - set(self.usage_vector))
            if unknown:
                raise PricingError(f"usage names counters the offer does not bill: {unknown}")
            amounts = [_usage(usage.get(c, 0), c) for c in self.usage_vector]
        else:
            if isinstance(usage, str | bytes) or len(usage) != len(self.usage_vector):
                raise PricingError(
                    f"usage must give {len(self.usage_vector)} counters "
                    f"{list(self.usage_vector)}, got {usage!r}"
                )
            amounts = [_usage(u, c) for u, c in zip(usage, self.usage_vector, strict=True)]
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            total = self.start_price + sum(
                (p * u for p, u in zip(self.prices, amounts, strict=True)), Decimal(0)
            )
            return total.quantize(_TOKEN_QUANTUM, rounding=ROUND_CEILING)

    def max_cost(
        self,
        duration_s: float,
        cpu_threads: int,
        *,
        other_usage: Mapping[str, float] | None = None,
    ) -> Decimal:
        """An upper bound of the cost of ``duration_s`` of wall time on ``cpu_threads`` threads.

        Wall time bounds ``duration_sec`` (= t) and ``cpu_sec`` (<= t · threads). Other counters
        (storage, memory) cannot be bounded by time, so a priced one must be given in
        ``other_usage``; a free one (price 0) needs nothing.
        """
        arguments.number("duration_s", duration_s, ge=0, error=PricingError)
        arguments.whole("cpu_threads", cpu_threads, ge=1, error=PricingError)
        given = dict(other_usage or {})
        for counter in (DURATION_SEC, CPU_SEC):
            if counter in given:
                raise PricingError(f"other_usage must not give {counter}: it follows from time")
        usage: dict[str, float] = {DURATION_SEC: duration_s, CPU_SEC: duration_s * cpu_threads}
        for counter, price in zip(self.usage_vector, self.prices, strict=True):
            if counter in usage:
                continue
            if counter in given:
                usage[counter] = given.pop(counter)
            elif price > 0:
                raise PricingError(
                    f"counter {counter} is priced but cannot be bounded by time: "
                    "give its maximum usage in other_usage"
                )
        if given:
            unbilled = sorted(given)
            raise PricingError(f"other_usage names counters the offer does not bill: {unbilled}")
        billed = {c: u for c, u in usage.items() if c in self.usage_vector}
        return self.cost(billed)
