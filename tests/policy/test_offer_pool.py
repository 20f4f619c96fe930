"""The draft pool: which draft a request gets, how many subscriptions to add, which to drop."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from golem_actors.policy.offer_pool import (
    NEGOTIATION_PATIENCE_S,
    SUBSCRIPTION_GRACE_S,
    Candidate,
    OfferPool,
    Subscription,
)


def _candidate(provider: str, score: float = 0.5, *, draft: bool = True, at: float = 0.0):
    return Candidate(
        provider, provider, initial=None, score=score, draft="d" if draft else None, countered_at=at
    )


def _picked(pool: OfferPool, load: dict[str, int], now: float) -> Candidate:
    best, wait = pool.pick(exclude=frozenset(), load=load, now=now)
    assert best is not None
    assert not wait
    return best


def _pool(*subs: tuple[str, float, list[Candidate]]) -> OfferPool:
    pool = OfferPool()
    for demand_id, created, candidates in subs:
        pool.subscriptions[demand_id] = Subscription(
            demand_id, created, {c.provider_id: c for c in candidates}
        )
    return pool


def test_the_least_loaded_provider_wins_then_the_best_score():
    pool = _pool(("s1", 0, [_candidate("a", 0.9), _candidate("b", 0.5), _candidate("c", 0.1)]))
    assert _picked(pool, {"a": 1}, now=10).provider_id == "b"
    assert _picked(pool, {}, now=10).provider_id == "a"


def test_excluded_and_consumed_candidates_are_never_picked():
    used = _candidate("a", 0.9)
    used.consumed = True
    pool = _pool(("s1", 0, [used, _candidate("b", 0.5)]))
    assert pool.pick(exclude=frozenset({"b"}), load={}, now=10) == (None, False)


def test_a_less_loaded_provider_still_negotiating_is_waited_for_within_patience():
    pool = _pool(("s1", 0, [_candidate("a", 0.9, draft=False, at=9.0), _candidate("b", 0.1)]))
    assert pool.pick(exclude=frozenset(), load={"b": 1}, now=10) == (None, True)
    late = 9.0 + NEGOTIATION_PATIENCE_S + 0.1
    assert _picked(pool, {"b": 1}, now=late).provider_id == "b"


def test_an_equally_loaded_ready_draft_is_not_kept_waiting():
    pool = _pool(("s1", 0, [_candidate("a", 0.9, draft=False, at=9.5), _candidate("b", 0.1)]))
    assert _picked(pool, {"a": 1, "b": 0}, now=10).provider_id == "b"


def test_penalties_sink_a_provider():
    pool = _pool(("s1", 0, [_candidate("a", 0.9), _candidate("b", 0.5)]))
    pool.penalize("a")
    assert _picked(pool, {}, now=0).provider_id == "b"


def test_the_same_provider_in_two_subscriptions_yields_two_drafts():
    pool = _pool(("s1", 0, [_candidate("a")]), ("s2", 1, [_candidate("a")]))
    first = _picked(pool, {}, now=5)
    first.consumed = True
    second, _ = pool.pick(exclude=frozenset(), load={}, now=5)
    assert second is not None
    assert second is not first


def test_subscriptions_wanted_covers_the_shortfall_one_per_provider_round():
    pool = _pool(("s1", 0, [_candidate(p) for p in "abcd"]))
    for c in pool.candidates():
        c.consumed = True
    assert pool.subscriptions_wanted(10, now=0, pending=0, cap=8) == 3  # ceil(10 / 4)
    assert pool.subscriptions_wanted(10, now=0, pending=2, cap=8) == 1
    assert pool.subscriptions_wanted(100, now=0, pending=0, cap=8) == 7  # one live already
    assert pool.subscriptions_wanted(0, now=0, pending=0, cap=8) == 0


def test_a_provider_silent_past_the_patience_is_not_counted_as_supply():
    pool = _pool(("s1", 0, [_candidate("a", draft=False, at=0.0)]))
    assert pool.subscriptions_wanted(1, now=0.5, pending=0, cap=8) == 0
    assert pool.subscriptions_wanted(1, now=NEGOTIATION_PATIENCE_S, pending=0, cap=8) == 1


def test_blocked_providers_do_not_count_as_supply():
    pool = _pool(("s1", 0, [_candidate("a"), _candidate("b")]))
    assert pool.subscriptions_wanted(2, now=0, pending=0, cap=8) == 0
    assert pool.subscriptions_wanted(2, now=0, pending=0, cap=8, blocked={"a"}) == 1


def test_spent_subscriptions_keep_the_newest_unless_used_up():
    old_used = _candidate("a")
    old_used.consumed = True
    pool = _pool(("old", 0, [old_used]), ("new", 1, [_candidate("a")]))
    assert pool.spent_subscriptions(now=100) == ["old"]
    pool.subscriptions["new"].candidates["a"].consumed = True
    assert sorted(pool.spent_subscriptions(now=100)) == ["new", "old"]


def test_a_young_empty_subscription_gets_its_grace_period():
    pool = _pool(("young", 10, []), ("newest", 11, []))
    assert pool.spent_subscriptions(now=10 + SUBSCRIPTION_GRACE_S / 2) == []
    assert pool.spent_subscriptions(now=10 + SUBSCRIPTION_GRACE_S) == ["young"]


def test_a_subscription_holding_only_blocked_providers_is_dropped():
    pool = _pool(("old", 0, [_candidate("bad")]), ("new", 1, [_candidate("good")]))
    assert pool.spent_subscriptions(now=100, blocked={"bad"}) == ["old"]
    assert pool.spent_subscriptions(now=100) == []


@given(
    waiting=st.integers(0, 500),
    pending=st.integers(0, 10),
    cap=st.integers(1, 16),
    providers=st.integers(0, 12),
    live=st.integers(0, 8),
)
def test_subscriptions_wanted_never_exceeds_the_cap(waiting, pending, cap, providers, live):
    pool = _pool(
        *[(f"s{i}", i, [_candidate(f"p{j}") for j in range(providers)]) for i in range(live)]
    )
    wanted = pool.subscriptions_wanted(waiting, now=0, pending=pending, cap=cap)
    assert wanted >= 0
    assert wanted == 0 or live + pending + wanted <= cap
    if waiting <= pool.unused(now=0):
        assert wanted == 0
