"""Linear pricing read from offers, and costs. Pure code."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from golem_actors.localnet.offer import ProviderSpec, amount_due
from golem_actors.policy.pricing import (
    COEFFS,
    CPU_SEC,
    DURATION_SEC,
    GIB,
    PRICING_MODEL,
    STORAGE_GIB,
    USAGE_VECTOR,
    LinearPricing,
    PricingError,
)

NODE_ID = "0x7f3c1e2d4b5a69788796a5b4c3d2e1f001122334"


def props(coeffs: Any, vector: Any = (DURATION_SEC, CPU_SEC), **more: Any) -> dict[str, Any]:
    return {COEFFS: coeffs, USAGE_VECTOR: vector, **more}


def test_reads_a_localnet_offer_exactly():
    offer = ProviderSpec("p1").offer_properties(NODE_ID)
    pricing = LinearPricing.from_properties(offer)
    assert pricing.usage_vector == (DURATION_SEC, CPU_SEC)
    # JSON floats are read through str: 0.0001 stays 0.0001, not 0.000100000000000000004792...
    assert pricing.prices == (Decimal("0.00002"), Decimal("0.0001"))
    assert pricing.start_price == Decimal("0.001")
    assert pricing.price_for(CPU_SEC) == Decimal("0.0001")
    assert pricing.price_by_counter == {
        DURATION_SEC: Decimal("0.00002"),
        CPU_SEC: Decimal("0.0001"),
    }


@pytest.mark.parametrize(
    ("properties", "problem"),
    [
        ({USAGE_VECTOR: [DURATION_SEC]}, f"no {COEFFS}"),
        ({COEFFS: [0.1, 0.2]}, f"no {USAGE_VECTOR}"),
        (props("0.1,0.2,0.3"), "must be a list of numbers"),
        (props([0.1, 0.2, 0.3], vector="golem.usage.duration_sec"), "list of counter names"),
        (props([0.1, 0.2]), "2 coefficients for 2 counters"),
        (props([0.1, 0.2, 0.3, 0.4]), "4 coefficients for 2 counters"),
        (props([0.1, -0.2, 0.3]), f"{COEFFS}[1] must not be negative"),
        (props([0.1, 0.2, -1]), f"{COEFFS}[2] must not be negative"),
        (props([0.1, float("nan"), 0.3]), f"{COEFFS}[1] must be finite"),
        (props([0.1, float("inf"), 0.3]), f"{COEFFS}[1] must be finite"),
        (props([True, 0.2, 0.3]), f"{COEFFS}[0] must be a number"),
        (props([None, 0.2, 0.3]), f"{COEFFS}[0] must be a number"),
        (props(["cheap", 0.2, 0.3]), f"{COEFFS}[0] must be a number"),
        (props([0.1, 0.2, 0.3], vector=[DURATION_SEC, DURATION_SEC]), "names a counter twice"),
        (props([0.1, 0.2, 0.3], vector=[DURATION_SEC, 7]), "non-empty strings"),
        (props([0.1, 0.2, 0.3], vector=[DURATION_SEC, ""]), "non-empty strings"),
        (props([0.1, 0.2, 0.3], **{PRICING_MODEL: "burn-rate"}), "not 'linear'"),
    ],
)
def test_malformed_pricing_is_refused_naming_the_problem(properties, problem):
    with pytest.raises(PricingError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        LinearPricing.from_properties(properties)


def test_start_price_only_pricing_is_fine():
    pricing = LinearPricing.from_properties(props([0.5], vector=[]))
    assert pricing.start_price == Decimal("0.5")
    assert pricing.cost([]) == Decimal("0.5")


def test_price_for_an_unbilled_counter_is_an_error():
    pricing = LinearPricing.from_properties(props([0.1, 0.2, 0.3]))
    with pytest.raises(PricingError, match=re.escape(GIB)):
        pricing.price_for(GIB)


def test_cost_by_sequence_and_by_mapping():
    pricing = LinearPricing.from_properties(props([0.1, 0.2, 0.3]))
    assert pricing.cost([10, 5]) == Decimal("0.1") * 10 + Decimal("0.2") * 5 + Decimal("0.3")
    assert pricing.cost({DURATION_SEC: 10, CPU_SEC: 5}) == pricing.cost([10, 5])
    assert pricing.cost({DURATION_SEC: 10}) == Decimal("1.3")  # a counter left out is zero
    assert pricing.cost([0, 0]) == Decimal("0.3")


def test_cost_rounds_up_to_18_decimals():
    pricing = LinearPricing((DURATION_SEC,), (Decimal("1e-19"),), Decimal(0))
    assert pricing.cost([1]) == Decimal("1e-18")
    assert pricing.cost([0]) == Decimal(0)


@pytest.mark.parametrize(
    ("usage", "problem"),
    [
        ([1.0], "must give 2 counters"),
        ([1.0, 2.0, 3.0], "must give 2 counters"),
        ("12", "must give 2 counters"),
        ([1.0, -2.0], f"usage of {CPU_SEC} must be a finite number >= 0"),
        ([float("nan"), 1.0], f"usage of {DURATION_SEC} must be finite"),
        ([True, 1.0], f"usage of {DURATION_SEC} must be a number"),
        ({STORAGE_GIB: 1.0}, "does not bill"),
        ({CPU_SEC: "5"}, f"usage of {CPU_SEC} must be a number"),
    ],
)
def test_bad_usage_is_refused(usage, problem):
    pricing = LinearPricing.from_properties(props([0.1, 0.2, 0.3]))
    with pytest.raises(PricingError, match=problem):
        pricing.cost(usage)


def test_direct_construction_is_validated():
    with pytest.raises(PricingError, match="2 prices for 1 usage counters"):
        LinearPricing((DURATION_SEC,), (Decimal(1), Decimal(2)), Decimal(0))
    with pytest.raises(PricingError, match="start price must not be negative"):
        LinearPricing((), (), Decimal(-1))


def test_max_cost_is_time_price_plus_threads_times_cpu_price_plus_start():
    pricing = LinearPricing.from_properties(props([0.1, 0.2, 0.3]))
    assert pricing.max_cost(100, 4) == Decimal("0.1") * 100 + Decimal("0.2") * 400 + Decimal("0.3")
    # The order of the usage vector does not matter.
    swapped = LinearPricing.from_properties(props([0.2, 0.1, 0.3], vector=[CPU_SEC, DURATION_SEC]))
    assert swapped.max_cost(100, 4) == pricing.max_cost(100, 4)
    # An offer billing only time bounds by time alone.
    time_only = LinearPricing.from_properties(props([0.1, 0.3], vector=[DURATION_SEC]))
    assert time_only.max_cost(100, 8) == Decimal("10.3")


def test_max_cost_needs_other_priced_counters_given():
    pricing = LinearPricing.from_properties(
        props([0.1, 0.2, 0.5, 0.3], vector=[DURATION_SEC, CPU_SEC, STORAGE_GIB])
    )
    with pytest.raises(PricingError, match=f"{STORAGE_GIB} is priced"):
        pricing.max_cost(10, 1)
    assert pricing.max_cost(10, 1, other_usage={STORAGE_GIB: 2}) == Decimal("4.3")
    free = LinearPricing.from_properties(
        props([0.1, 0.2, 0, 0.3], vector=[DURATION_SEC, CPU_SEC, STORAGE_GIB])
    )
    assert free.max_cost(10, 1) == Decimal("3.3")
    with pytest.raises(PricingError, match="follows from time"):
        pricing.max_cost(10, 1, other_usage={DURATION_SEC: 5, STORAGE_GIB: 1})
    with pytest.raises(PricingError, match="does not bill"):
        pricing.max_cost(10, 1, other_usage={STORAGE_GIB: 1, GIB: 1})


@pytest.mark.parametrize(
    ("duration", "threads", "problem"),
    [
        (-1, 1, "duration_s"),
        (float("inf"), 1, "duration_s"),
        (True, 1, "duration_s"),
        (10, 0, "cpu_threads"),
        (10, 1.5, "cpu_threads"),
        (10, True, "cpu_threads"),
    ],
)
def test_max_cost_refuses_bad_arguments(duration, threads, problem):
    pricing = LinearPricing.from_properties(props([0.1, 0.2, 0.3]))
    with pytest.raises(PricingError, match=problem):
        pricing.max_cost(duration, threads)


prices = st.decimals(min_value=0, max_value=10, places=9)
amounts = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(prices, prices, prices, amounts, amounts)
def test_cost_bounds_what_a_localnet_provider_charges(p_time, p_cpu, start, t, cpu):
    coeffs = [float(p_time), float(p_cpu), float(start)]
    pricing = LinearPricing.from_properties(props(coeffs))
    charged = amount_due(coeffs, [t, cpu])
    ours = pricing.cost([t, cpu])
    assert charged <= ours <= charged + Decimal("1e-18")


@given(
    p_time=prices,
    p_cpu=prices,
    start=prices,
    duration=st.floats(min_value=0, max_value=1e5),
    threads=st.integers(min_value=1, max_value=64),
    time_share=st.floats(min_value=0, max_value=1),
    cpu_share=st.floats(min_value=0, max_value=1),
)
def test_max_cost_bounds_every_usage_that_fits_in_the_time(
    *, p_time, p_cpu, start, duration, threads, time_share, cpu_share
):
    pricing = LinearPricing((DURATION_SEC, CPU_SEC), (p_time, p_cpu), start)
    used = [duration * time_share, duration * time_share * threads * cpu_share]
    assert pricing.cost(used) <= pricing.max_cost(duration, threads)
