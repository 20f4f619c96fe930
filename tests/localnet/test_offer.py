"""The provider's offer, its answer to a demand, and its prices. Pure code: no yagna needed."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from golem_actors.localnet import constraints
from golem_actors.localnet.offer import (
    ACCEPT_TIMEOUT,
    DEBIT_NOTE_INTERVAL,
    PAYMENT_TIMEOUT,
    USAGE_VECTOR,
    ProviderSpec,
    agreed_terms,
    amount_due,
    decide,
)

NODE_ID = "0x7f3c1e2d4b5a69788796a5b4c3d2e1f001122334"
REQUESTOR_ID = "0x1111111111111111111111111111111111111111"
PLATFORM = "erc20-holesky-tglm"
ADDRESS = f"golem.com.payment.platform.{PLATFORM}.address"
EXPIRATION = "golem.srv.comp.expiration"
CHOSEN = "golem.com.payment.chosen-platform"
NOW_MS = 1_700_000_000_000.0

# What a yapapi requestor demands (flat, as yagna hands it to a provider) ...
DEMAND: dict[str, Any] = {
    EXPIRATION: int(NOW_MS) + 30 * 60 * 1000,
    "golem.node.debug.subnet": "public",
    ADDRESS: REQUESTOR_ID,
    CHOSEN: PLATFORM,
    "golem.srv.comp.vm.package_format": "gvmkit-squash",
    "golem.srv.comp.task_package": "hash:sha3:9a3b5d:http://girepo.dev.golem.network:8000/x.gvmi",
    "golem.srv.caps.multi-activity": True,
    DEBIT_NOTE_INTERVAL: 30,
    PAYMENT_TIMEOUT: 600,
    ACCEPT_TIMEOUT: 240,
}
# ... and the constraints it puts on offers.
DEMAND_CONSTRAINTS = (
    "(&(golem.inf.mem.gib>=0.5)"
    "(golem.inf.storage.gib>=2.0)"
    "(golem.inf.cpu.threads>=1)"
    "(golem.runtime.name=vm)"
    "(golem.runtime.capabilities=vpn)"
    "(golem.com.scheme=payu)"
    "(golem.com.pricing.model=linear)"
    f"(golem.com.payment.platform.{PLATFORM}.address=*)"
    "(golem.node.debug.subnet=public)"
    f"({ACCEPT_TIMEOUT}<=240)"
    "(golem.srv.caps.multi-activity=true))"
)


def spec(**overrides: Any) -> ProviderSpec:
    return ProviderSpec("provider-1", **overrides)


# --- ProviderSpec validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "provider 1"}, "name"),
        ({"name": "provider\t1"}, "name"),
        ({"name": "provider-1\n"}, "name"),
        ({"cpu_threads": 0}, "cpu_threads"),
        ({"cpu_threads": -2}, "cpu_threads"),
        ({"mem_gib": 0}, "mem_gib"),
        ({"mem_gib": 0.0}, "mem_gib"),
        ({"mem_gib": -4.0}, "mem_gib"),
        ({"mem_gib": math.nan}, "mem_gib"),
        ({"mem_gib": math.inf}, "mem_gib"),
        ({"storage_gib": 0.0}, "storage_gib"),
        ({"storage_gib": math.nan}, "storage_gib"),
        ({"debit_note_interval": 0.0}, "debit_note_interval"),
        ({"debit_note_interval": -120.0}, "debit_note_interval"),
        ({"debit_note_interval": math.nan}, "debit_note_interval"),
        ({"accept_timeout": 0.0}, "accept_timeout"),
        ({"accept_timeout": math.inf}, "accept_timeout"),
        ({"price_duration_sec": Decimal(-1)}, "price_duration_sec"),
        ({"price_cpu_sec": Decimal("NaN")}, "price_cpu_sec"),
        ({"price_cpu_sec": Decimal("-0.0001")}, "price_cpu_sec"),
        ({"start_price": Decimal("-0.001")}, "start_price"),
        ({"start_price": Decimal("Infinity")}, "start_price"),
        ({"max_agreements": 0}, "max_agreements"),
    ],
)
def test_spec_rejects_bad_values_naming_the_field(kwargs: dict[str, Any], field: str):
    with pytest.raises(ValueError, match=field):
        ProviderSpec(**{"name": "provider-1", **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        # Published in the offer and the upper bound of agreed_terms: a negative or NaN timeout
        # would be offered and agreed as is.
        ({"payment_timeout": 0.0}, "payment_timeout"),
        ({"payment_timeout": -1.0}, "payment_timeout"),
        ({"payment_timeout": math.nan}, "payment_timeout"),
        # The floor of the debit-note interval a demand may ask for: with 0 a demand can agree
        # to a debit note every millisecond.
        ({"min_debit_note_interval": 0.0}, "min_debit_note_interval"),
        ({"min_debit_note_interval": -1.0}, "min_debit_note_interval"),
        ({"min_debit_note_interval": math.nan}, "min_debit_note_interval"),
        # Both go into constraint text or property names; subnet "a)b" makes decide() raise.
        ({"subnet": ""}, "subnet"),
        ({"subnet": "a)b"}, "subnet"),
        ({"payment_platform": ""}, "payment_platform"),
    ],
)
def test_spec_rejects_bad_payment_terms_and_identifiers(kwargs: dict[str, Any], field: str):
    with pytest.raises(ValueError, match=field):
        ProviderSpec(**{"name": "provider-1", **kwargs})


def test_spec_accepts_edge_values():
    free = spec(price_duration_sec=Decimal(0), price_cpu_sec=Decimal(0), start_price=Decimal(0))
    assert free.coefficients == [0.0, 0.0, 0.0]
    tiny = spec(cpu_threads=1, mem_gib=0.25, storage_gib=1, max_agreements=1)
    assert tiny.cpu_threads == 1
    assert tiny.offer_properties(NODE_ID)["golem.inf.cpu.cores"] == 1


def test_spec_prices_are_decimals_and_coefficients_follow_the_usage_vector():
    s = spec(
        price_duration_sec=Decimal("0.00003"),
        price_cpu_sec=Decimal("0.0002"),
        start_price=Decimal("0.005"),
    )
    assert isinstance(s.price_duration_sec, Decimal)
    assert s.coefficients == [0.00003, 0.0002, 0.005]
    assert len(s.coefficients) == len(USAGE_VECTOR) + 1


# --- the offer ------------------------------------------------------------------------------------


def test_offer_properties_carry_what_a_real_provider_publishes():
    s = spec(cpu_threads=4, mem_gib=8.0, storage_gib=40.0, runtime_version="0.4.2")
    props = s.offer_properties(NODE_ID)
    assert props["golem.node.id.name"] == "provider-1"
    assert props["golem.node.debug.subnet"] == "public"
    assert props["golem.runtime.name"] == "vm"
    assert props["golem.runtime.version"] == "0.4.2"
    assert "vpn" in props["golem.runtime.capabilities"]
    assert props["golem.inf.cpu.threads"] == 4
    assert props["golem.inf.cpu.cores"] == 2
    assert props["golem.inf.cpu.architecture"] == "x86_64"
    assert props["golem.inf.mem.gib"] == 8.0
    assert props["golem.inf.storage.gib"] == 40.0
    assert props["golem.com.scheme"] == "payu"
    assert props["golem.com.pricing.model"] == "linear"
    # coeffs = [per duration second, per cpu second, start], in the order of the usage vector.
    assert props["golem.com.pricing.model.linear.coeffs"] == [0.00002, 0.0001, 0.001]
    assert props["golem.com.usage.vector"] == ["golem.usage.duration_sec", "golem.usage.cpu_sec"]
    assert props[ADDRESS] == NODE_ID
    assert props["golem.com.payment.protocol.version"] == "3"
    assert props[DEBIT_NOTE_INTERVAL] == 120.0
    assert props[PAYMENT_TIMEOUT] == 43200.0
    assert props[ACCEPT_TIMEOUT] == 120.0
    assert props["golem.srv.caps.multi-activity"] is True
    assert props["golem.srv.caps.payload-manifest"] is True
    assert props["golem.activity.caps.transfer.protocol"] == ["gftp", "https", "http"]


def test_offer_properties_follow_the_spec():
    s = spec(
        subnet="devnet-beta",
        payment_platform="erc20-polygon-glm",
        debit_note_interval=60.0,
        payment_timeout=1800.0,
        accept_timeout=90.0,
        extra_properties={"golem.node.geo.country_code": "PL"},
    )
    props = s.offer_properties(NODE_ID)
    assert props["golem.node.debug.subnet"] == "devnet-beta"
    assert props["golem.com.payment.platform.erc20-polygon-glm.address"] == NODE_ID
    assert ADDRESS not in props
    assert props[DEBIT_NOTE_INTERVAL] == 60.0
    assert props[PAYMENT_TIMEOUT] == 1800.0
    assert props[ACCEPT_TIMEOUT] == 90.0
    assert props["golem.node.geo.country_code"] == "PL"
    # yagna cannot carry None or {} as a property value.
    assert all(value is not None and value != {} for value in props.values())


def test_a_typical_demand_and_the_offer_match_both_ways():
    s = spec()
    assert constraints.matches(DEMAND_CONSTRAINTS, s.offer_properties(NODE_ID))
    assert constraints.matches(s.offer_constraints(), DEMAND)
    assert constraints.match_demand_offer(
        DEMAND, DEMAND_CONSTRAINTS, s.offer_properties(NODE_ID), s.offer_constraints()
    )


def test_a_demand_that_needs_vpn_gets_only_offers_with_it():
    """yapapi's ``capabilities=[vm.VM_CAPS_VPN]`` and golem-js's ``capabilities: ["vpn"]`` put
    this constraint on offers; real ya-provider's vm runtime offers inet, vpn,
    manifest-support and start-entrypoint, as localnet's providers do where they can."""
    assert spec().capabilities == ("vpn", "inet", "manifest-support", "start-entrypoint")
    without = spec(capabilities=("inet", "manifest-support", "start-entrypoint"))
    assert not constraints.matches(DEMAND_CONSTRAINTS, without.offer_properties(NODE_ID))
    decision = decide(without, NODE_ID, DEMAND, DEMAND_CONSTRAINTS, now_ms=NOW_MS)
    assert not decision.accept
    assert "constraints do not match" in decision.reason
    no_vpn_asked = DEMAND_CONSTRAINTS.replace("(golem.runtime.capabilities=vpn)", "")
    assert decide(without, NODE_ID, DEMAND, no_vpn_asked, now_ms=NOW_MS).accept
    assert decide(spec(), NODE_ID, DEMAND, DEMAND_CONSTRAINTS, now_ms=NOW_MS).accept


def test_offer_constraints_require_an_expiration_and_our_subnet():
    offer_constraints = spec(subnet="devnet-beta").offer_constraints()
    assert not constraints.matches(offer_constraints, DEMAND)  # subnet public
    assert constraints.matches(
        offer_constraints, {**DEMAND, "golem.node.debug.subnet": "devnet-beta"}
    )
    no_expiration = {k: v for k, v in DEMAND.items() if k != EXPIRATION}
    assert not constraints.matches(spec().offer_constraints(), no_expiration)


# --- decide ---------------------------------------------------------------------------------------


def test_decide_accepts_a_well_formed_demand_and_counters_with_the_agreed_terms():
    s = spec()
    decision = decide(s, NODE_ID, DEMAND, DEMAND_CONSTRAINTS, now_ms=NOW_MS)
    assert decision.accept, decision.reason
    assert decision.reason == ""
    props = dict(decision.properties)
    assert props[DEBIT_NOTE_INTERVAL] == 30.0  # asked for 30, allowed (>= 1)
    assert props[PAYMENT_TIMEOUT] == 600.0  # asked for 600, allowed (<= 43200)
    assert props[ACCEPT_TIMEOUT] == 120.0  # asked for 240, clamped to ours
    offer = s.offer_properties(NODE_ID)
    terms = {DEBIT_NOTE_INTERVAL, PAYMENT_TIMEOUT, ACCEPT_TIMEOUT}
    assert {k: v for k, v in props.items() if k not in terms} == {
        k: v for k, v in offer.items() if k not in terms
    }
    # The counter-proposal still satisfies the demand.
    assert constraints.matches(DEMAND_CONSTRAINTS, props)


def test_decide_accepts_nested_properties_and_no_chosen_platform():
    nested = {
        "golem": {
            "srv": {"comp": {"expiration": int(NOW_MS) + 60_000}},
            "node": {"debug": {"subnet": "public"}},
            "com": {"payment": {"platform": {PLATFORM: {"address": REQUESTOR_ID}}}},
        }
    }
    decision = decide(spec(), NODE_ID, nested, "", now_ms=NOW_MS)
    assert decision.accept, decision.reason
    # Without asks, the provider's own terms.
    assert decision.properties[DEBIT_NOTE_INTERVAL] == 120.0
    assert decision.properties[ACCEPT_TIMEOUT] == 120.0


def test_decide_rejects_when_the_offer_does_not_meet_the_demands_constraints():
    demand_constraints = "(&(golem.inf.mem.gib>=64)(golem.runtime.name=vm))"
    decision = decide(spec(mem_gib=4.0), NODE_ID, DEMAND, demand_constraints, now_ms=NOW_MS)
    assert not decision.accept
    assert "demand's constraints" in decision.reason
    assert decision.properties == {}
    # ... and accepts once the provider is big enough.
    assert decide(spec(mem_gib=64.0), NODE_ID, DEMAND, demand_constraints, now_ms=NOW_MS).accept


@pytest.mark.parametrize("bad", ["(golem.inf.mem.gib>=", "(golem.inf.mem.gib!=4)", "(&(a=1)))"])
def test_decide_rejects_malformed_constraints_without_raising(bad: str):
    decision = decide(spec(), NODE_ID, DEMAND, bad, now_ms=NOW_MS)
    assert not decision.accept
    assert decision.reason.startswith("malformed demand constraints")
    assert "position" in decision.reason


def test_decide_rejects_another_subnet_naming_the_subnet():
    demand = {**DEMAND, "golem.node.debug.subnet": "devnet-beta"}
    decision = decide(spec(), NODE_ID, demand, "", now_ms=NOW_MS)
    assert not decision.accept
    assert "subnet" in decision.reason, decision.reason


def test_decide_rejects_a_demand_whose_constraints_ask_for_another_subnet():
    decision = decide(
        spec(), NODE_ID, DEMAND, "(golem.node.debug.subnet=devnet-beta)", now_ms=NOW_MS
    )
    assert not decision.accept
    assert "constraints" in decision.reason


@pytest.mark.parametrize("expiration", [NOW_MS, NOW_MS - 1, 1])
def test_decide_rejects_an_expired_demand_naming_the_expiration(expiration: float):
    decision = decide(spec(), NODE_ID, {**DEMAND, EXPIRATION: expiration}, "", now_ms=NOW_MS)
    assert not decision.accept
    assert EXPIRATION in decision.reason


def test_decide_accepts_a_demand_expiring_just_after_now():
    assert decide(spec(), NODE_ID, {**DEMAND, EXPIRATION: NOW_MS + 1}, "", now_ms=NOW_MS).accept


@pytest.mark.parametrize("expiration", ["later", True])
def test_decide_rejects_a_non_numeric_expiration(expiration: object):
    decision = decide(spec(), NODE_ID, {**DEMAND, EXPIRATION: expiration}, "", now_ms=NOW_MS)
    assert not decision.accept


def test_decide_rejects_a_demand_without_expiration_naming_the_expiration():
    demand = {k: v for k, v in DEMAND.items() if k != EXPIRATION}
    decision = decide(spec(), NODE_ID, demand, "", now_ms=NOW_MS)
    assert not decision.accept
    assert EXPIRATION in decision.reason, decision.reason


def test_decide_rejects_another_chosen_platform():
    demand = {**DEMAND, CHOSEN: "erc20-polygon-glm"}
    decision = decide(spec(), NODE_ID, demand, "", now_ms=NOW_MS)
    assert not decision.accept
    assert "erc20-polygon-glm" in decision.reason
    assert "platform" in decision.reason


def test_decide_rejects_a_demand_with_no_address_on_our_platform():
    demand = {k: v for k, v in DEMAND.items() if k not in {ADDRESS, CHOSEN}}
    demand["golem.com.payment.platform.erc20-polygon-glm.address"] = REQUESTOR_ID
    decision = decide(spec(), NODE_ID, demand, "", now_ms=NOW_MS)
    assert not decision.accept
    assert PLATFORM in decision.reason
    assert "address" in decision.reason


# --- agreed_terms ---------------------------------------------------------------------------------


def test_agreed_terms_default_to_the_providers_own():
    s = spec(debit_note_interval=120.0, payment_timeout=3600.0, accept_timeout=100.0)
    assert agreed_terms(s, {}) == {
        DEBIT_NOTE_INTERVAL: 120.0,
        PAYMENT_TIMEOUT: 3600.0,
        ACCEPT_TIMEOUT: 100.0,
    }


def test_agreed_terms_clamp_to_min_and_provider_max():
    s = spec(
        debit_note_interval=120.0,
        min_debit_note_interval=5.0,
        payment_timeout=3600.0,
        accept_timeout=100.0,
    )
    low = agreed_terms(s, {DEBIT_NOTE_INTERVAL: 0.5, PAYMENT_TIMEOUT: 0.25, ACCEPT_TIMEOUT: 0.1})
    assert low == {DEBIT_NOTE_INTERVAL: 5.0, PAYMENT_TIMEOUT: 1.0, ACCEPT_TIMEOUT: 1.0}
    high = agreed_terms(s, {DEBIT_NOTE_INTERVAL: 500, PAYMENT_TIMEOUT: 10**9, ACCEPT_TIMEOUT: 101})
    assert high == {DEBIT_NOTE_INTERVAL: 120.0, PAYMENT_TIMEOUT: 3600.0, ACCEPT_TIMEOUT: 100.0}
    inside = agreed_terms(s, {DEBIT_NOTE_INTERVAL: 30, PAYMENT_TIMEOUT: 600, ACCEPT_TIMEOUT: 50.5})
    assert inside == {DEBIT_NOTE_INTERVAL: 30.0, PAYMENT_TIMEOUT: 600.0, ACCEPT_TIMEOUT: 50.5}
    assert all(type(v) is float for v in inside.values())


@pytest.mark.parametrize(
    "ask", ["30", True, False, -30, -0.5, 0, 0.0, math.nan, None, [30], {"value": 30}, Decimal(30)]
)
def test_agreed_terms_ignore_asks_that_are_not_positive_numbers(ask: object):
    s = spec()
    terms = agreed_terms(s, {DEBIT_NOTE_INTERVAL: ask, PAYMENT_TIMEOUT: ask, ACCEPT_TIMEOUT: ask})
    assert terms == agreed_terms(s, {})


@given(
    ask=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**12), max_value=10**12),
    )
)
def test_agreed_terms_always_lie_between_the_floor_and_the_providers_own(ask: float):
    s = spec(debit_note_interval=120.0, min_debit_note_interval=2.0)
    terms = agreed_terms(s, {DEBIT_NOTE_INTERVAL: ask, PAYMENT_TIMEOUT: ask, ACCEPT_TIMEOUT: ask})
    assert 2.0 <= terms[DEBIT_NOTE_INTERVAL] <= 120.0
    assert 1.0 <= terms[PAYMENT_TIMEOUT] <= s.payment_timeout
    assert 1.0 <= terms[ACCEPT_TIMEOUT] <= s.accept_timeout


# --- amount_due -----------------------------------------------------------------------------------


def test_amount_due_is_start_plus_coefficients_dot_usage():
    coeffs = [0.00002, 0.0001, 0.001]
    # 0.00002 * 120.5 + 0.0001 * 3.25 + 0.001
    assert amount_due(coeffs, [120.5, 3.25]) == Decimal("0.003735")
    assert amount_due(coeffs, [0, 0]) == Decimal("0.001")
    assert amount_due([2.5, 0.5, 1.0], [4, 8]) == Decimal(15)


def test_amount_due_is_decimal_exact_not_float():
    # In floats 0.1 + 0.2 == 0.30000000000000004.
    due = amount_due([0.1, 0.2, 0.0], [1.0, 1.0])
    assert isinstance(due, Decimal)
    assert due == Decimal("0.3")
    assert str(due) == "0.3"


def test_amount_due_rounds_to_the_tokens_18_decimals():
    # 1e-12 * 0.0001234567 = 0.0000000000000001234567 -> 0.000000000000000123
    assert amount_due([1e-12, 0.0, 0.0], [0.0001234567, 0.0]) == Decimal("1.23E-16")
    # Below half a wei rounds away entirely; the start price stays.
    assert amount_due([1e-12, 0.0, 0.5], [0.0000004, 0.0]) == Decimal("0.5")


@pytest.mark.parametrize(
    ("coefficients", "usage"),
    [([0.1, 0.2, 0.3], [1.0]), ([0.1, 0.3], [1.0, 2.0]), ([0.1, 0.2, 0.3], [1.0, 2.0, 3.0])],
)
def test_amount_due_rejects_a_usage_vector_of_the_wrong_length(
    coefficients: list[float], usage: list[float]
):
    with pytest.raises(ValueError, match="usage counters"):
        amount_due(coefficients, usage)


_PRICE = st.decimals(min_value=0, max_value=10, places=8)
_USAGE_MS = st.integers(min_value=0, max_value=10**9)


@given(data=st.data(), n=st.integers(min_value=0, max_value=4))
def test_amount_due_equals_the_exact_decimal_sum(data: st.DataObject, n: int):
    prices = data.draw(st.lists(_PRICE, min_size=n + 1, max_size=n + 1))
    usage_ms = data.draw(st.lists(_USAGE_MS, min_size=n, max_size=n))
    usage = [Decimal(ms) / 1000 for ms in usage_ms]  # the meter rounds to milliseconds
    *per_unit, start = prices
    expected = start + sum((p * u for p, u in zip(per_unit, usage, strict=True)), Decimal(0))
    assert amount_due([float(p) for p in prices], [float(u) for u in usage]) == expected


_COEFF = st.floats(min_value=0, max_value=1e3, allow_nan=False)
_COUNTER = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@given(data=st.data(), n=st.integers(min_value=0, max_value=4))
def test_amount_due_is_monotone_in_usage_and_never_below_the_start_price(
    data: st.DataObject, n: int
):
    coefficients = data.draw(st.lists(_COEFF, min_size=n + 1, max_size=n + 1))
    usage = data.draw(st.lists(_COUNTER, min_size=n, max_size=n))
    more = [
        u + d
        for u, d in zip(usage, data.draw(st.lists(_COUNTER, min_size=n, max_size=n)), strict=True)
    ]
    low, high = amount_due(coefficients, usage), amount_due(coefficients, more)
    assert low <= high
    start = Decimal(str(coefficients[-1])).quantize(Decimal("1e-18"))
    assert low >= start
    assert amount_due(coefficients, [0.0] * n) == start
