"""Build the demand we subscribe on the market: properties and one constraint string. Pure code.

What goes in, and why (yapapi ``engine.create_demand_builder`` + strategy + payload decorators;
golem-js basic/workload/payment demand directors):

- ``golem.srv.comp.expiration`` (ms since the epoch) and ``golem.srv.caps.multi-activity``, and
  the subnet as both a property and a constraint, so we only meet providers of our subnet;
- the payload's task package and its resource constraints;
- ``(golem.com.pricing.model=linear)``: the scorers only understand linear pricing;
- the payment decoration yagna gives for our allocation (``GET /demandDecorations``): the
  platform address property and its constraints. Building fails if it has no address on our
  platform, since no provider would ever be paid;
- the negotiable payment terms (GAP-3). The debit-note interval and accept timeout are always
  asked for, as golem-js does (GAP-3 encourages the interval even without mid-agreement
  payments). The payment timeout, which is what turns on mid-agreement payments, is asked for only
  when ``payment_timeout_s`` is set, and must fit in the expiration: yapapi enables MAP only when
  the agreement outlives the payment timeout, since otherwise no payable note is ever due.
  ``payment_timeout_for(AUTO, expiration)`` is the default a session uses: mid-agreement payments
  for demands of 5 h and more (yapapi's threshold; ya-provider insists from 10 h on), with
  golem-js's 12 h timeout but never more than half the agreement, so payable notes fall due in it;
- a demand is published anew ``renewal_times`` into its life (a margin before it expires), so a
  service running for days still finds offers: a provider refuses an expired demand.

``golem.com.payment.chosen-platform`` is *not* part of the demand: both yapapi and golem-js put it
into the counter-proposal (see ``negotiation.counter_properties``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from golem_actors.errors import GolemActorsError
from golem_actors.policy.payload import ImageResolver, VmPayload, no_resolver
from golem_actors.policy.pricing import PRICING_MODEL

__all__ = [
    "ACCEPT_TIMEOUT",
    "AUTO",
    "CHOSEN_PLATFORM",
    "DEBIT_NOTE_INTERVAL",
    "DEFAULT_EXPIRATION",
    "EXPIRATION",
    "MULTI_ACTIVITY",
    "PAYMENT_TIMEOUT",
    "SUBNET",
    "Demand",
    "DemandError",
    "DemandSpec",
    "build_demand",
    "payment_timeout_for",
    "platform_address_property",
    "renewal_times",
]

EXPIRATION: Final = "golem.srv.comp.expiration"
MULTI_ACTIVITY: Final = "golem.srv.caps.multi-activity"
SUBNET: Final = "golem.node.debug.subnet"
CHOSEN_PLATFORM: Final = "golem.com.payment.chosen-platform"
DEBIT_NOTE_INTERVAL: Final = "golem.com.scheme.payu.debit-note.interval-sec?"
PAYMENT_TIMEOUT: Final = "golem.com.scheme.payu.payment-timeout-sec?"
ACCEPT_TIMEOUT: Final = "golem.com.payment.debit-notes.accept-timeout?"

# yapapi's service default: just under ya-provider's default 3 h cap on agreement expiration.
DEFAULT_EXPIRATION: Final = timedelta(minutes=175)
# The terms are uint32 seconds on the wire (GAP-3).
_UINT32_MAX: Final = 2**32 - 1
_NOT_IN_WORD: Final = frozenset("()=<>~[]$*&|!\\")
# What a property name may not hold: the filter syntax, quotes and whitespace.
_NOT_IN_NAME: Final = frozenset("()=<>~[]$*&|\\\"',")
AUTO: Final = "auto"
#: Mid-agreement payments are asked for by default from this expiration on (yapapi's threshold).
MAP_FROM: Final = timedelta(hours=5)
#: golem-js's payment timeout (``midAgreementPaymentTimeoutSec``).
DEFAULT_PAYMENT_TIMEOUT_S: Final = 12 * 3600
#: A demand is renewed this long before it expires (a quarter of its life when that is shorter).
RENEW_MARGIN: Final = timedelta(minutes=10)


class DemandError(GolemActorsError, ValueError):
    """A demand cannot be built from these inputs; the message names the field."""


def platform_address_property(platform: str) -> str:
    """The property holding a party's address on a payment platform."""
    return f"golem.com.payment.platform.{platform}.address"


def _word(value: Any, what: str) -> str:
    if (
        not isinstance(value, str)
        or not value
        or any(c.isspace() or c in _NOT_IN_WORD for c in value)
    ):
        raise DemandError(
            f"{what} must be a plain word (no spaces or ()=<>~[]$*&|!), got {value!r}"
        )
    return value


def _seconds(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _UINT32_MAX:
        raise DemandError(f"{what} must be a whole number of seconds >= 1, got {value!r}")
    return value


def payment_timeout_for(asked: int | str | None, expiration: timedelta) -> int | None:
    """The payment timeout to ask for: ``asked``, or for ``AUTO`` the default for this life."""
    if not isinstance(asked, str):
        return asked  # whole seconds or None: DemandSpec checks which
    if asked != AUTO:
        raise DemandError(
            f"payment_timeout_s must be a whole number of seconds, None or {AUTO!r}, got {asked!r}"
        )
    if not isinstance(expiration, timedelta) or expiration < MAP_FROM:
        return None
    return min(DEFAULT_PAYMENT_TIMEOUT_S, math.floor(expiration.total_seconds() / 2))


def renewal_times(lifetime_s: float) -> tuple[float, float]:
    """For a demand lasting ``lifetime_s``: when into its life it is published anew, and how long
    after that the old one expires (``RENEW_MARGIN``, or a quarter of its life if shorter)."""
    margin = min(RENEW_MARGIN.total_seconds(), lifetime_s / 4)
    return lifetime_s - margin, margin


def _property_name(key: Any) -> str:
    if (
        not isinstance(key, str)
        or not key
        or any(c.isspace() or c in _NOT_IN_NAME for c in key)
        or "" in key.split(".")
    ):
        raise DemandError(
            f"extra_properties key must be a dotted name like golem.node.id.name "
            f"(no spaces, quotes or ()=<>~[]$*&|), got {key!r}"
        )
    return key


def _property_value(key: str, value: Any) -> None:
    """yagna carries strings, numbers, booleans and lists of them; None and {} are no values."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, float) and not math.isfinite(item):
            raise DemandError(f"extra_properties[{key!r}] must be a finite number, got {item!r}")
        if not isinstance(item, str | int | float | bool):
            raise DemandError(
                f"extra_properties[{key!r}] must be a string, number, bool or a list of them, "
                f"got {value!r}"
            )


def _check_constraint(text: Any, what: str) -> str:
    """A cheap shape check: one parenthesized filter with balanced parentheses."""
    if not isinstance(text, str):
        raise DemandError(f"{what} must be a string, got {text!r}")
    stripped = text.strip()
    depth = 0
    for i, c in enumerate(stripped):
        depth += (c == "(") - (c == ")")
        if depth < 0 or (depth == 0 and i < len(stripped) - 1):
            break
    else:
        if stripped.startswith("(") and depth == 0:
            return stripped
    raise DemandError(f"{what} must be one parenthesized filter like (a=b), got {text!r}")


@dataclass(frozen=True)
class Demand:
    """A demand ready for ``POST /market-api/v1/demands``: flat properties and one filter."""

    properties: dict[str, Any]
    constraints: str


@dataclass(frozen=True)
class DemandSpec:
    """What we ask the market for; validated on construction."""

    payload: VmPayload
    subnet: str = "public"
    expiration: timedelta = DEFAULT_EXPIRATION
    payment_platform: str = "erc20-holesky-tglm"
    debit_note_interval_s: int = 120
    payment_timeout_s: int | None = None
    debit_note_accept_timeout_s: int = 120
    multi_activity: bool = True
    extra_properties: Mapping[str, Any] = field(default_factory=dict)
    extra_constraints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.payload, VmPayload):
            raise DemandError(f"payload must be a VmPayload, got {type(self.payload).__name__}")
        _word(self.subnet, "subnet")
        _word(self.payment_platform, "payment_platform")
        if not isinstance(self.expiration, timedelta) or self.expiration <= timedelta(0):
            raise DemandError(f"expiration must be a positive timedelta, got {self.expiration!r}")
        self._check_terms()
        if not isinstance(self.multi_activity, bool):
            raise DemandError(f"multi_activity must be a bool, got {self.multi_activity!r}")
        self._check_extras()

    def _check_terms(self) -> None:
        lifetime = self.expiration.total_seconds()
        interval = _seconds(self.debit_note_interval_s, "debit_note_interval_s")
        _seconds(self.debit_note_accept_timeout_s, "debit_note_accept_timeout_s")
        if interval > lifetime:
            raise DemandError(
                f"debit_note_interval_s ({interval}) must not exceed the expiration "
                f"({lifetime:g} s): no debit note would ever come"
            )
        if self.payment_timeout_s is not None:
            timeout = _seconds(self.payment_timeout_s, "payment_timeout_s")
            if timeout > lifetime:
                raise DemandError(
                    f"payment_timeout_s ({timeout}) must not exceed the expiration "
                    f"({lifetime:g} s): no payable debit note would ever be due"
                )

    def _check_extras(self) -> None:
        if not isinstance(self.extra_properties, Mapping):
            raise DemandError("extra_properties must be a mapping of property names to values")
        for key, value in self.extra_properties.items():
            _property_value(_property_name(key), value)
        object.__setattr__(self, "extra_properties", dict(self.extra_properties))
        given: object = self.extra_constraints
        if isinstance(given, str) or not isinstance(given, list | tuple):
            raise DemandError("extra_constraints must be a tuple (or list) of filters")
        extra = tuple(_check_constraint(c, f"extra_constraints[{i}]") for i, c in enumerate(given))
        object.__setattr__(self, "extra_constraints", extra)

    @property
    def mid_agreement_payments(self) -> bool:
        """Do we ask for payable debit notes (a payment timeout)?"""
        return self.payment_timeout_s is not None

    def expires_at(self, now: datetime) -> datetime:
        if not isinstance(now, datetime) or now.tzinfo is None:
            raise DemandError(f"now must be a timezone-aware datetime, got {now!r}")
        return now + self.expiration

    def payment_terms(self) -> dict[str, int]:
        """The negotiable payment properties we open with."""
        terms = {
            DEBIT_NOTE_INTERVAL: self.debit_note_interval_s,
            ACCEPT_TIMEOUT: self.debit_note_accept_timeout_s,
        }
        if self.payment_timeout_s is not None:
            terms[PAYMENT_TIMEOUT] = self.payment_timeout_s
        return terms


def _merge(into: dict[str, Any], more: Mapping[str, Any], source: str) -> None:
    """Add properties; a key already set to a *different* value is a conflict, never overwritten."""
    for key, value in more.items():
        if not isinstance(key, str) or not key:
            raise DemandError(f"{source} has a property with a bad name: {key!r}")
        if key in into and into[key] != value:
            raise DemandError(
                f"{source} sets {key} to {value!r}, but the demand already has {into[key]!r}"
            )
        into[key] = value


def build_demand(
    spec: DemandSpec,
    *,
    now: datetime,
    decoration_properties: Mapping[str, Any],
    decoration_constraints: Sequence[str],
    image_resolver: ImageResolver = no_resolver,
) -> Demand:
    """The demand for ``spec`` at time ``now`` with our allocation's payment decoration."""
    expires = spec.expires_at(now)
    spec.payload.check_manifest(now)
    props: dict[str, Any] = {
        EXPIRATION: int(expires.timestamp() * 1000),
        SUBNET: spec.subnet,
    }
    if spec.multi_activity:
        props[MULTI_ACTIVITY] = True
    props.update(spec.payment_terms())
    _merge(props, spec.payload.properties(image_resolver), "the payload")
    if not isinstance(decoration_properties, Mapping):
        raise DemandError("decoration_properties must be a mapping (the payment decoration)")
    _merge(props, decoration_properties, "the payment decoration")
    address = platform_address_property(spec.payment_platform)
    if address not in props:
        raise DemandError(
            f"the payment decoration has no {address}: the allocation is not on "
            f"payment_platform {spec.payment_platform!r}"
        )
    _merge(props, spec.extra_properties, "extra_properties")

    if isinstance(decoration_constraints, str):
        raise DemandError("decoration_constraints must be a sequence of filters, not one string")
    decorations = [
        _check_constraint(c, f"decoration_constraints[{i}]")
        for i, c in enumerate(decoration_constraints)
    ]
    parts = [
        *spec.payload.constraints(),
        f"({SUBNET}={spec.subnet})",
        f"({PRICING_MODEL}=linear)",
        *decorations,
        *spec.extra_constraints,
    ]
    unique = list(dict.fromkeys(parts))  # the decoration may repeat ours; keep the first
    return Demand(properties=props, constraints="(&" + "".join(unique) + ")")
