"""localnet part 1 seen from a stock requestor: raw client calls only, the real yagna between."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time

import pytest

from golem_actors.localnet.network import STATE_FILE, LocalNet, LocalNetError
from golem_actors.localnet.offer import (
    ACCEPT_TIMEOUT,
    DEBIT_NOTE_INTERVAL,
    PAYMENT_TIMEOUT,
    amount_due,
)
from golem_actors.yagna import YagnaClient, YagnaError
from golem_actors.yagna.models import (
    AgreementTerminatedEvent,
    Allocation,
    DebitNote,
)
from tests.localnet.requestor import Demand, demand, invoice_for
from tests.waiting import wait_for

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]


def only(name: str) -> str:
    return f"(&(golem.runtime.name=vm)(golem.node.id.name={name}))"


def debit_notes(client: YagnaClient, agreement_id: str, after: dt.datetime) -> list[DebitNote]:
    notes = []
    for event in client.payment.debit_note_events(after=after, timeout=1):
        if event.event_type == "DebitNoteReceivedEvent":
            note = client.payment.get_debit_note(event.debit_note_id)
            if note.agreement_id == agreement_id:
                notes.append(note)
    return notes


def terminated(client: YagnaClient, agreement_id: str, after: dt.datetime, timeout: float) -> None:
    def probe() -> bool | None:
        for event in client.market.agreement_events(after=after, timeout=1):
            if isinstance(event, AgreementTerminatedEvent) and event.agreement_id == agreement_id:
                return True
        return None

    wait_for(f"{agreement_id} terminated", probe, timeout)


def agree_with(d: Demand, name: str) -> str:
    return d.agree(d.offers(1)[name])


def test_offers_come_from_every_provider_with_their_own_prices(
    client: YagnaClient, allocation: Allocation, localnet: LocalNet
):
    d = demand(client, allocation)
    offers = d.offers(len(localnet.providers))
    assert set(offers) == set(localnet.providers)
    assert len({p.issuer_id for p in offers.values()}) == len(localnet.providers)
    coeffs = {tuple(p.properties["golem.com.pricing.model.linear.coeffs"]) for p in offers.values()}
    assert len(coeffs) == len(localnet.providers)
    offer = offers["provider-1"].properties
    assert offer["golem.com.scheme"] == "payu"
    assert offer["golem.com.usage.vector"] == ["golem.usage.duration_sec", "golem.usage.cpu_sec"]
    assert offer["golem.srv.caps.multi-activity"] is True
    assert offer["golem.node.debug.subnet"] == "public"
    node_id = localnet.provider("provider-1").node_id
    assert offer["golem.com.payment.platform.erc20-holesky-tglm.address"] == node_id
    d.close()


def test_full_flow_debit_notes_invoice_and_spent_amount(
    client: YagnaClient, allocation: Allocation
):
    started = dt.datetime.now(dt.UTC)
    d = demand(
        client,
        allocation,
        constraints=only("provider-1"),
        properties={DEBIT_NOTE_INTERVAL: 1.0, ACCEPT_TIMEOUT: 30.0, PAYMENT_TIMEOUT: 3600.0},
    )
    agreement_id = agree_with(d, "provider-1")
    agreement = client.market.get_agreement(agreement_id)
    assert agreement.offer.properties[DEBIT_NOTE_INTERVAL] == 1.0  # the provider agreed to it
    activity_id = client.activity.create_activity(agreement_id, timeout=15).activity_id
    assert client.activity.get_state(activity_id).current == "Initialized"

    # Debit notes arrive at the agreed interval; accept each with its full amount.
    by_id: dict[str, DebitNote] = {}

    def three_notes() -> list[DebitNote] | None:
        by_id.update((n.debit_note_id, n) for n in debit_notes(client, agreement_id, started))
        return list(by_id.values()) if len(by_id) >= 3 else None

    notes = sorted(
        wait_for("3 debit notes", three_notes, timeout=10), key=lambda n: str(n.timestamp)
    )
    stamps = [n.timestamp for n in notes[:3] if n.timestamp is not None]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
    assert all(0.5 <= gap <= 2.5 for gap in gaps), gaps
    assert notes[0].total_amount_due <= notes[-1].total_amount_due  # cumulative
    assert notes[0].payment_due_date is not None  # mid-agreement payments were agreed
    for note in notes:
        client.payment.accept_debit_note(
            note.debit_note_id, note.total_amount_due, allocation.allocation_id
        )
    # Usage keeps the activity alive past yagna's 5 s unresponsive limit.
    usage = client.activity.get_usage(activity_id)
    assert abs(usage.timestamp - time.time()) < 3
    assert client.activity.get_state(activity_id).current == "Initialized"

    client.activity.destroy_activity(activity_id, timeout=15)
    assert client.activity.get_state(activity_id).current == "Terminated"
    client.market.terminate_agreement(agreement_id, "done", code="Success")
    invoice = invoice_for(client, agreement_id, started)
    coeffs = agreement.offer.properties["golem.com.pricing.model.linear.coeffs"]
    assert invoice.amount >= amount_due(coeffs, [0.0, 0.0])  # at least the start price
    assert invoice.amount >= notes[-1].total_amount_due
    assert list(invoice.activity_ids) == [activity_id]
    client.payment.accept_invoice(invoice.invoice_id, invoice.amount, allocation.allocation_id)
    assert client.payment.get_allocation(allocation.allocation_id).spent_amount == invoice.amount
    d.close()


def test_provider_terminates_when_debit_notes_go_unaccepted(
    client: YagnaClient, allocation: Allocation
):
    started = dt.datetime.now(dt.UTC)
    d = demand(
        client,
        allocation,
        constraints=only("provider-2"),
        properties={DEBIT_NOTE_INTERVAL: 1.0, ACCEPT_TIMEOUT: 2.0},
    )
    agreement_id = agree_with(d, "provider-2")
    client.activity.create_activity(agreement_id, timeout=15)
    terminated(client, agreement_id, started, timeout=10)  # no debit note was accepted
    assert client.market.get_agreement(agreement_id).state == "Terminated"
    invoice = invoice_for(client, agreement_id, started)
    assert invoice.amount > 0
    client.payment.accept_invoice(invoice.invoice_id, invoice.amount, allocation.allocation_id)
    d.close()


def test_fault_reject_proposals(client: YagnaClient, allocation: Allocation, localnet: LocalNet):
    localnet.set_faults("provider-3", reject_proposals=True)
    d = demand(client, allocation, constraints=only("provider-3"))
    d.counter(d.offers(1)["provider-3"])
    wait_for("a rejection", lambda: d.rejections or (d.poll() and None), timeout=10)
    assert d.rejections[0].reason is not None
    assert "rejects all proposals" in json.dumps(d.rejections[0].reason)
    d.close()


def test_fault_terminate_after(client: YagnaClient, allocation: Allocation, localnet: LocalNet):
    localnet.set_faults("provider-3", terminate_after=1.0)
    started = dt.datetime.now(dt.UTC)
    d = demand(client, allocation, constraints=only("provider-3"))
    agreement_id = agree_with(d, "provider-3")
    terminated(client, agreement_id, started, timeout=8)
    invoice = invoice_for(client, agreement_id, started)
    client.payment.accept_invoice(invoice.invoice_id, invoice.amount, allocation.allocation_id)
    d.close()


def test_fault_overcharge(client: YagnaClient, allocation: Allocation, localnet: LocalNet):
    localnet.set_faults("provider-1", overcharge=3.0)
    started = dt.datetime.now(dt.UTC)
    d = demand(
        client,
        allocation,
        constraints=only("provider-1"),
        properties={DEBIT_NOTE_INTERVAL: 1.0, ACCEPT_TIMEOUT: 30.0},
    )
    agreement_id = agree_with(d, "provider-1")
    coeffs = client.market.get_agreement(agreement_id).offer.properties[
        "golem.com.pricing.model.linear.coeffs"
    ]
    client.activity.create_activity(agreement_id, timeout=15)
    note = wait_for(
        "a debit note", lambda: next(iter(debit_notes(client, agreement_id, started)), None)
    )
    fair = amount_due(coeffs, note.usage_counter_vector)
    assert note.total_amount_due == (fair * 3).normalize()
    client.market.terminate_agreement(agreement_id, "overcharged", code="Cancelled")
    d.close()


def test_fault_hang_makes_the_activity_unresponsive(
    client: YagnaClient, allocation: Allocation, localnet: LocalNet
):
    d = demand(client, allocation, constraints=only("provider-2"))
    agreement_id = agree_with(d, "provider-2")
    activity_id = client.activity.create_activity(agreement_id, timeout=15).activity_id
    localnet.set_faults("provider-2", hang=True)
    assert localnet.provider("provider-2").state == "hung"

    def unresponsive() -> bool | None:
        state = client.activity.get_state(activity_id).current
        return True if state in ("Unresponsive", "Terminated") else None

    wait_for("yagna to see the activity unresponsive", unresponsive, timeout=15)
    client.market.terminate_agreement(agreement_id, "provider hung", code="Cancelled")
    d.close()


def test_fault_crash_kills_the_process(
    client: YagnaClient, allocation: Allocation, localnet: LocalNet
):
    d = demand(client, allocation, constraints=only("provider-3"))
    agreement_id = agree_with(d, "provider-3")
    activity_id = client.activity.create_activity(agreement_id, timeout=15).activity_id
    localnet.kill("provider-3")
    assert localnet.provider("provider-3").state.startswith("exited")

    def unresponsive() -> bool | None:
        state = client.activity.get_state(activity_id).current
        return True if state in ("Unresponsive", "Terminated") else None

    wait_for("yagna to see the activity unresponsive", unresponsive, timeout=15)
    with pytest.raises(YagnaError):  # nobody serves the activity's exe-unit any more
        client.activity.exec(activity_id, [{"deploy": {}}])
    client.market.terminate_agreement(agreement_id, "provider crashed", code="Cancelled")
    d.close()


def test_fault_crash_at_agreement(client: YagnaClient, allocation: Allocation, localnet: LocalNet):
    localnet.set_faults("provider-1", crash_at="agreement")
    d = demand(client, allocation, constraints=only("provider-1"))
    with pytest.raises(YagnaError):
        d.agree(d.offers(1)["provider-1"], timeout=3)
    wait_for(
        "the crash", lambda: localnet.provider("provider-1").state.startswith("exited") or None
    )
    d.close()


def test_status_file_and_a_second_network_on_the_same_dir(localnet: LocalNet):
    state = json.loads((localnet.data_dir / STATE_FILE).read_text())
    assert [p["name"] for p in state["providers"]] == list(localnet.providers)
    assert localnet.app_key not in json.dumps(state)
    with pytest.raises(LocalNetError, match="already running"):
        LocalNet(providers=1, data_dir=localnet.data_dir).start()
