"""A session's demand settings, a cluster's overrides, and the demand it hands the market."""

from __future__ import annotations

import datetime as dt
import queue
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from golem_actors.actors.market import PublishDemand
from golem_actors.golem import Golem, GolemError
from golem_actors.localnet.offer import ProviderSpec
from golem_actors.policy.demand import (
    ACCEPT_TIMEOUT,
    DEBIT_NOTE_INTERVAL,
    EXPIRATION,
    PAYMENT_TIMEOUT,
    DemandError,
)
from golem_actors.policy.payload import TASK_PACKAGE, VmPayload
from golem_actors.policy.scoring import default_scorer
from golem_actors.session_demand import SessionDemand, publish_demand
from golem_actors.yagna import ApiConfig
from tests.actors.test_activity import Inbox

PLATFORM = "erc20-holesky-tglm"
ADDRESS = f"golem.com.payment.platform.{PLATFORM}.address"
NOWHERE = ApiConfig(app_key="k", api_url="http://127.0.0.1:9")
HASH = "9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae"
PACKAGE = f"hash:sha3:{HASH}:http://registry.example/a.gvmi"


def settings(**changes: Any) -> SessionDemand:
    base: dict[str, Any] = {
        "subnet": "public",
        "payment_platform": PLATFORM,
        "expiration": dt.timedelta(hours=3),
        "debit_note_interval_s": 120,
        "scorer": default_scorer(),
        "image_resolver": lambda _payload: PACKAGE,
    }
    return SessionDemand(**{**base, **changes})


def test_the_session_defaults_ask_for_mid_agreement_payments_only_on_long_demands() -> None:
    assert settings().spec(VmPayload()).payment_timeout_s is None
    long = settings(expiration=dt.timedelta(hours=10))
    assert long.spec(VmPayload()).payment_timeout_s == 18000
    assert long.spec(VmPayload(), payment_timeout_s=None).payment_timeout_s is None  # off
    assert settings(payment_timeout_s=None).spec(VmPayload()).payment_timeout_s is None


def test_a_cluster_overrides_the_payment_terms_and_adds_to_the_extras() -> None:
    session = settings(
        payment_timeout_s=3600,
        extra_properties={"my.app": "a", "my.tier": 1},
        extra_constraints=("(golem.inf.cpu.architecture=x86_64)",),
    )
    own = session.spec(VmPayload())
    assert (own.payment_timeout_s, own.debit_note_interval_s) == (3600, 120)
    spec = session.spec(
        VmPayload(),
        payment_timeout_s=600,
        debit_note_interval_s=30,
        extra_properties={"my.tier": 2},
        extra_constraints=["(golem.inf.mem.gib>=4)"],
    )
    assert (spec.payment_timeout_s, spec.debit_note_interval_s) == (600, 30)
    assert spec.extra_properties == {"my.app": "a", "my.tier": 2}
    assert spec.extra_constraints == (
        "(golem.inf.cpu.architecture=x86_64)",
        "(golem.inf.mem.gib>=4)",
    )


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"extra_constraints": "(a=b)"}, "extra_constraints must be a tuple"),
        ({"extra_properties": [("a", 1)]}, "extra_properties must be a mapping"),
        ({"extra_properties": {"a b": 1}}, "extra_properties key"),
        ({"payment_timeout_s": "sometimes"}, "payment_timeout_s must be a whole number"),
        ({"payment_timeout_s": 0}, "payment_timeout_s must be a whole number"),
        ({"payment_timeout_s": 20000}, "payment_timeout_s .* must not exceed the expiration"),
        ({"debit_note_interval_s": 0}, "debit_note_interval_s must be a whole number"),
    ],
)
def test_bad_cluster_settings_are_refused_naming_the_field(overrides, problem) -> None:
    with pytest.raises(DemandError, match=problem):
        settings().spec(VmPayload(), **overrides)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"payment_timeout_s": "sometimes"}, "payment_timeout_s must be"),
        ({"payment_timeout_s": -5}, "payment_timeout_s must be"),
        ({"extra_properties": {"golem..x": 1}}, "extra_properties key"),
        ({"extra_properties": {"x": None}}, r"extra_properties\['x'\]"),
        ({"extra_constraints": ("a=b",)}, r"extra_constraints\[0\]"),
        ({"extra_constraints": "(a=b)"}, "extra_constraints must be a tuple"),
    ],
)
def test_bad_session_settings_are_refused_when_the_session_is_made(options, problem) -> None:
    with pytest.raises(GolemError, match=problem):
        Golem(config=NOWHERE, **options)


@pytest.fixture
def market() -> Iterator[tuple[pykka.ActorRef[Any], queue.Queue[Any]]]:
    box: queue.Queue[Any] = queue.Queue()
    ref = Inbox.start(box)
    try:
        yield ref, box
    finally:
        ref.stop(timeout=5)


def test_the_market_gets_a_demand_it_can_renew_with_a_fresh_expiration_and_the_same_image(
    market: tuple[pykka.ActorRef[Any], queue.Queue[Any]],
) -> None:
    ref, box = market
    asked: list[VmPayload] = []

    def resolver(payload: VmPayload) -> str:
        asked.append(payload)
        return PACKAGE

    spec = settings(expiration=dt.timedelta(seconds=30), debit_note_interval_s=5).spec(
        VmPayload(image_tag="golem/alpine:latest")
    )
    decoration = ({ADDRESS: "0xaa"}, [f"({ADDRESS}=*)"])
    times = iter(
        [dt.datetime(2030, 1, 1, tzinfo=dt.UTC), dt.datetime(2030, 1, 1, 0, 0, 25, tzinfo=dt.UTC)]
    )
    key = publish_demand(
        ref,
        "Web",
        spec,
        decoration,
        scorer=default_scorer(),
        image_resolver=resolver,
        clock=lambda: next(times),
    )
    first = box.get(timeout=5)
    assert isinstance(first, PublishDemand)
    assert (first.key, first.lifetime_s) == (key, 30.0)
    assert first.renew is not None
    renewed = first.renew()
    assert renewed.key == key
    assert renewed.properties[EXPIRATION] == first.properties[EXPIRATION] + 25_000
    assert renewed.properties[TASK_PACKAGE] == first.properties[TASK_PACKAGE] == PACKAGE
    assert len(asked) == 1  # the registry is asked once, not at every renewal
    assert PAYMENT_TIMEOUT not in renewed.properties
    counter = renewed.counter(
        {ADDRESS: "0xbb", "golem.com.pricing.model": "linear"}
    )  # the renewed counter carries the renewed expiration
    assert isinstance(counter, dict)
    assert counter[EXPIRATION] == renewed.properties[EXPIRATION]


def test_the_asked_interval_and_payment_timeout_are_the_terms_not_a_floor(
    market: tuple[pykka.ActorRef[Any], queue.Queue[Any]],
) -> None:
    ref, box = market
    spec = settings(payment_timeout_s=600, debit_note_interval_s=30).spec(VmPayload())
    decoration = ({ADDRESS: "0xaa"}, [f"({ADDRESS}=*)"])
    publish_demand(
        ref, "Web", spec, decoration, scorer=default_scorer(), image_resolver=lambda _p: None
    )
    sent = box.get(timeout=5)
    assert isinstance(sent, PublishDemand)
    # A provider's own, longer defaults ...
    provider = ProviderSpec(
        "p1", debit_note_interval=120, payment_timeout=43200, accept_timeout=300
    )
    offer = provider.offer_properties("0xbb")
    ours = sent.counter(offer)
    assert isinstance(ours, dict)
    # ... are countered with ours (a provider adopts them, as ya-provider does), except the
    # accept timeout, where a longer one is simply easier on us.
    assert (ours[DEBIT_NOTE_INTERVAL], ours[PAYMENT_TIMEOUT], ours[ACCEPT_TIMEOUT]) == (
        30,
        600,
        300,
    )
    draft = {**offer, DEBIT_NOTE_INTERVAL: 30, PAYMENT_TIMEOUT: 600}
    assert sent.check(ours, draft, offer) is None
    moved = sent.check(ours, {**draft, PAYMENT_TIMEOUT: 43200}, offer)
    assert moved is not None
    assert PAYMENT_TIMEOUT in moved
