"""Offer scoring and the ranked offer book. Pure code."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from golem_actors.localnet.offer import ProviderSpec
from golem_actors.policy.pricing import (
    COEFFS,
    CPU_SEC,
    DURATION_SEC,
    PRICING_MODEL,
    SCHEME,
    USAGE_VECTOR,
)
from golem_actors.policy.scoring import (
    LeastExpensiveLinearPayu,
    Score,
    default_scorer,
)

NODE_ID = "0x7f3c1e2d4b5a69788796a5b4c3d2e1f001122334"


def offer(time: float = 0.0001, cpu: float = 0.0002, start: float = 0.01, **more: Any):
    return {
        SCHEME: "payu",
        PRICING_MODEL: "linear",
        USAGE_VECTOR: [DURATION_SEC, CPU_SEC],
        COEFFS: [time, cpu, start],
        **more,
    }


def expected_score(time: str, cpu: str, start: str, seconds: int = 60) -> float:
    cost = (Decimal(time) + Decimal(cpu)) * seconds + Decimal(start)
    return float(Decimal(1) / (Decimal("1.01") + cost))


def test_score_is_one_over_1_01_plus_expected_cost():
    scorer = LeastExpensiveLinearPayu()
    assert scorer.score(offer(), "p").value == expected_score("0.0001", "0.0002", "0.01")
    longer = LeastExpensiveLinearPayu(expected_time_s=3600)
    assert longer.score(offer(), "p").value == expected_score("0.0001", "0.0002", "0.01", 3600)
    free = scorer.score(offer(0, 0, 0), "p")
    assert free == Score(1 / 1.01)


def test_default_scorer_accepts_localnet_offers():
    verdict = default_scorer().score(ProviderSpec("p1").offer_properties(NODE_ID), NODE_ID)
    assert verdict.accepted
    assert 0 < verdict.value < 1 / 1.01  # type: ignore[operator]


CAPPED = LeastExpensiveLinearPayu(
    max_start_price=Decimal("0.1"),
    max_price_for={CPU_SEC: Decimal("0.001"), DURATION_SEC: Decimal("0.0005")},
)


@pytest.mark.parametrize(
    ("properties", "reason"),
    [
        ({**offer(), SCHEME: "payd"}, "golem.com.scheme is 'payd', not 'payu'"),
        ({k: v for k, v in offer().items() if k != SCHEME}, "golem.com.scheme is None"),
        ({**offer(), PRICING_MODEL: "burn-rate"}, "not 'linear'"),
        (offer(time=-0.1), "bad pricing: .*must not be negative"),
        (offer(start=-1), "bad pricing: .*must not be negative"),
        ({**offer(), COEFFS: [0.1, 0.2]}, "bad pricing: .*2 coefficients for 2 counters"),
        ({**offer(), COEFFS: "cheap"}, "bad pricing"),
        (offer(start=0.2), "start price 0.2 is above the cap 0.1"),
        (offer(cpu=0.002), f"price for {CPU_SEC} 0.002 is above the cap 0.001"),
        (offer(time=0.0006), f"price for {DURATION_SEC} 0.0006 is above the cap 0.0005"),
    ],
)
def test_rejections_say_why(properties, reason):
    verdict = CAPPED.score(properties, "p")
    assert verdict.value is None
    assert not verdict.accepted
    assert re.search(reason, verdict.reason), verdict.reason


def test_prices_equal_to_their_caps_are_accepted():
    assert CAPPED.score(offer(time=0.0005, cpu=0.001, start=0.1), "p").accepted


def test_caps_on_counters_an_offer_does_not_bill_are_ignored():
    scorer = LeastExpensiveLinearPayu(max_price_for={"golem.usage.gib": Decimal(0)})
    assert scorer.score(offer(), "p").accepted


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"max_start_price": Decimal(-1)}, "max_start_price must be a price >= 0"),
        ({"max_start_price": "lots"}, "max_start_price must be a price >= 0"),
        ({"max_start_price": True}, "max_start_price must be a price >= 0"),
        ({"max_price_for": {CPU_SEC: Decimal("-0.1")}}, "max_price_for"),
        ({"max_price_for": {"": Decimal(1)}}, "max_price_for keys"),
        ({"max_price_for": [CPU_SEC]}, "max_price_for must map"),
        ({"expected_time_s": 0}, "expected_time_s must be a finite number > 0"),
        ({"expected_time_s": float("inf")}, "expected_time_s must be a finite number > 0"),
    ],
)
def test_bad_scorer_settings_are_refused(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        LeastExpensiveLinearPayu(**kwargs)


def test_score_values_are_checked():
    with pytest.raises(ValueError, match="needs a reason"):
        Score(None)
    for bad in (0.0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match=r"Score\.value"):
            Score(bad)


price = st.decimals(min_value=0, max_value=1, places=6)
rise = st.decimals(min_value=Decimal("0.000001"), max_value=1, places=6)


@given(price, price, price, rise, st.sampled_from([0, 1, 2]))
def test_scores_strictly_decrease_as_any_price_rises(time, cpu, start, more, which):
    scorer = LeastExpensiveLinearPayu()
    base = [time, cpu, start]
    raised = list(base)
    raised[which] += more
    low = scorer.score(offer(*map(float, base)), "p").value
    high = scorer.score(offer(*map(float, raised)), "p").value
    assert low is not None
    assert high is not None
    assert high < low
