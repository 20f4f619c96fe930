"""Counter-proposals, checking the provider's answer, and the agreed terms. Pure code."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from golem_actors.localnet.offer import ProviderSpec, decide
from golem_actors.policy.demand import (
    ACCEPT_TIMEOUT,
    CHOSEN_PLATFORM,
    DEBIT_NOTE_INTERVAL,
    PAYMENT_TIMEOUT,
    DemandSpec,
    build_demand,
    platform_address_property,
)
from golem_actors.policy.negotiation import (
    AgreedTerms,
    AgreementTermsError,
    CounterRejectedError,
    TermRange,
    agreed_terms,
    check_provider_counter,
    counter_properties,
)
from golem_actors.policy.payload import VmPayload
from golem_actors.policy.pricing import COEFFS, USAGE_VECTOR, LinearPricing

PLATFORM = "erc20-holesky-tglm"
ADDRESS = platform_address_property(PLATFORM)
REQUESTOR = "0x1111111111111111111111111111111111111111"
NODE_ID = "0x7f3c1e2d4b5a69788796a5b4c3d2e1f001122334"
NOW = datetime(2026, 1, 2, tzinfo=UTC)
NOW_MS = NOW.timestamp() * 1000


def demand(**spec_kwargs: Any) -> dict[str, Any]:
    spec = DemandSpec(VmPayload(), **spec_kwargs)
    built = build_demand(
        spec,
        now=NOW,
        decoration_properties={ADDRESS: REQUESTOR},
        decoration_constraints=[f"({ADDRESS}=*)"],
    )
    return built.properties


def localnet_offer(**spec_kwargs: Any) -> dict[str, Any]:
    return ProviderSpec("p1", **spec_kwargs).offer_properties(NODE_ID)


LONG = {"expiration": timedelta(hours=24)}


def test_counter_is_our_demand_plus_the_chosen_platform():
    ours = demand()
    counter = counter_properties(ours, localnet_offer(), payment_platform=PLATFORM)
    assert counter == {**ours, CHOSEN_PLATFORM: PLATFORM}
    assert ours.get(CHOSEN_PLATFORM) is None  # the demand itself is left alone


def test_no_common_platform_is_a_rejection_naming_both():
    offer = localnet_offer(payment_platform="erc20-polygon-glm")
    with pytest.raises(CounterRejectedError, match=r"erc20-holesky-tglm.*\['erc20-polygon-glm'\]"):
        counter_properties(demand(), offer, payment_platform=PLATFORM)


@pytest.mark.parametrize(
    ("asked", "offered", "countered"),
    [
        (120, 120, 120),  # same
        (120, 600, 600),  # the provider's longer interval is fine with us: take it
        (120, 60, 120),  # shorter than we accept: propose our bound (yapapi's clamp)
        (60, 59.5, 60),
    ],
)
def test_debit_note_interval_is_taken_or_clamped(asked, offered, countered):
    counter = counter_properties(
        demand(debit_note_interval_s=asked),
        {**localnet_offer(), DEBIT_NOTE_INTERVAL: offered},
        payment_platform=PLATFORM,
    )
    assert counter[DEBIT_NOTE_INTERVAL] == countered


def test_all_three_terms_with_mid_agreement_payments():
    ours = demand(payment_timeout_s=3600, debit_note_accept_timeout_s=60, **LONG)
    offer = {**localnet_offer(), PAYMENT_TIMEOUT: 1800, ACCEPT_TIMEOUT: 300}
    counter = counter_properties(ours, offer, payment_platform=PLATFORM)
    assert counter[PAYMENT_TIMEOUT] == 3600  # too short for us: ours
    assert counter[ACCEPT_TIMEOUT] == 300  # longer than we need: theirs


def test_terms_we_did_not_ask_for_or_they_do_not_offer_are_left_out():
    # We want no mid-agreement payments: the provider's payment timeout is not echoed.
    counter = counter_properties(demand(), localnet_offer(), payment_platform=PLATFORM)
    assert PAYMENT_TIMEOUT not in counter
    # A provider that does not negotiate a term: we drop it too (no MAP with it).
    offer = {
        k: v for k, v in localnet_offer().items() if k not in (PAYMENT_TIMEOUT, ACCEPT_TIMEOUT)
    }
    counter = counter_properties(demand(payment_timeout_s=3600, **LONG), offer,
                                 payment_platform=PLATFORM)  # fmt: skip
    assert PAYMENT_TIMEOUT not in counter
    assert ACCEPT_TIMEOUT not in counter
    assert counter[DEBIT_NOTE_INTERVAL] == 120


@pytest.mark.parametrize("bad", [0, -5, "120", None, True, float("nan")])
def test_a_malformed_offered_term_is_a_rejection(bad):
    with pytest.raises(CounterRejectedError, match=f"offer's {DEBIT_NOTE_INTERVAL}.*positive"):
        counter_properties(
            demand(), {**localnet_offer(), DEBIT_NOTE_INTERVAL: bad}, payment_platform=PLATFORM
        )


def test_limits_override_the_acceptable_range():
    limits = {DEBIT_NOTE_INTERVAL: TermRange(min=30, max=300)}
    offer = {**localnet_offer(), DEBIT_NOTE_INTERVAL: 45}
    counter = counter_properties(demand(), offer, payment_platform=PLATFORM, limits=limits)
    assert counter[DEBIT_NOTE_INTERVAL] == 45
    offer[DEBIT_NOTE_INTERVAL] = 900
    counter = counter_properties(demand(), offer, payment_platform=PLATFORM, limits=limits)
    assert counter[DEBIT_NOTE_INTERVAL] == 300
    with pytest.raises(ValueError, match="not negotiable terms"):
        counter_properties(
            demand(), offer, payment_platform=PLATFORM, limits={"golem.x": TermRange(1)}
        )


def test_term_range():
    assert 5 in TermRange(min=5)
    assert 4 not in TermRange(min=5)
    assert 10**9 in TermRange()
    assert TermRange(max=10).clamp(11.5) == 10
    assert TermRange(min=2.5).clamp(1) == 3
    assert TermRange(min=1, max=9).clamp(4) == 4
    for bad in ({"min": 0}, {"max": -1}, {"min": float("inf")}, {"min": True}):
        with pytest.raises(ValueError, match="TermRange"):
            TermRange(**bad)
    with pytest.raises(ValueError, match="empty"):
        TermRange(min=10, max=5)


# --- the provider's answer ----------------------------------------------------------------------


def counter_and_offer() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Our counter, the provider's offer, and a draft that keeps both as they are."""
    offer = localnet_offer()
    ours = counter_properties(demand(payment_timeout_s=3600, **LONG), offer,
                              payment_platform=PLATFORM)  # fmt: skip
    assert (ours[DEBIT_NOTE_INTERVAL], ours[PAYMENT_TIMEOUT], ours[ACCEPT_TIMEOUT]) == (
        120.0,
        43200.0,
        120.0,
    )
    draft = {
        **offer,
        **{k: ours[k] for k in (DEBIT_NOTE_INTERVAL, PAYMENT_TIMEOUT, ACCEPT_TIMEOUT)},
    }
    return ours, offer, draft


def test_a_draft_keeping_everything_is_fine():
    ours, offer, draft = counter_and_offer()
    assert check_provider_counter(ours, draft, offer_props=offer) is None
    assert check_provider_counter(ours, draft) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({COEFFS: [0.00002, 0.0002, 0.001]}, "changed its prices"),
        ({USAGE_VECTOR: ["golem.usage.cpu_sec", "golem.usage.duration_sec"]}, "usage vector"),
        ({"golem.com.scheme": "payd"}, "changed its pricing scheme"),
        ({COEFFS: "free"}, "bad pricing"),
        ({DEBIT_NOTE_INTERVAL: None}, f"dropped {DEBIT_NOTE_INTERVAL}"),
        ({PAYMENT_TIMEOUT: None}, f"dropped {PAYMENT_TIMEOUT}"),
        ({DEBIT_NOTE_INTERVAL: 60}, f"moved {DEBIT_NOTE_INTERVAL} to 60, outside our range"),
        ({PAYMENT_TIMEOUT: 3600}, f"moved {PAYMENT_TIMEOUT} to 3600, outside our range"),
        ({ACCEPT_TIMEOUT: None}, f"dropped {ACCEPT_TIMEOUT}"),
        ({PAYMENT_TIMEOUT: "soon"}, f"bad {PAYMENT_TIMEOUT}"),
        ({ADDRESS: None}, f"no address on {PLATFORM}"),
        ({CHOSEN_PLATFORM: "erc20-polygon-glm"}, "chose platform 'erc20-polygon-glm'"),
    ],
)
def test_drafts_that_change_prices_or_terms_are_refused(change, reason):
    ours, offer, draft = counter_and_offer()
    for key, value in change.items():
        if value is None:
            draft.pop(key)
        else:
            draft[key] = value
    why = check_provider_counter(ours, draft, offer_props=offer)
    assert why is not None
    assert reason in why


def test_a_draft_may_make_terms_more_generous():
    ours, offer, draft = counter_and_offer()
    draft.update({DEBIT_NOTE_INTERVAL: 600, PAYMENT_TIMEOUT: 86400, ACCEPT_TIMEOUT: 180})
    assert check_provider_counter(ours, draft, offer_props=offer) is None
    too_long = {DEBIT_NOTE_INTERVAL: TermRange(max=300)}
    why = check_provider_counter(ours, draft, offer_props=offer, limits=too_long)
    assert why is not None
    assert "outside our range" in why


def test_equal_prices_written_differently_are_the_same_prices():
    ours, offer, draft = counter_and_offer()
    draft[COEFFS] = [2e-05, 0.0001, 0.0010]
    assert check_provider_counter(ours, draft, offer_props=offer) is None


# --- agreed terms -------------------------------------------------------------------------------


def test_agreed_terms_with_mid_agreement_payments():
    offer = {**localnet_offer(), DEBIT_NOTE_INTERVAL: 60, PAYMENT_TIMEOUT: 600}
    terms = agreed_terms({PAYMENT_TIMEOUT: 900, CHOSEN_PLATFORM: PLATFORM}, offer)
    assert terms == AgreedTerms(
        pricing=LinearPricing.from_properties(offer),
        debit_note_interval_s=60.0,
        payment_timeout_s=600.0,  # the provider's side: what it issues payable notes by
        accept_timeout_s=120.0,
        payment_platform=PLATFORM,
    )
    assert terms.mid_agreement_payments


@pytest.mark.parametrize(
    ("demand_props", "offer_drop", "expect"),
    [
        ({}, (), (120.0, None, 120.0)),  # we did not ask for MAP: none, whatever they offer
        ({PAYMENT_TIMEOUT: 900}, (PAYMENT_TIMEOUT,), (120.0, None, 120.0)),  # they do not do MAP
        ({}, (DEBIT_NOTE_INTERVAL, ACCEPT_TIMEOUT), (None, None, None)),
    ],
)
def test_agreed_terms_without_mid_agreement_payments(demand_props, offer_drop, expect):
    offer = {k: v for k, v in localnet_offer().items() if k not in offer_drop}
    terms = agreed_terms(demand_props, offer)
    assert (terms.debit_note_interval_s, terms.payment_timeout_s, terms.accept_timeout_s) == expect
    assert not terms.mid_agreement_payments
    assert terms.payment_platform is None


def test_a_pre_gap3_interval_is_understood():
    offer = {k: v for k, v in localnet_offer().items() if k != DEBIT_NOTE_INTERVAL}
    offer["golem.com.scheme.payu.interval_sec"] = 300
    assert agreed_terms({}, offer).debit_note_interval_s == 300.0


@pytest.mark.parametrize(
    ("demand_props", "offer_change", "problem"),
    [
        ({}, {COEFFS: [1]}, "offer has bad pricing"),
        ({}, {DEBIT_NOTE_INTERVAL: -1}, f"offer {DEBIT_NOTE_INTERVAL} must be a positive"),
        ({}, {ACCEPT_TIMEOUT: "2m"}, f"offer {ACCEPT_TIMEOUT} must be a positive"),
        ({PAYMENT_TIMEOUT: 0}, {}, f"demand {PAYMENT_TIMEOUT} must be a positive"),
        ({CHOSEN_PLATFORM: 7}, {}, f"demand {CHOSEN_PLATFORM} must be a string"),
    ],
)
def test_malformed_agreements_are_errors_naming_the_property(demand_props, offer_change, problem):
    with pytest.raises(AgreementTermsError, match=re.escape(problem)):
        agreed_terms(demand_props, {**localnet_offer(), **offer_change})


# --- the whole negotiation against localnet's provider logic ------------------------------------


@given(
    asked_interval=st.integers(min_value=1, max_value=600),
    asked_timeout=st.none() | st.integers(min_value=1, max_value=3600),
    asked_accept=st.integers(min_value=1, max_value=600),
    their_interval=st.integers(min_value=1, max_value=600),
    their_timeout=st.integers(min_value=1, max_value=3600),
    their_accept=st.integers(min_value=1, max_value=600),
)
def test_negotiating_with_a_localnet_provider_ends_in_terms_we_accept(
    *, asked_interval, asked_timeout, asked_accept, their_interval, their_timeout, their_accept
):
    spec = ProviderSpec(
        "p1",
        debit_note_interval=their_interval,
        min_debit_note_interval=1,
        payment_timeout=their_timeout,
        accept_timeout=their_accept,
    )
    demand_spec = DemandSpec(
        VmPayload(),
        expiration=timedelta(hours=2),
        debit_note_interval_s=asked_interval,
        payment_timeout_s=asked_timeout,
        debit_note_accept_timeout_s=asked_accept,
    )
    built = build_demand(
        demand_spec,
        now=NOW,
        decoration_properties={ADDRESS: REQUESTOR},
        decoration_constraints=[f"({ADDRESS}=*)"],
    )
    offer = spec.offer_properties(NODE_ID)
    counter = counter_properties(built.properties, offer, payment_platform=PLATFORM)
    decision = decide(spec, NODE_ID, counter, built.constraints, now_ms=NOW_MS)
    assert decision.accept, decision.reason
    draft = dict(decision.properties)
    why = check_provider_counter(counter, draft, offer_props=offer)
    # localnet clamps what we ask down to its own values; we ask at least what it offers,
    # except where we clamped theirs up to our minimum, which it then refuses to go above.
    clamped_up = asked_interval > their_interval or asked_accept > their_accept
    clamped_up |= asked_timeout is not None and asked_timeout > their_timeout
    assert (why is None) == (not clamped_up), why
    if why is None:
        terms = agreed_terms(counter, draft)
        assert terms.debit_note_interval_s == their_interval
        assert terms.accept_timeout_s == their_accept
        assert terms.mid_agreement_payments == (asked_timeout is not None)
        assert terms.payment_platform == PLATFORM
        assert terms.pricing.start_price == Decimal("0.001")
