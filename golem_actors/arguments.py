"""Checks of numeric arguments, so every setting refuses a bad number the same way.

Durations, counts and factors are checked where they are given (a constructor, a method's
arguments). Hand-written a dozen times, those checks each differed a little: some let ``True``
through (an ``int`` to Python, never a count or a duration to us), some failed with a bare
``TypeError`` on a string, some let NaN through (every comparison with it is False). These
functions refuse all of that alike:

- a bool, or anything that is not a real number (an integral one for :func:`whole`); ``Decimal``
  is not one (amounts are money, checked where they are parsed);
- NaN and the infinities;
- a value outside the bounds given (``gt``, ``ge``, ``le``).

The error names the field, what it must be and the value given
(``period_s must be a finite number > 0, got 0.0``). It is an :class:`ArgumentError` (a
``ValueError``), or the ``error`` the caller names, so a module with an error of its own
(``TaskDefinitionError``, ``PricingError``, argparse's ``ArgumentTypeError``) keeps raising it.

Pure, and it imports nothing of the package but the error root: every layer may use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral, Real
from typing import SupportsFloat, SupportsIndex, TypeGuard

from golem_actors.errors import ArgumentError

__all__ = ["ErrorType", "number", "optional_number", "whole"]

#: What a check raises: an exception class (or any callable) taking the message.
ErrorType = Callable[[str], Exception]


def number(
    name: str,
    value: object,
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    error: ErrorType = ArgumentError,
) -> float:
    """``value`` as a float: a finite real number, not a bool, within the bounds given."""
    return _number(name, value, gt=gt, ge=ge, le=le, error=error)


def optional_number(
    name: str,
    value: object,
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    error: ErrorType = ArgumentError,
) -> float | None:
    """None for None (a setting left open), else what :func:`number` makes of ``value``."""
    if value is None:
        return None
    return _number(name, value, gt=gt, ge=ge, le=le, error=error, alternative=" or None")


def whole(
    name: str,
    value: object,
    *,
    ge: int | None = None,
    le: int | None = None,
    error: ErrorType = ArgumentError,
) -> int:
    """``value`` as an int: a whole number (an ``int``, not a bool nor ``2.0``) within bounds."""
    if not _is_whole(value) or not _within(int(value), None, ge, le):
        raise error(f"{name} must be a whole number{_bounds(None, ge, le)}, got {value!r}")
    return int(value)


def _number(
    name: str,
    value: object,
    *,
    gt: float | None,
    ge: float | None,
    le: float | None,
    error: ErrorType,
    alternative: str = "",
) -> float:
    checked = _finite(value)
    if checked is None or not _within(checked, gt, ge, le):
        expected = f"a finite number{_bounds(gt, ge, le)}{alternative}"
        raise error(f"{name} must be {expected}, got {value!r}")
    return checked


# The exact types are tested first: an ABC's isinstance costs ~20 times more, and some checks
# (a supervisor's ``now``, a timer's delay) run on paths taken for every instance.


def _is_real(value: object) -> TypeGuard[SupportsFloat]:
    return type(value) is float or type(value) is int or _is_a(value, Real)


def _is_whole(value: object) -> TypeGuard[SupportsIndex]:
    return type(value) is int or _is_a(value, Integral)


def _is_a(value: object, kind: type) -> bool:
    return not isinstance(value, bool) and isinstance(value, kind)


def _finite(value: object) -> float | None:
    if not _is_real(value):
        return None
    try:
        result = float(value)
    except (OverflowError, ValueError):  # an int beyond the float range is no finite float
        return None
    return result if math.isfinite(result) else None


def _within(value: float, gt: float | None, ge: float | None, le: float | None) -> bool:
    return (
        (gt is None or value > gt) and (ge is None or value >= ge) and (le is None or value <= le)
    )


def _bounds(gt: float | None, ge: float | None, le: float | None) -> str:
    """`` > 0``, `` >= 1``, `` within [0, 1]``, `` within (0, 5]``; empty without bounds."""
    lows = [f"({gt}"] if gt is not None else []
    lows += [f"[{ge}"] if ge is not None else []
    if len(lows) == 1 and le is not None:
        return f" within {lows[0]}, {le}]"
    parts = [f"> {gt}"] if gt is not None else []
    parts += [f">= {ge}"] if ge is not None else []
    parts += [f"<= {le}"] if le is not None else []
    return "".join(f" {'and ' if i else ''}{part}" for i, part in enumerate(parts))
