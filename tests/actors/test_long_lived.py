"""Long-lived services on localnet: a demand that expires mid-run is renewed, so a restart after
its expiry still finds a provider; mid-agreement payments are agreed and every debit note is paid
within the payment timeout; a cluster's own properties reach the agreement."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from golem_actors import Golem, ServiceActor, ServiceState, SupervisorPolicy, WorkContext
from golem_actors.events import DebitNoteAccepted, DemandPublished, Event
from golem_actors.localnet.network import LocalNet
from golem_actors.policy.demand import DEBIT_NOTE_INTERVAL, EXPIRATION, PAYMENT_TIMEOUT
from golem_actors.policy.supervision import Backoff
from golem_actors.yagna import ApiConfig, YagnaClient
from tests.waiting import wait_for

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]

LIFETIME = dt.timedelta(seconds=20)  # the demand's expiration: it lapses during the test


class Sleeper(ServiceActor):
    def run(self, ctx: WorkContext) -> None:
        while True:
            ctx.run("/bin/true")
            ctx.sleep(0.5)


def session(localnet: LocalNet, **options: Any) -> tuple[Golem, list[Event]]:
    config = ApiConfig(app_key=localnet.app_key, api_url=localnet.api_url)
    golem = Golem(config=config, budget="5", settle_timeout_s=20, **options)
    events: list[Event] = []
    golem.start()
    assert golem.rt is not None
    golem.rt.events.subscribe(events.append)
    return golem, events


@pytest.fixture
def yagna(localnet: LocalNet) -> Iterator[YagnaClient]:
    with YagnaClient(ApiConfig(app_key=localnet.app_key, api_url=localnet.api_url)) as client:
        yield client


@pytest.fixture
def sessions() -> Iterator[list[Golem]]:
    made: list[Golem] = []
    try:
        yield made
    finally:
        for golem in made:
            golem.stop()
    assert pykka.ActorRegistry.get_all() == []


def test_a_restart_after_the_demand_expired_finds_a_new_provider(
    localnet: LocalNet, yagna: YagnaClient, sessions: list[Golem]
) -> None:
    golem, events = session(localnet, expiration=LIFETIME, debit_note_interval_s=5)
    sessions.append(golem)
    policy = SupervisorPolicy(service="Sleeper", backoff=Backoff(min_s=0.05, max_s=1.0))
    cluster = golem.run_service(Sleeper, 1, health_interval_s=1.0, policy=policy)
    assert cluster.wait_running(timeout=60)
    handle = cluster.handles[0]
    first = handle.snapshot()
    assert first.agreement_id is not None
    assert first.provider_name is not None
    lapses_ms = int(yagna.market.get_agreement(first.agreement_id).demand.properties[EXPIRATION])

    def lapsed() -> bool:
        return time.time() * 1000 > lapses_ms + 1000

    wait_for("the first demand's expiration to pass", lapsed, LIFETIME.total_seconds() + 10)
    localnet.kill(first.provider_name)

    def restarted() -> str | None:
        snap = handle.snapshot()
        moved = snap.provider_name not in (None, first.provider_name)
        running = snap.restarts >= 1 and snap.state is ServiceState.RUNNING
        return snap.agreement_id if moved and running else None

    agreement_id = wait_for("a restart on another provider", restarted, 60)
    demand = yagna.market.get_agreement(agreement_id).demand.properties
    assert demand[EXPIRATION] > time.time() * 1000  # made from the renewed demand
    assert demand[EXPIRATION] > lapses_ms
    assert len([e for e in events if isinstance(e, DemandPublished)]) >= 2  # renewed


def test_mid_agreement_payments_are_agreed_and_each_debit_note_paid_in_time(
    localnet: LocalNet, yagna: YagnaClient, sessions: list[Golem]
) -> None:
    golem, events = session(localnet, extra_properties={"golem.app.origin": "session"})
    sessions.append(golem)
    cluster = golem.run_service(
        Sleeper,
        1,
        payment_timeout_s=8,
        debit_note_interval_s=2,
        extra_properties={"golem.app.test": "map", "golem.app.tags": ["a", 1]},
    )
    assert cluster.wait_running(timeout=60)
    agreement_id = cluster.handles[0].snapshot().agreement_id
    assert agreement_id is not None
    agreement = yagna.market.get_agreement(agreement_id)
    for side in (agreement.demand.properties, agreement.offer.properties):
        # Both sides hold the payment timeout asked for: mid-agreement payments were agreed.
        assert (side[PAYMENT_TIMEOUT], side[DEBIT_NOTE_INTERVAL]) == (8, 2)
    assert agreement.demand.properties["golem.app.test"] == "map"
    assert agreement.demand.properties["golem.app.tags"] == ["a", 1]
    assert agreement.demand.properties["golem.app.origin"] == "session"

    def accepted() -> list[DebitNoteAccepted] | None:
        mine = [
            e for e in events if isinstance(e, DebitNoteAccepted) and e.agreement_id == agreement_id
        ]
        return mine if len(mine) >= 3 else None

    for event in wait_for("three debit notes paid", accepted, 30):
        note = yagna.payment.get_debit_note(event.debit_note_id)
        assert note.payment_due_date is not None  # a payable note: mid-agreement payments
        assert note.timestamp is not None
        assert event.at - note.timestamp.timestamp() < 8, note  # within the payment timeout
        assert note.status in {"ACCEPTED", "SETTLED"}
