"""Documents in, decisions out: which codes are refusals, and what a decision may accept."""

from __future__ import annotations

from decimal import Decimal

import pytest

from golem_actors.payments.decisions import (
    Code,
    check_refusal,
    decision,
    overcharge,
    refuse,
    valid_amount,
)

D = Decimal


def test_refusal_codes_are_the_provider_s_fault_only() -> None:
    not_refusals = {c for c in Code if not c.refusal}
    assert not_refusals == {Code.ACCEPTED, Code.NO_OP, Code.ALREADY_ACCEPTED, Code.AFTER_INVOICE}
    with pytest.raises(ValueError, match="accepted is not a refusal"):
        check_refusal(Code.ACCEPTED)
    check_refusal(Code.OVERCHARGE)


def test_only_accepting_codes_carry_an_amount_and_increase() -> None:
    accepted = decision(Code.ACCEPTED, D("1.5"), "ok", D("0.5"))
    assert (accepted.accept, accepted.amount, accepted.increase) == (True, D("1.5"), D("0.5"))
    assert not accepted.refused
    after = decision(Code.AFTER_INVOICE, D("1.5"), "paid", D("0.5"))
    assert (after.accept, after.amount, after.increase, after.refused) == (False, D(0), D(0), False)
    refused = refuse(Code.BUDGET, "no room")
    assert (refused.accept, refused.amount, refused.refused) == (False, D(0), True)


def test_overcharge_names_the_excess() -> None:
    why = overcharge(D("1.25"), D("1"), "60 s of a1")
    assert why.startswith("overcharge by 0.25 GLM: 1.25 GLM asked")
    assert why.endswith("at most 1 GLM for 60 s of a1")


def test_valid_amount() -> None:
    assert valid_amount(D(0))
    assert not valid_amount(D(-1))
    assert not valid_amount(D("NaN"))
    assert not valid_amount(D("Infinity"))
