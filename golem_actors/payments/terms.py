"""What an agreement lets a provider charge, and what usage a bill can truthfully claim.

Pure policy, the price half of the payment books (:mod:`golem_actors.payments.ledger` is the
ledger half). What a provider may charge is bounded by the agreed linear prices and wall time,
never by the provider's own word: an activity cannot have run longer than since the requestor
asked for it, and cannot have used more cpu than ``cpu_threads`` per second of it. A debit note
that states a usage vector must also cost what that usage costs.

Payable debit notes (mid-agreement payments) are not rate-limited against the payment timeout:
the money is bounded by the amount checks whatever the cadence, and localnet's provider marks
every debit note payable once the interval was negotiated, so such a rule would refuse honest
notes there.

Amounts are Decimal with :data:`PREC` digits, so 18 decimals of GLM are never rounded away.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from types import MappingProxyType

from golem_actors import arguments
from golem_actors.policy.negotiation import agreed_terms
from golem_actors.policy.pricing import CPU_SEC, DURATION_SEC
from golem_actors.yagna.models import Agreement

__all__ = [
    "Grace",
    "Terms",
    "check_frequency",
    "check_usage",
    "parse_usage",
    "terms_of",
]

_TIME_BOUND_COUNTERS = frozenset({DURATION_SEC, CPU_SEC})
PREC = 60  # digits: 18 decimals of GLM on top of any realistic amount, never rounded away
ZERO = Decimal(0)


@dataclass(frozen=True)
class Terms:
    """What an agreement lets the provider charge: linear prices and the payment cadence.

    ``prices`` maps each counter of ``usage_vector`` to its price per unit (GLM). Only time-bound
    counters (``golem.usage.duration_sec``, ``golem.usage.cpu_sec``) may have a non-zero price:
    for any other counter wall time gives no upper bound, so the books could not tell an honest
    bill from an overcharge, and such terms are refused here, before any money is committed.
    ``payment_timeout_s`` is carried for the caller; payable notes are not rate-limited here (see
    the module docstring).
    """

    prices: Mapping[str, Decimal]
    usage_vector: tuple[str, ...]
    start_price: Decimal
    cpu_threads: int
    debit_note_interval_s: float | None = None
    accept_timeout_s: float | None = None
    payment_timeout_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "usage_vector", tuple(self.usage_vector))
        object.__setattr__(self, "prices", MappingProxyType(dict(self.prices)))
        if len(set(self.usage_vector)) != len(self.usage_vector):
            raise ValueError(f"usage_vector names a counter twice: {list(self.usage_vector)}")
        missing = [c for c in self.usage_vector if c not in self.prices]
        extra = [c for c in self.prices if c not in self.usage_vector]
        if missing or extra:
            raise ValueError(
                f"prices must name exactly the usage_vector counters: "
                f"missing {missing}, not in usage_vector {extra}"
            )
        for counter, price in self.prices.items():
            check_money(f"price of {counter}", price)
            if price and counter not in _TIME_BOUND_COUNTERS:
                raise ValueError(
                    f"price of {counter} is {price}: only {sorted(_TIME_BOUND_COUNTERS)} "
                    "may be priced, other counters have no upper bound to check a bill against"
                )
        check_money("start_price", self.start_price)
        arguments.whole("cpu_threads", self.cpu_threads, ge=1)
        arguments.optional_number("debit_note_interval_s", self.debit_note_interval_s, gt=0)
        arguments.optional_number("accept_timeout_s", self.accept_timeout_s, gt=0)
        arguments.optional_number("payment_timeout_s", self.payment_timeout_s, gt=0)

    def price(self, counter: str) -> Decimal:
        return self.prices.get(counter, ZERO)

    def cost(self, usage: Sequence[Decimal]) -> Decimal:
        """start price + prices · usage: what an honest provider bills for this usage vector."""
        if len(usage) != len(self.usage_vector):
            raise ValueError(f"{len(usage)} usage counters for {len(self.usage_vector)}")
        with localcontext() as ctx:
            ctx.prec = PREC
            terms = (self.prices[c] * u for c, u in zip(self.usage_vector, usage, strict=True))
            return self.start_price + sum(terms, ZERO)

    def max_activity_cost(self, seconds: Decimal) -> Decimal:
        """The most one activity can cost after ``seconds``: all threads busy all the time."""
        with localcontext() as ctx:
            ctx.prec = PREC
            rate = self.price(DURATION_SEC) + self.price(CPU_SEC) * self.cpu_threads
            return self.start_price + rate * max(seconds, ZERO)


def terms_of(agreement: Agreement) -> Terms:
    """The payment terms of an approved agreement, in the ledger's shape."""
    agreed = agreed_terms(agreement.demand.properties, agreement.offer.properties)
    pricing = agreed.pricing
    threads: object = agreement.offer.properties.get("golem.inf.cpu.threads", 1)
    return Terms(
        prices=pricing.price_by_counter,
        usage_vector=pricing.usage_vector,
        start_price=pricing.start_price,
        cpu_threads=int(threads) if isinstance(threads, int | float) and threads >= 1 else 1,
        debit_note_interval_s=agreed.debit_note_interval_s,
        accept_timeout_s=agreed.accept_timeout_s,
        payment_timeout_s=agreed.payment_timeout_s,
    )


@dataclass(frozen=True)
class Grace:
    """Tolerances, so clock skew, delivery delay and rounding never refuse an honest bill.

    ``seconds`` is added to every wall-time bound (the provider's clock and its usage reports run
    a little apart from ours). ``amount`` absorbs rounding (providers compute in floats, yagna
    keeps 18 decimals). ``extra_notes`` is how many debit notes beyond the interval's schedule an
    activity may send (a first early one, a final one on destroy: yapapi#1014).
    """

    seconds: float = 30.0
    amount: Decimal = Decimal("1e-9")
    extra_notes: int = 2

    def __post_init__(self) -> None:
        arguments.number("Grace.seconds", self.seconds, ge=0)
        check_money("grace amount", self.amount)
        arguments.whole("Grace.extra_notes", self.extra_notes, ge=0)


def parse_usage(raw: object) -> tuple[Decimal, ...] | None:
    """A usage counter vector from yagna's JSON (a list of numbers) as Decimals, or None.

    Entries that are not numbers become NaN rather than raising, so a malformed vector is refused
    as implausible instead of crashing the payment actor.
    """
    if raw is None:
        return None
    if not isinstance(raw, list | tuple):
        return (Decimal("NaN"),)
    return tuple(_usage_entry(x) for x in raw)


def _usage_entry(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return Decimal("NaN")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal("NaN")


def check_usage(
    terms: Terms, usage: Sequence[Decimal] | None, seconds: Decimal, grace: Grace
) -> str | None:
    """Why a debit note's usage vector cannot be true after ``seconds``, or None if it can."""
    if usage is None:
        return None
    if len(usage) != len(terms.usage_vector):
        return f"usage vector has {len(usage)} counters, the agreement {len(terms.usage_vector)}"
    for counter, value in zip(terms.usage_vector, usage, strict=True):
        if not value.is_finite() or value < 0:
            return f"{counter} = {value} is not a non-negative number"
    named = dict(zip(terms.usage_vector, usage, strict=True))
    duration = named.get(DURATION_SEC)
    if duration is not None and duration > seconds:
        return f"{DURATION_SEC} = {duration} but the activity is at most {secs(seconds)} s old"
    cpu = named.get(CPU_SEC)
    if cpu is not None:
        wall = min(duration + grace_seconds(grace), seconds) if duration is not None else seconds
        limit = wall * terms.cpu_threads
        if cpu > limit:
            return f"{CPU_SEC} = {cpu} exceeds {terms.cpu_threads} threads for {secs(wall)} s"
    return None


def check_frequency(
    terms: Terms, notes: int, seconds: Decimal, grace: Grace, activity_id: str
) -> str | None:
    """Refuse only notes well beyond the agreed cadence (yapapi#1014 killed honest ones).

    ``notes`` counts the activity's distinct debit notes seen so far, this one included.
    """
    interval = terms.debit_note_interval_s
    if interval is None:
        return None
    allowed = 1 + grace.extra_notes + math.floor(seconds / to_decimal(interval))
    if notes <= allowed:
        return None
    return (
        f"debit note {notes} for activity {activity_id} after {secs(seconds)} s; "
        f"an interval of {interval} s allows at most {allowed}"
    )


def to_seconds(delta: dt.timedelta) -> Decimal:
    """A timedelta in seconds, exactly, floored at 0."""
    exact = Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6)
    return max(exact, ZERO)


def grace_seconds(grace: Grace) -> Decimal:
    return to_decimal(grace.seconds)


def to_decimal(seconds: float) -> Decimal:
    return Decimal(str(seconds))


def check_money(name: str, value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a finite non-negative Decimal, got {value!r}")


def glm(amount: Decimal) -> str:
    return f"{amount.normalize():f}" if amount else "0"


def secs(seconds: Decimal) -> str:
    return f"{seconds.quantize(Decimal('0.001')).normalize():f}"
