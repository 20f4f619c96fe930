"""Offer scoring and the ranked offer book. Pure code."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    OfferBook,
    OfferScorer,
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
        ({"expected_time_s": 0}, "expected_time_s must be a positive number"),
        ({"expected_time_s": float("inf")}, "expected_time_s must be a positive number"),
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


# --- OfferBook ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """A stand-in for the yagna Proposal: what the book needs is ``properties``."""

    proposal_id: str
    properties: dict[str, Any] = field(default_factory=offer)


def test_best_is_the_highest_score_outside_the_exclusions():
    book: OfferBook[Offer] = OfferBook()
    book.add("a", Offer("pa"), 0.5)
    book.add("b", Offer("pb"), 0.9)
    book.add("c", Offer("pc"), Score(0.7))
    assert book.best().provider_id == "b"  # type: ignore[union-attr]
    assert book.best({"b"}).provider_id == "c"  # type: ignore[union-attr]
    assert book.best({"b", "c"}).offer.proposal_id == "pa"  # type: ignore[union-attr]
    assert book.best({"a", "b", "c"}) is None
    assert [e.provider_id for e in book.ranked()] == ["b", "c", "a"]
    assert [e.provider_id for e in book] == ["b", "c", "a"]
    assert len(book) == 3
    assert "a" in book
    assert "z" not in book


def test_empty_book_has_no_best():
    assert OfferBook[Offer]().best() is None


def test_ties_go_to_the_offer_added_first():
    book: OfferBook[Offer] = OfferBook()
    for provider in ("m", "z", "a"):
        book.add(provider, Offer(provider), 0.5)
    assert [e.provider_id for e in book.ranked()] == ["m", "z", "a"]
    book.add("m", Offer("m2"), 0.5)  # a newer offer from m goes behind the others
    assert [e.provider_id for e in book.ranked()] == ["z", "a", "m"]
    assert book.get("m").offer.proposal_id == "m2"  # type: ignore[union-attr]


def test_remove():
    book: OfferBook[Offer] = OfferBook()
    book.add("a", Offer("pa"), 0.5)
    removed = book.remove("a")
    assert removed is not None
    assert removed.provider_id == "a"
    assert book.remove("a") is None
    assert book.best() is None


def test_penalties_down_rank_a_provider_and_outlive_its_offers():
    book: OfferBook[Offer] = OfferBook()
    book.add("cheap", Offer("c"), 0.9)
    book.add("dear", Offer("d"), 0.6)
    assert book.penalize("cheap", 0.5) == 0.5
    entry = book.best()
    assert entry is not None
    assert entry.provider_id == "dear"
    assert book.get("cheap").score == pytest.approx(0.45)  # type: ignore[union-attr]
    book.remove("cheap")
    book.add("cheap", Offer("c2"), 0.9)  # its next offer is still penalized
    assert book.get("cheap").penalty == 0.5  # type: ignore[union-attr]
    book.penalize("cheap", 0.5)
    assert book.penalty("cheap") == 0.25
    book.forgive("cheap")
    assert book.best().provider_id == "cheap"  # type: ignore[union-attr]
    book.penalize("stranger", 0.1)  # no offer yet: remembered for its first one
    book.add("stranger", Offer("s"), 1.0)
    assert book.get("stranger").score == pytest.approx(0.1)  # type: ignore[union-attr]


@pytest.mark.parametrize("factor", [0, -0.5, 1.5, float("nan"), True])
def test_bad_penalty_factors_are_refused(factor):
    with pytest.raises(ValueError, match="penalty factor"):
        OfferBook[Offer]().penalize("a", factor)


@pytest.mark.parametrize("score", [0, -1.0, float("nan"), float("inf"), Score.reject("dear")])
def test_bad_scores_are_refused(score):
    with pytest.raises(ValueError, match=r"score|rejected"):
        OfferBook[Offer]().add("a", Offer("pa"), score)


def test_bad_provider_ids_are_refused():
    with pytest.raises(ValueError, match="provider_id"):
        OfferBook[Offer]().add("", Offer("pa"), 0.5)


def test_rescore_applies_a_new_scorer_keeps_penalties_and_drops_rejections():
    book: OfferBook[Offer] = OfferBook()
    book.add("cheap", Offer("c", offer(start=0.01)), 0.1)
    book.add("dear", Offer("d", offer(start=0.5)), 0.2)
    book.penalize("cheap", 0.5)
    rejected = book.rescore(LeastExpensiveLinearPayu(max_start_price=Decimal("0.1")))
    assert set(rejected) == {"dear"}
    assert "above the cap" in rejected["dear"]
    assert "dear" not in book
    entry = book.get("cheap")
    assert entry is not None
    assert entry.base_score == expected_score("0.0001", "0.0002", "0.01")
    assert entry.penalty == 0.5


class Blacklist:
    """A scorer wrapper that rejects some providers: what a custom strategy can do."""

    def __init__(self, base: OfferScorer, banned: set[str]) -> None:
        self.base = base
        self.banned = banned

    def score(self, offer_properties: Mapping[str, Any], provider_id: str) -> Score:
        if provider_id in self.banned:
            return Score.reject(f"{provider_id} is blacklisted")
        return self.base.score(offer_properties, provider_id)


def test_a_wrapping_scorer_fits_the_protocol():
    book: OfferBook[Offer] = OfferBook()
    book.add("a", Offer("pa"), 0.5)
    book.add("b", Offer("pb"), 0.5)
    assert book.rescore(Blacklist(LeastExpensiveLinearPayu(), {"a"})) == {"a": "a is blacklisted"}
    assert [e.provider_id for e in book.ranked()] == ["b"]


providers = st.sampled_from([f"0x{i:040x}" for i in range(8)])
scores = st.floats(min_value=1e-6, max_value=1.0)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), providers, scores),
        st.tuples(st.just("remove"), providers, st.just(0.0)),
        st.tuples(st.just("penalize"), providers, st.floats(min_value=0.01, max_value=1.0)),
        st.tuples(st.just("forgive"), providers, st.just(0.0)),
    ),
    max_size=40,
)


@given(ops, st.sets(providers, max_size=8))
def test_best_is_never_excluded_and_always_the_top_score_of_the_rest(operations, exclude):
    book: OfferBook[Offer] = OfferBook()
    model: dict[str, float] = {}  # provider -> base score
    penalty: dict[str, float] = {}
    for op, provider, value in operations:
        if op == "add":
            book.add(provider, Offer(provider), value)
            model[provider] = value
        elif op == "remove":
            book.remove(provider)
            model.pop(provider, None)
        elif op == "penalize":
            book.penalize(provider, value)
            penalty[provider] = penalty.get(provider, 1.0) * value
        else:
            book.forgive(provider)
            penalty.pop(provider, None)
    best = book.best(exclude)
    allowed = {p: s * penalty.get(p, 1.0) for p, s in model.items() if p not in exclude}
    if not allowed:
        assert best is None
        return
    assert best is not None
    assert best.provider_id not in exclude
    assert best.score == pytest.approx(max(allowed.values()), rel=1e-12)
    assert best.score >= max(e.score for e in book.ranked() if e.provider_id not in exclude)
    assert book.best(exclude) == best  # deterministic
