"""RetryPolicy: retry only what cannot double an effect; bounded, growing delays."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from golem_actors.yagna.retry import Failure, RetryPolicy

POLICY = RetryPolicy()  # 4 attempts, 0.1 s doubling up to 2 s, half jitter, 502/503/504

policies = st.builds(
    RetryPolicy,
    attempts=st.integers(min_value=1, max_value=10),
    base_delay=st.floats(min_value=0, max_value=5),
    max_delay=st.floats(min_value=5, max_value=60),
    jitter=st.floats(min_value=0, max_value=1),
)
statuses = st.one_of(st.none(), st.integers(min_value=100, max_value=599))


@pytest.mark.parametrize("idempotent", [True, False])
def test_connect_failures_always_retry(idempotent: bool) -> None:
    # Nothing reached yagna, so even a POST that creates something is safe to send again.
    assert POLICY.should_retry(1, Failure.CONNECT, idempotent=idempotent)
    assert POLICY.should_retry(3, Failure.CONNECT, idempotent=idempotent)


def test_idempotent_reads_retry_on_broken_connection_and_gateway_statuses() -> None:
    assert POLICY.should_retry(1, Failure.BROKEN, idempotent=True)
    for status in (502, 503, 504):
        assert POLICY.should_retry(1, Failure.STATUS, idempotent=True, status=status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 410, 429, 500, 501])
def test_other_statuses_never_retry(status: int) -> None:
    assert not POLICY.should_retry(1, Failure.STATUS, idempotent=True, status=status)


@pytest.mark.parametrize("failure", [Failure.BROKEN, Failure.STATUS, Failure.READ_TIMEOUT])
@pytest.mark.parametrize("status", [None, 502, 503, 504, 500])
def test_non_idempotent_calls_never_retry_past_connect(
    failure: Failure, status: int | None
) -> None:
    # POST create / accept / confirm: a lost answer does not mean the action did not happen.
    assert not POLICY.should_retry(1, failure, idempotent=False, status=status)


@pytest.mark.parametrize("idempotent", [True, False])
def test_read_timeout_never_retries(idempotent: bool) -> None:
    assert not POLICY.should_retry(1, Failure.READ_TIMEOUT, idempotent=idempotent)


@pytest.mark.parametrize("failure", list(Failure))
def test_never_past_the_attempts(failure: Failure) -> None:
    assert not POLICY.should_retry(4, failure, idempotent=True, status=503)
    assert not POLICY.should_retry(5, failure, idempotent=True, status=503)
    single = RetryPolicy(attempts=1)
    assert not single.should_retry(1, failure, idempotent=True, status=503)


def test_retry_statuses_are_configurable() -> None:
    policy = RetryPolicy(retry_statuses=frozenset({500}))
    assert policy.should_retry(1, Failure.STATUS, idempotent=True, status=500)
    assert not policy.should_retry(1, Failure.STATUS, idempotent=True, status=503)


def test_delays_grow_exponentially_until_capped() -> None:
    no_jitter = [POLICY.delay(n, rand=lambda: 0.0) for n in range(1, 9)]
    assert no_jitter == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0])
    full_jitter = [POLICY.delay(n, rand=lambda: 1.0) for n in range(1, 4)]
    assert full_jitter == pytest.approx([0.05, 0.1, 0.2])


def test_delay_uses_random_jitter_by_default() -> None:
    delays = {POLICY.delay(3) for _ in range(50)}
    assert all(0.2 <= d <= 0.4 for d in delays)
    assert len(delays) > 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"attempts": 0}, "attempts must be a whole number >= 1"),
        ({"base_delay": -1.0}, "base_delay"),
        ({"base_delay": 3.0, "max_delay": 2.0}, "max_delay"),
        ({"jitter": 1.5}, "jitter"),
        ({"jitter": -0.1}, "jitter"),
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@given(
    policies,
    st.integers(min_value=1, max_value=20),
    st.sampled_from(list(Failure)),
    st.booleans(),
    statuses,
)
def test_retry_decision_rules(
    policy: RetryPolicy, attempt: int, failure: Failure, idempotent: bool, status: int | None
) -> None:
    decision = policy.should_retry(attempt, failure, idempotent=idempotent, status=status)
    if attempt >= policy.attempts:
        assert not decision
    elif failure is Failure.CONNECT:
        assert decision
    elif failure is Failure.READ_TIMEOUT or not idempotent:
        assert not decision
    elif failure is Failure.STATUS:
        assert decision == (status in {502, 503, 504})
    else:
        assert decision  # a broken connection on an idempotent call


@given(policies, st.integers(min_value=1, max_value=60), st.floats(min_value=0, max_value=1))
def test_delays_are_bounded_and_never_shrink(policy: RetryPolicy, attempt: int, r: float) -> None:
    delay = policy.delay(attempt, rand=lambda: r)
    assert 0 <= delay <= policy.max_delay
    raw_now = policy.delay(attempt, rand=lambda: 0.0)
    raw_next = policy.delay(attempt + 1, rand=lambda: 0.0)
    assert raw_next >= raw_now  # without jitter: non-decreasing
    assert delay >= raw_now * (1 - policy.jitter) - 1e-12  # jitter only shortens, within bound


@given(policies)
def test_total_wait_is_bounded(policy: RetryPolicy) -> None:
    """The worst case over every allowed retry stays within attempts * max_delay."""
    total = sum(policy.delay(n, rand=lambda: 0.0) for n in range(1, policy.attempts))
    assert total <= (policy.attempts - 1) * policy.max_delay + 1e-9
