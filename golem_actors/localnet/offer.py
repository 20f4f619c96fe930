"""What a localnet provider offers, how it answers a demand, and what it charges. Pure code.

The offer carries the properties a real Golem provider publishes (``ya-provider`` with the ``vm``
runtime), with the anchors' defaults (subnet ``public``, platform ``erc20-holesky-tglm``), so any
stock Golem requestor finds localnet's providers. Pricing is linear pay-per-use: the coefficients
follow ``golem.com.usage.vector`` and the last one is the start price, as in yapapi's ``ComLinear``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from golem_actors import arguments
from golem_actors.localnet import constraints
from golem_actors.localnet.manifest import manifest_problem

__all__ = [
    "ACCEPT_TIMEOUT",
    "DEBIT_NOTE_INTERVAL",
    "PAYMENT_TIMEOUT",
    "USAGE_VECTOR",
    "ProposalDecision",
    "ProviderSpec",
    "agreed_terms",
    "agreement_problem",
    "amount_due",
    "decide",
]

USAGE_VECTOR = ("golem.usage.duration_sec", "golem.usage.cpu_sec")
DEBIT_NOTE_INTERVAL = "golem.com.scheme.payu.debit-note.interval-sec?"
PAYMENT_TIMEOUT = "golem.com.scheme.payu.payment-timeout-sec?"
ACCEPT_TIMEOUT = "golem.com.payment.debit-notes.accept-timeout?"
EXPIRATION = "golem.srv.comp.expiration"
CHOSEN_PLATFORM = "golem.com.payment.chosen-platform"


@dataclass(frozen=True)
class ProviderSpec:
    """One provider node: resources, prices, payment terms. Validated on construction."""

    name: str
    cpu_threads: int = 2
    mem_gib: float = 4.0
    storage_gib: float = 20.0
    price_duration_sec: Decimal = Decimal("0.00002")  # GLM per second of activity
    price_cpu_sec: Decimal = Decimal("0.0001")  # GLM per cpu-second used
    start_price: Decimal = Decimal("0.001")  # GLM per activity
    subnet: str = "public"
    payment_platform: str = "erc20-holesky-tglm"
    debit_note_interval: float = 120.0  # seconds between debit notes
    min_debit_note_interval: float = 1.0  # the shortest interval a demand may ask for
    payment_timeout: float = 43200.0  # seconds a payable debit note may stay unpaid
    accept_timeout: float = 120.0  # seconds a debit note may stay unaccepted
    max_agreements: int = 100
    capabilities: tuple[str, ...] = ("vpn", "inet", "manifest-support", "start-entrypoint")
    runtime_version: str = "0.4.2"
    extra_properties: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() for c in self.name):
            raise ValueError(f"provider name must be non-empty without spaces, got {self.name!r}")
        self._check_words()
        self._check_numbers()
        for what in ("price_duration_sec", "price_cpu_sec", "start_price"):
            object.__setattr__(self, what, self._price(what))

    def _check_words(self) -> None:
        for what in ("subnet", "payment_platform"):
            value = getattr(self, what)
            if not value or any(c.isspace() or c in "()=<>~[]$*&|!" for c in value):
                raise ValueError(f"{self.name}: {what} must be a plain word, got {value!r}")

    def _check_numbers(self) -> None:
        for what in ("cpu_threads", "max_agreements"):
            arguments.whole(f"{self.name}: {what}", getattr(self, what), ge=1)
        positive = ("mem_gib", "storage_gib", "debit_note_interval", "min_debit_note_interval")
        for what in (*positive, "accept_timeout", "payment_timeout"):
            arguments.number(f"{self.name}: {what}", getattr(self, what), gt=0)

    def _price(self, what: str) -> Decimal:
        raw = getattr(self, what)
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            raise ValueError(f"{self.name}: {what} is not a number: {raw!r}") from None
        if not value.is_finite() or value < 0:
            raise ValueError(f"{self.name}: {what} must be a price >= 0, got {value}")
        return value

    @property
    def coefficients(self) -> list[float]:
        """``golem.com.pricing.model.linear.coeffs``: per usage counter, then the start price."""
        return [float(self.price_duration_sec), float(self.price_cpu_sec), float(self.start_price)]

    def offer_properties(self, node_id: str) -> dict[str, Any]:
        """The offer's flat properties, as ``ya-provider`` publishes them."""
        return {
            "golem.node.id.name": self.name,
            "golem.node.debug.subnet": self.subnet,
            "golem.inf.cpu.threads": self.cpu_threads,
            "golem.inf.cpu.cores": max(1, self.cpu_threads // 2),
            "golem.inf.cpu.architecture": "x86_64",
            "golem.inf.mem.gib": self.mem_gib,
            "golem.inf.storage.gib": self.storage_gib,
            "golem.runtime.name": "vm",
            "golem.runtime.version": self.runtime_version,
            "golem.runtime.capabilities": list(self.capabilities),
            "golem.com.scheme": "payu",
            "golem.com.pricing.model": "linear",
            "golem.com.pricing.model.linear.coeffs": self.coefficients,
            "golem.com.usage.vector": list(USAGE_VECTOR),
            f"golem.com.payment.platform.{self.payment_platform}.address": node_id,
            "golem.com.payment.protocol.version": "3",
            DEBIT_NOTE_INTERVAL: self.debit_note_interval,
            PAYMENT_TIMEOUT: self.payment_timeout,
            ACCEPT_TIMEOUT: self.accept_timeout,
            "golem.srv.caps.multi-activity": True,
            "golem.srv.caps.payload-manifest": True,
            "golem.activity.caps.transfer.protocol": ["gftp", "https", "http"],  # as exe-units say
            **self.extra_properties,
        }

    def offer_constraints(self) -> str:
        """What the provider requires of demands: an expiration, and its own subnet."""
        return f"(&({EXPIRATION}>0)(golem.node.debug.subnet={self.subnet}))"


@dataclass(frozen=True)
class ProposalDecision:
    """How to answer a demand: counter with ``properties``, or reject for ``reason``."""

    accept: bool
    reason: str = ""
    properties: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def reject(cls, reason: str) -> ProposalDecision:
        return cls(accept=False, reason=reason)

    @classmethod
    def counter(cls, properties: Mapping[str, Any]) -> ProposalDecision:
        return cls(accept=True, properties=properties)


def agreed_terms(spec: ProviderSpec, demand: Mapping[str, Any]) -> dict[str, float]:
    """The payment terms a demand asks for, clamped to what the provider allows.

    A requestor may ask for a shorter debit-note interval (down to ``min_debit_note_interval``) and
    shorter accept/payment timeouts; it cannot stretch them beyond the provider's own.
    """

    def ask(key: str, ours: float, low: float) -> float:
        value = demand.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(min(max(value, low), ours))
        return ours

    return {
        DEBIT_NOTE_INTERVAL: ask(
            DEBIT_NOTE_INTERVAL, spec.debit_note_interval, spec.min_debit_note_interval
        ),
        PAYMENT_TIMEOUT: ask(PAYMENT_TIMEOUT, spec.payment_timeout, 1.0),
        ACCEPT_TIMEOUT: ask(ACCEPT_TIMEOUT, spec.accept_timeout, 1.0),
    }


def decide(  # noqa: PLR0911 - one early return per reason to reject
    spec: ProviderSpec,
    node_id: str,
    demand_properties: Mapping[str, Any],
    demand_constraints: str,
    *,
    now_ms: float,
) -> ProposalDecision:
    """Accept a demand (and say what to counter with) or reject it, naming why."""
    demand = constraints.flatten_properties(demand_properties)
    ours = spec.offer_properties(node_id)
    try:
        if not constraints.matches(demand_constraints, ours):
            return ProposalDecision.reject("the demand's constraints do not match this offer")
    except constraints.ConstraintSyntaxError as exc:
        return ProposalDecision.reject(f"malformed demand constraints: {exc}")
    expiration = demand.get(EXPIRATION)
    if not isinstance(expiration, int | float) or expiration <= now_ms:
        why = f"{EXPIRATION} must be a future time in ms, got {expiration!r}"
        return ProposalDecision.reject(why)
    subnet = demand.get("golem.node.debug.subnet")
    if subnet != spec.subnet:
        return ProposalDecision.reject(f"subnet {subnet!r} is not this provider's {spec.subnet!r}")
    if not constraints.matches(spec.offer_constraints(), demand):
        return ProposalDecision.reject(
            f"the demand does not meet this provider's constraints {spec.offer_constraints()}"
        )
    chosen = demand.get(CHOSEN_PLATFORM)
    if chosen is not None and chosen != spec.payment_platform:
        return ProposalDecision.reject(f"payment platform {chosen!r} is not offered")
    if f"golem.com.payment.platform.{spec.payment_platform}.address" not in demand:
        return ProposalDecision.reject(f"the demand has no address on {spec.payment_platform}")
    if problem := manifest_problem(demand):
        return ProposalDecision.reject(problem)
    return ProposalDecision.counter({**ours, **agreed_terms(spec, demand)})


def agreement_problem(demand_properties: Mapping[str, Any], *, now_ms: float) -> str | None:
    """Why the provider will not approve an agreement now, or None.

    ya-provider runs its negotiators again on the agreement: a demand whose expiration passed
    since the draft was made (a requestor still holding old drafts) is refused, not approved.
    """
    expiration = constraints.flatten_properties(demand_properties).get(EXPIRATION)
    if not isinstance(expiration, int | float) or expiration <= now_ms:
        return f"the demand's {EXPIRATION} ({expiration!r}) has passed"
    return None


def amount_due(coefficients: Sequence[float], usage: Sequence[float]) -> Decimal:
    """start price + coefficients · usage, rounded to 18 decimals (the token's precision)."""
    *per_unit, start = (Decimal(str(c)) for c in coefficients)
    if len(per_unit) != len(usage):
        raise ValueError(f"{len(usage)} usage counters for {len(per_unit)} price coefficients")
    with localcontext() as ctx:
        ctx.prec = 60  # 18 decimals on top of any realistic amount, never InvalidOperation
        terms = (p * Decimal(str(u)) for p, u in zip(per_unit, usage, strict=True))
        total = start + sum(terms, Decimal(0))
        return total.quantize(Decimal("1e-18")).normalize()
