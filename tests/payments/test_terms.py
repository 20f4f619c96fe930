"""The agreed terms: what they refuse up front, and the usage and cadence a bill may claim.

The ledger built on these checks is tested in tests/payments/test_ledger.py, whose helpers
(``terms``, ``cost``) build the same agreement here.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from golem_actors.payments.terms import Grace, check_frequency, check_usage, parse_usage
from golem_actors.policy.pricing import CPU_SEC, DURATION_SEC
from tests.payments.test_ledger import P_CPU, P_DUR, cost, terms

D = Decimal


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"prices": {DURATION_SEC: P_DUR}}, "missing"),
        ({"prices": {DURATION_SEC: P_DUR, CPU_SEC: P_CPU, "x": D(0)}}, "not in usage_vector"),
        ({"prices": {DURATION_SEC: D(-1), CPU_SEC: P_CPU}}, "price of golem.usage.duration_sec"),
        (
            {
                "usage_vector": (DURATION_SEC, CPU_SEC, "golem.usage.gib"),
                "prices": {DURATION_SEC: P_DUR, CPU_SEC: P_CPU, "golem.usage.gib": D(1)},
            },
            "golem.usage.gib",
        ),
        ({"start_price": D("NaN")}, "start_price"),
        ({"cpu_threads": 0}, "cpu_threads"),
        ({"debit_note_interval_s": 0.0}, "debit_note_interval_s"),
        ({"accept_timeout_s": float("inf")}, "accept_timeout_s"),
    ],
)
def test_terms_refuse_bad_input(overrides: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        terms(**overrides)


def test_unpriced_extra_counter_is_fine() -> None:
    t = terms(
        usage_vector=(DURATION_SEC, CPU_SEC, "golem.usage.gib"),
        prices={DURATION_SEC: P_DUR, CPU_SEC: P_CPU, "golem.usage.gib": D(0)},
    )
    assert t.cost((D(10), D(5), D(3))) == cost("10", "5")


def test_parse_usage() -> None:
    assert parse_usage(None) is None
    assert parse_usage([1.5, 2]) == (D("1.5"), D(2))
    parsed = parse_usage(["x", True])
    assert parsed is not None
    assert all(v.is_nan() for v in parsed)


def test_check_usage_bounds_duration_and_cpu_by_wall_time() -> None:
    t = terms()  # two threads
    assert check_usage(t, None, D(60), Grace()) is None
    assert check_usage(t, (D(60), D(120)), D(60), Grace()) is None
    too_long = check_usage(t, (D(61), D(0)), D(60), Grace())
    assert too_long is not None
    assert f"{DURATION_SEC} = 61" in too_long
    too_busy = check_usage(t, (D(10), D(200)), D(60), Grace(seconds=0))
    assert too_busy is not None
    assert "exceeds 2 threads for 10 s" in too_busy
    assert "counters" in (check_usage(t, (D(1),), D(60), Grace()) or "")
    assert "non-negative" in (check_usage(t, (D(-1), D(0)), D(60), Grace()) or "")


def test_check_frequency_allows_the_schedule_plus_grace() -> None:
    t = terms(debit_note_interval_s=60.0)
    # 1 first note + 2 extra (the default grace) + one per whole interval elapsed
    assert check_frequency(t, 4, D(60), Grace(), "a1") is None
    too_many = check_frequency(t, 5, D(60), Grace(), "a1")
    assert too_many is not None
    assert "debit note 5 for activity a1" in too_many
    assert "allows at most 4" in too_many
    assert check_frequency(terms(debit_note_interval_s=None), 100, D(1), Grace(), "a1") is None
