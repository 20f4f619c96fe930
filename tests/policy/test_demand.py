"""Building the demand, and checking localnet's providers would match it. Pure code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from golem_actors.localnet import constraints as matcher
from golem_actors.localnet.offer import ProviderSpec, decide
from golem_actors.policy.demand import (
    ACCEPT_TIMEOUT,
    AUTO,
    CHOSEN_PLATFORM,
    DEBIT_NOTE_INTERVAL,
    DEFAULT_EXPIRATION,
    EXPIRATION,
    MULTI_ACTIVITY,
    PAYMENT_TIMEOUT,
    SUBNET,
    DemandError,
    DemandSpec,
    build_demand,
    payment_timeout_for,
    platform_address_property,
    renewal_times,
)
from golem_actors.policy.payload import TASK_PACKAGE, VmPayload

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
PLATFORM = "erc20-holesky-tglm"
ADDRESS = platform_address_property(PLATFORM)
REQUESTOR = "0x1111111111111111111111111111111111111111"
NODE_ID = "0x7f3c1e2d4b5a69788796a5b4c3d2e1f001122334"
# What yagna's GET /payment-api/v1/demandDecorations gives for an allocation on PLATFORM.
DECORATION_PROPS = {ADDRESS: REQUESTOR, "golem.com.payment.protocol.version": "3"}
DECORATION_CONSTRAINTS = [f"({ADDRESS}=*)", "(golem.com.payment.protocol.version>1)"]
HASH = "9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae"
URL = "http://registry.golem.network/download/x.gvmi"


def build(spec: DemandSpec, **kwargs: Any):
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("decoration_properties", DECORATION_PROPS)
    kwargs.setdefault("decoration_constraints", DECORATION_CONSTRAINTS)
    return build_demand(spec, **kwargs)


def test_default_demand_exactly():
    demand = build(DemandSpec(VmPayload()))
    assert demand.properties == {
        EXPIRATION: NOW_MS + int(DEFAULT_EXPIRATION.total_seconds() * 1000),
        SUBNET: "public",
        MULTI_ACTIVITY: True,
        DEBIT_NOTE_INTERVAL: 120,
        ACCEPT_TIMEOUT: 120,
        ADDRESS: REQUESTOR,
        "golem.com.payment.protocol.version": "3",
    }
    assert demand.constraints == (
        "(&(golem.inf.mem.gib>=0.5)(golem.inf.storage.gib>=2.0)(golem.inf.cpu.threads>=1)"
        "(golem.runtime.name=vm)(golem.node.debug.subnet=public)(golem.com.pricing.model=linear)"
        f"({ADDRESS}=*)(golem.com.payment.protocol.version>1))"
    )
    # The chosen platform goes into the counter-proposal, not the demand (yapapi, golem-js).
    assert CHOSEN_PLATFORM not in demand.properties
    # Without a payment timeout there are no mid-agreement payments.
    assert PAYMENT_TIMEOUT not in demand.properties


def test_expiration_is_milliseconds_since_the_epoch_from_the_given_now():
    demand = build(DemandSpec(VmPayload(), expiration=timedelta(minutes=10)))
    assert demand.properties[EXPIRATION] == NOW_MS + 600_000
    assert isinstance(demand.properties[EXPIRATION], int)


def test_payment_terms_and_image_and_extras():
    spec = DemandSpec(
        VmPayload(image_hash=HASH, image_url=URL, capabilities=("vpn",)),
        subnet="devnet-beta",
        expiration=timedelta(hours=12),
        debit_note_interval_s=60,
        payment_timeout_s=3600,
        debit_note_accept_timeout_s=240,
        multi_activity=False,
        extra_properties={"golem.node.id.name": "me"},
        extra_constraints=("(golem.inf.cpu.architecture=x86_64)",),
    )
    demand = build(spec)
    props = demand.properties
    assert props[SUBNET] == "devnet-beta"
    assert (props[DEBIT_NOTE_INTERVAL], props[PAYMENT_TIMEOUT], props[ACCEPT_TIMEOUT]) == (
        60,
        3600,
        240,
    )
    assert props[TASK_PACKAGE] == f"hash:sha3:{HASH}:{URL}"
    assert props["golem.node.id.name"] == "me"
    assert MULTI_ACTIVITY not in props
    assert "(golem.runtime.capabilities=vpn)" in demand.constraints
    assert "(golem.node.debug.subnet=devnet-beta)" in demand.constraints
    assert demand.constraints.endswith("(golem.inf.cpu.architecture=x86_64))")
    assert spec.mid_agreement_payments


def test_repeated_constraints_appear_once():
    demand = build(
        DemandSpec(VmPayload(), extra_constraints=("(golem.com.pricing.model=linear)",)),
        decoration_constraints=[*DECORATION_CONSTRAINTS, DECORATION_CONSTRAINTS[0]],
    )
    assert demand.constraints.count("(golem.com.pricing.model=linear)") == 1
    assert demand.constraints.count(DECORATION_CONSTRAINTS[0]) == 1


def test_the_image_resolver_is_used_and_its_failure_names_the_image():
    package = f"hash:sha3:{HASH}:{URL}"
    demand = build(DemandSpec(VmPayload(image_tag="me/app:1")), image_resolver=lambda _p: package)
    assert demand.properties[TASK_PACKAGE] == package
    with pytest.raises(ValueError, match="image tag me/app:1 cannot be resolved"):
        build(DemandSpec(VmPayload(image_tag="me/app:1")), image_resolver=lambda _p: None)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"subnet": ""}, "subnet must be a plain word"),
        ({"subnet": "pub lic"}, "subnet must be a plain word"),
        ({"subnet": "a)(b=c"}, "subnet must be a plain word"),
        ({"subnet": "*"}, "subnet must be a plain word"),
        ({"payment_platform": "erc20 holesky"}, "payment_platform must be a plain word"),
        ({"expiration": timedelta(0)}, "expiration must be a positive timedelta"),
        ({"expiration": timedelta(seconds=-5)}, "expiration must be a positive timedelta"),
        ({"expiration": 600}, "expiration must be a positive timedelta"),
        ({"debit_note_interval_s": 0}, "debit_note_interval_s must be a whole number"),
        ({"debit_note_interval_s": -120}, "debit_note_interval_s must be a whole number"),
        ({"debit_note_interval_s": 1.5}, "debit_note_interval_s must be a whole number"),
        ({"debit_note_interval_s": True}, "debit_note_interval_s must be a whole number"),
        ({"debit_note_interval_s": 2**32}, "debit_note_interval_s must be a whole number"),
        ({"debit_note_accept_timeout_s": 0}, "debit_note_accept_timeout_s must be a whole"),
        ({"payment_timeout_s": 0}, "payment_timeout_s must be a whole number"),
        (
            {"expiration": timedelta(minutes=1), "debit_note_interval_s": 120},
            r"debit_note_interval_s \(120\) must not exceed the expiration \(60 s\)",
        ),
        (
            {"expiration": timedelta(hours=3), "payment_timeout_s": 43200},
            r"payment_timeout_s \(43200\) must not exceed the expiration",
        ),
        ({"multi_activity": "yes"}, "multi_activity must be a bool"),
        ({"extra_properties": {"a b": 1}}, "extra_properties key"),
        ({"extra_properties": {"": 1}}, "extra_properties key must be a dotted name"),
        ({"extra_properties": {"golem..name": 1}}, "extra_properties key must be a dotted name"),
        ({"extra_properties": {"golem.name.": 1}}, "extra_properties key must be a dotted name"),
        ({"extra_properties": {"a(b)=c": 1}}, "extra_properties key must be a dotted name"),
        ({"extra_properties": {'a"b': 1}}, "extra_properties key must be a dotted name"),
        ({"extra_properties": {7: 1}}, "extra_properties key must be a dotted name"),
        ({"extra_properties": {"a": None}}, r"extra_properties\['a'\] must be a string, number"),
        ({"extra_properties": {"a": {"b": 1}}}, r"extra_properties\['a'\] must be a string"),
        ({"extra_properties": {"a": [1, None]}}, r"extra_properties\['a'\] must be a string"),
        ({"extra_properties": {"a": [[1]]}}, r"extra_properties\['a'\] must be a string"),
        ({"extra_properties": {"a": float("inf")}}, r"extra_properties\['a'\] must be a finite"),
        ({"extra_properties": [("a", 1)]}, "extra_properties must be a mapping"),
        ({"extra_constraints": "(a=b)"}, "extra_constraints must be a tuple"),
        ({"extra_constraints": ("a=b",)}, r"extra_constraints\[0\] must be one parenthesized"),
        ({"extra_constraints": ("(a=b)(c=d)",)}, r"extra_constraints\[0\]"),
        ({"extra_constraints": ("(a=b",)}, r"extra_constraints\[0\]"),
        ({"extra_constraints": ("(a=b))",)}, r"extra_constraints\[0\]"),
        ({"extra_constraints": ("",)}, r"extra_constraints\[0\]"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(kwargs, problem):
    with pytest.raises(DemandError, match=problem):
        DemandSpec(VmPayload(), **kwargs)


def test_payload_must_be_a_vm_payload():
    with pytest.raises(DemandError, match="payload must be a VmPayload"):
        DemandSpec("golem/alpine:latest")  # type: ignore[arg-type]


def test_now_must_be_timezone_aware():
    with pytest.raises(DemandError, match="now must be a timezone-aware datetime"):
        build(DemandSpec(VmPayload()), now=datetime(2026, 1, 1))  # noqa: DTZ001


def test_a_decoration_without_our_platform_address_is_refused():
    other = {platform_address_property("erc20-polygon-glm"): REQUESTOR}
    with pytest.raises(DemandError, match=f"no {ADDRESS}.*erc20-holesky-tglm"):
        build(DemandSpec(VmPayload()), decoration_properties=other)


def test_conflicting_properties_are_refused_not_overwritten():
    with pytest.raises(DemandError, match=f"the payment decoration sets {SUBNET}"):
        build(DemandSpec(VmPayload()), decoration_properties={**DECORATION_PROPS, SUBNET: "x"})
    with pytest.raises(DemandError, match=f"extra_properties sets {DEBIT_NOTE_INTERVAL}"):
        build(DemandSpec(VmPayload(), extra_properties={DEBIT_NOTE_INTERVAL: 5}))
    # The same value twice is no conflict.
    demand = build(DemandSpec(VmPayload(), extra_properties={SUBNET: "public"}))
    assert demand.properties[SUBNET] == "public"


def test_bad_decoration_constraints_are_refused():
    with pytest.raises(DemandError, match="decoration_constraints must be a sequence"):
        build(DemandSpec(VmPayload()), decoration_constraints="(a=b)")
    with pytest.raises(DemandError, match=r"decoration_constraints\[1\]"):
        build(DemandSpec(VmPayload()), decoration_constraints=["(a=b)", "oops"])


def provider(**kwargs: Any) -> ProviderSpec:
    return ProviderSpec("p1", **kwargs)


def matches(demand_spec: DemandSpec, provider_spec: ProviderSpec) -> bool:
    demand = build(demand_spec)
    return matcher.match_demand_offer(
        demand.properties,
        demand.constraints,
        provider_spec.offer_properties(NODE_ID),
        provider_spec.offer_constraints(),
    )


def test_localnet_providers_match_our_default_demand_and_would_counter_it():
    demand = build(DemandSpec(VmPayload()))
    spec = provider()
    assert matches(DemandSpec(VmPayload()), spec)
    decision = decide(spec, NODE_ID, demand.properties, demand.constraints, now_ms=NOW_MS)
    assert decision.accept, decision.reason


@pytest.mark.parametrize(
    ("demand_kwargs", "provider_kwargs", "expected"),
    [
        ({}, {}, True),
        ({"subnet": "private"}, {}, False),
        ({"subnet": "private"}, {"subnet": "private"}, True),
        ({}, {"subnet": "private"}, False),
        ({"payload": VmPayload(min_mem_gib=8)}, {"mem_gib": 4.0}, False),
        ({"payload": VmPayload(min_mem_gib=8)}, {"mem_gib": 8.0}, True),
        ({"payload": VmPayload(min_cpu_threads=4)}, {"cpu_threads": 2}, False),
        ({"payload": VmPayload(min_storage_gib=50)}, {}, False),
        ({"payload": VmPayload(capabilities=("vpn", "inet"))}, {}, True),
        ({"payload": VmPayload(capabilities=("gpu",))}, {}, False),
        ({"payload": VmPayload(runtime="wasmtime")}, {}, False),
        ({"extra_constraints": ("(golem.inf.cpu.architecture=x86_64)",)}, {}, True),
        ({"extra_constraints": ("(golem.inf.cpu.architecture=aarch64)",)}, {}, False),
    ],
)
def test_which_localnet_providers_match(demand_kwargs, provider_kwargs, expected):
    payload = demand_kwargs.pop("payload", VmPayload())
    assert matches(DemandSpec(payload, **demand_kwargs), provider(**provider_kwargs)) is expected


def test_a_provider_pricing_other_than_linear_does_not_match():
    spec = provider(extra_properties={"golem.com.pricing.model": "burn-rate"})
    assert not matches(DemandSpec(VmPayload()), spec)


@given(
    subnet=st.sampled_from(["public", "devnet", "a-b_c.1"]),
    minutes=st.integers(min_value=1, max_value=24 * 60),
    interval=st.integers(min_value=1, max_value=60),
    accept=st.integers(min_value=1, max_value=10_000),
    timeout=st.none() | st.integers(min_value=1, max_value=60),
)
def test_every_valid_spec_builds_a_demand_its_subnet_providers_match(
    subnet, minutes, interval, accept, timeout
):
    spec = DemandSpec(
        VmPayload(),
        subnet=subnet,
        expiration=timedelta(minutes=minutes),
        debit_note_interval_s=interval,
        debit_note_accept_timeout_s=accept,
        payment_timeout_s=timeout,
    )
    demand = build(spec)
    matcher.parse(demand.constraints)  # well-formed for Golem's constraint grammar
    assert matches(spec, provider(subnet=subnet))
    assert (PAYMENT_TIMEOUT in demand.properties) == (timeout is not None)


def test_extra_properties_of_every_kind_yagna_carries_are_kept() -> None:
    extras = {
        "golem.!exp.gap-31.v0.node.descriptor": "signed",
        "my.app.tags": ["a", 1, 2.5, True],
        "my.app.enabled": False,
        "my.app.empty": "",
    }
    assert (
        build(DemandSpec(VmPayload(), extra_properties=extras)).properties.items() >= extras.items()
    )


@pytest.mark.parametrize(
    ("asked", "expiration", "expected"),
    [
        (AUTO, timedelta(minutes=175), None),  # the default 3 h demand: no mid-agreement payments
        (AUTO, timedelta(hours=4, minutes=59), None),
        (AUTO, timedelta(hours=5), 9000),  # half the agreement ...
        (AUTO, timedelta(hours=10), 18000),
        (AUTO, timedelta(hours=30), 43200),  # ... but never more than golem-js's 12 h
        (600, timedelta(hours=3), 600),  # asked: as asked (DemandSpec checks it)
        (None, timedelta(hours=30), None),  # switched off
    ],
)
def test_payment_timeout_for_auto_asks_for_map_on_long_demands_only(asked, expiration, expected):
    assert payment_timeout_for(asked, expiration) == expected


def test_payment_timeout_for_refuses_other_words() -> None:
    with pytest.raises(DemandError, match=r"payment_timeout_s must be a whole number .* 'auto'"):
        payment_timeout_for("always", timedelta(hours=10))


def test_a_long_demand_gets_mid_agreement_payments_that_localnet_agrees_to() -> None:
    expiration = timedelta(hours=10)
    spec = DemandSpec(
        VmPayload(), expiration=expiration, payment_timeout_s=payment_timeout_for(AUTO, expiration)
    )
    demand = build(spec)
    assert spec.mid_agreement_payments
    assert demand.properties[PAYMENT_TIMEOUT] == 18000
    decision = decide(provider(), NODE_ID, demand.properties, demand.constraints, now_ms=NOW_MS)
    assert decision.accept, decision.reason
    assert decision.properties[PAYMENT_TIMEOUT] == 18000


def test_renewal_times_leave_a_margin_of_ten_minutes_or_a_quarter_of_the_life() -> None:
    assert renewal_times(DEFAULT_EXPIRATION.total_seconds()) == (9900.0, 600.0)  # 175 min
    assert renewal_times(20.0) == (15.0, 5.0)


@given(st.floats(min_value=0.001, max_value=1e9))
def test_renewal_comes_before_the_expiration_and_not_too_early(lifetime: float) -> None:
    renew_in, margin = renewal_times(lifetime)
    assert renew_in + margin == pytest.approx(lifetime)
    assert 0 < margin <= min(600.0, lifetime / 4) + 1e-9
    assert renew_in >= 0.75 * lifetime - 1e-9
