"""The numeric argument checks: what they accept, what they refuse, and what the error says."""

from __future__ import annotations

import argparse
import math
import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from golem_actors import arguments
from golem_actors.errors import ArgumentError, GolemActorsError

NOT_NUMBERS = [True, False, None, "1", b"1", Decimal(1), 1j, [1], object()]
NOT_FINITE = [math.nan, -math.nan, math.inf, -math.inf, 10**400, -(10**400)]


def refused(call: object, *parts: str) -> str:
    """The message of the ArgumentError ``call`` raises, checked to contain every part."""
    with pytest.raises(ArgumentError) as info:
        call()  # type: ignore[operator]
    message = str(info.value)
    for part in parts:
        assert part in message, (part, message)
    return message


def test_the_error_is_a_value_error_under_the_root() -> None:
    assert issubclass(ArgumentError, ValueError)
    assert issubclass(ArgumentError, GolemActorsError)


# -- number --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", NOT_NUMBERS)
def test_number_refuses_bools_and_non_numbers(value: object) -> None:
    refused(lambda: arguments.number("period_s", value), "period_s must be a finite number", "got")


@pytest.mark.parametrize("value", NOT_FINITE)
def test_number_refuses_nan_and_infinities(value: object) -> None:
    refused(
        lambda: arguments.number("delay_s", value, ge=0), "delay_s must be a finite number >= 0"
    )


def test_number_accepts_ints_and_other_reals_as_floats() -> None:
    assert arguments.number("x", 3) == 3.0
    assert type(arguments.number("x", 3)) is float
    assert arguments.number("x", Fraction(1, 4), gt=0) == 0.25
    assert arguments.number("x", -1e308) == -1e308


@pytest.mark.parametrize(
    ("bounds", "good", "bad", "said"),
    [
        ({"gt": 0}, 1e-300, 0.0, "> 0"),
        ({"ge": 0}, 0.0, -1e-300, ">= 0"),
        ({"le": 5}, 5, 5.5, "<= 5"),
        ({"ge": 0, "le": 1}, 1.0, 1.0000001, "within [0, 1]"),
        ({"gt": 0, "le": 1}, 1.0, 0.0, "within (0, 1]"),
        ({"gt": 0, "ge": 2}, 2.0, 1.5, "> 0 and >= 2"),
        ({"ge": 1.5}, 1.5, 1.4, ">= 1.5"),
    ],
)
def test_number_bounds_are_inclusive_or_not_as_named(
    bounds: dict[str, Any], good: float, bad: float, said: str
) -> None:
    assert arguments.number("x", good, **bounds) == good
    message = refused(lambda: arguments.number("x", bad, **bounds))
    assert message == f"x must be a finite number {said}, got {bad!r}"


@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e6, 1e6))
def test_number_is_exactly_finite_and_above_the_bound(value: float, bound: float) -> None:
    if math.isfinite(value) and value > bound:
        assert arguments.number("v", value, gt=bound) == value
    else:
        refused(lambda: arguments.number("v", value, gt=bound), f"> {bound}", repr(value))


@given(st.integers())
def test_number_takes_any_int_a_float_can_hold(value: int) -> None:
    try:
        as_float = float(value)
    except OverflowError:
        refused(lambda: arguments.number("v", value))
    else:
        assert arguments.number("v", value) == as_float


# -- optional_number ------------------------------------------------------------------------------


def test_optional_number_passes_none_and_checks_the_rest() -> None:
    assert arguments.optional_number("timeout", None, gt=0) is None
    assert arguments.optional_number("timeout", 2, gt=0) == 2.0
    for bad in (0, -1.0, math.nan, math.inf, True, "5"):
        refused(
            lambda bad=bad: arguments.optional_number("timeout", bad, gt=0),
            "timeout must be a finite number > 0 or None",
        )


# -- whole ---------------------------------------------------------------------------------------


NOT_WHOLE = [True, False, 1.0, 2.5, math.nan, math.inf, "3", None, Decimal(3)]


@pytest.mark.parametrize("value", NOT_WHOLE)
def test_whole_refuses_bools_floats_and_non_numbers(value: object) -> None:
    refused(lambda: arguments.whole("count", value), "count must be a whole number, got")


@given(st.integers(), st.integers(-100, 100), st.integers(-100, 100))
def test_whole_is_exactly_within_its_bounds(value: int, low: int, high: int) -> None:
    if low <= value <= high:
        assert arguments.whole("n", value, ge=low, le=high) == value
    else:
        message = refused(lambda: arguments.whole("n", value, ge=low, le=high))
        assert message == f"n must be a whole number within [{low}, {high}], got {value}"


def test_whole_bounds() -> None:
    assert arguments.whole("max_workers", 1, ge=1) == 1
    message = refused(lambda: arguments.whole("max_workers", 0, ge=1))
    assert message == "max_workers must be a whole number >= 1, got 0"
    refused(
        lambda: arguments.whole("port", 65536, le=65535), "port must be a whole number <= 65535"
    )


# -- the caller's own error ----------------------------------------------------------------------


class _DomainError(GolemActorsError, ValueError):
    pass


@pytest.mark.parametrize(
    "check",
    [
        lambda error: arguments.number("task_timeout", 0, gt=0, error=error),
        lambda error: arguments.optional_number("timeout", math.nan, error=error),
        lambda error: arguments.whole("batch_size", 0, ge=1, error=error),
    ],
)
def test_a_caller_can_name_the_error_raised(check: object) -> None:
    with pytest.raises(_DomainError, match=r"must be a (finite|whole) number") as info:
        check(_DomainError)  # type: ignore[operator]
    assert not isinstance(info.value, ArgumentError)
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(", got ")):
        check(argparse.ArgumentTypeError)  # type: ignore[operator]
