"""localnet part 3: a daemon per node. Raw client calls cross from the requestor's yagna (the hub)
to each provider node's own yagna; a node's daemon can be killed, frozen and thawed."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
import requests

from golem_actors.cli import main
from golem_actors.exescript import Script
from golem_actors.localnet.network import LocalNet, LocalNetError
from golem_actors.localnet.offer import ACCEPT_TIMEOUT, DEBIT_NOTE_INTERVAL
from golem_actors.yagna import ApiConfig, YagnaClient, YagnaError
from golem_actors.yagna.models import Allocation, CommandResult
from tests.localnet.requestor import Demand, demand, invoice_for
from tests.waiting import wait_for

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]


def only(name: str) -> str:
    return f"(&(golem.runtime.name=vm)(golem.node.id.name={name}))"


def me(api_url: str, app_key: str) -> str:
    """The identity an app key acts as on the daemon at ``api_url``."""
    with YagnaClient(ApiConfig(app_key=app_key, api_url=api_url)) as client:
        return client.identity.me().identity


def run(client: YagnaClient, activity_id: str, script: Script) -> list[CommandResult]:
    batch_id = client.activity.exec(activity_id, script.to_json())

    def finished() -> list[CommandResult] | None:
        results = client.activity.batch_results(activity_id, batch_id, timeout=5)
        return results if results and results[-1].is_batch_finished else None

    return wait_for(f"batch {batch_id}", finished, timeout=30)


def activity_on(client: YagnaClient, allocation: Allocation, name: str) -> tuple[Demand, str, str]:
    """A demand, an agreement with provider ``name`` and a started activity on it."""
    d = demand(client, allocation, constraints=only(name))
    agreement_id = d.agree(d.offers(1)[name])
    activity_id = client.activity.create_activity(agreement_id, timeout=15).activity_id
    assert all(r.ok for r in run(client, activity_id, Script().deploy().start()))
    return d, agreement_id, activity_id


def test_every_provider_node_has_its_own_daemon(localnet: LocalNet):
    status = localnet.status()
    hub_pid = status["yagna_pid"]
    daemons = [p["daemon"] for p in status["providers"]]
    pids = [d["pid"] for d in daemons]
    assert hub_pid not in pids
    assert len(set(pids)) == len(localnet.providers)
    assert len({d["api_url"] for d in daemons} | {localnet.api_url}) == len(daemons) + 1
    assert all(d["state"] == "running" and not d["shared"] for d in daemons)
    for name, provider in localnet.providers.items():
        endpoint = localnet.daemons.endpoint(name)
        # The agent acts as its node's default identity, on its node's daemon only.
        assert me(endpoint.api_url, endpoint.app_key) == provider.node_id
        config = json.loads((provider.state_dir / "config.json").read_text())
        assert config["api_url"] == endpoint.api_url != localnet.api_url
        assert config["gsb_url"] == endpoint.gsb_url != localnet.node.gsb_url
    # ... and the requestor's key means nothing to a provider node.
    first = localnet.daemons.endpoint("provider-1")
    with pytest.raises(YagnaError):
        me(first.api_url, localnet.app_key)


def test_status_json_lists_each_daemon_pid_and_ports(localnet: LocalNet, capsys):
    assert main(["localnet", "status", "--json", "--data-dir", str(localnet.data_dir)]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["shared_daemon"] is False
    for entry in state["providers"]:
        node = localnet.daemons.node(entry["name"])
        assert entry["pid"] == localnet.providers[entry["name"]].pid
        assert entry["daemon"]["pid"] == node.pid
        assert entry["daemon"]["api_url"] == f"http://127.0.0.1:{node.api_port}"
        assert entry["daemon"]["gsb_url"] == f"tcp://127.0.0.1:{node.gsb_port}"
    assert main(["localnet", "status", "--data-dir", str(localnet.data_dir)]) == 0
    table = capsys.readouterr().out
    for name in localnet.providers:
        assert str(localnet.daemons.node(name).pid) in table


def test_cross_daemon_flow_offers_agreement_exec_debit_notes_invoice(
    client: YagnaClient, allocation: Allocation, localnet: LocalNet
):
    started = dt.datetime.now(dt.UTC)
    d = demand(
        client,
        allocation,
        properties={DEBIT_NOTE_INTERVAL: 1.0, ACCEPT_TIMEOUT: 30.0},
    )
    offers = d.offers(len(localnet.providers))
    # One offer from every node, each issued by that node's own identity.
    assert {name: p.issuer_id for name, p in offers.items()} == {
        name: p.node_id for name, p in localnet.providers.items()
    }
    agreement_id = d.agree(offers["provider-2"])
    activity_id = client.activity.create_activity(agreement_id, timeout=15).activity_id
    results = run(client, activity_id, Script().deploy().start().run("/bin/echo", "across"))
    assert results[-1].stdout == "across\n"

    def a_debit_note() -> str | None:
        for event in client.payment.debit_note_events(after=started, timeout=1):
            note = client.payment.get_debit_note(event.debit_note_id)
            if note.agreement_id == agreement_id:
                client.payment.accept_debit_note(
                    note.debit_note_id, note.total_amount_due, allocation.allocation_id
                )
                assert note.issuer_id == localnet.provider("provider-2").node_id
                return note.debit_note_id
        return None

    wait_for("a debit note from provider-2's node", a_debit_note, timeout=15)
    client.activity.destroy_activity(activity_id, timeout=15)
    client.market.terminate_agreement(agreement_id, "done", code="Success")
    invoice = invoice_for(client, agreement_id, started)
    assert invoice.issuer_id == localnet.provider("provider-2").node_id
    client.payment.accept_invoice(invoice.invoice_id, invoice.amount, allocation.allocation_id)
    assert client.payment.get_allocation(allocation.allocation_id).spent_amount > 0
    d.close()


def test_killing_a_provider_daemon_is_seen_by_the_requestor(
    client: YagnaClient, allocation: Allocation, localnet: LocalNet
):
    d, agreement_id, activity_id = activity_on(client, allocation, "provider-4")
    localnet.kill_daemon("provider-4")
    assert localnet.status()["providers"][3]["daemon"]["state"].startswith("exited")

    # The node is gone: calls to it fail at once (not a 408 after a timeout, nor a hub that
    # spins on a call nobody will answer), and so does ending the agreement.
    for call in (
        lambda: client.activity.exec(activity_id, Script().run("/bin/true").to_json()),
        lambda: client.activity.get_state(activity_id),
        lambda: client.market.terminate_agreement(agreement_id, "gone", code="Cancelled"),
    ):
        began = time.monotonic()
        with pytest.raises(YagnaError, match="not connected"):
            call()
        assert time.monotonic() - began < 3
    assert client.market.get_agreement(agreement_id).state == "Approved"  # nobody to end it with
    wait_for(
        "provider-4's agent to notice",
        lambda: localnet.provider("provider-4").state.startswith("exited"),
        timeout=30,
    )
    d.close()

    # The node comes back with its identity, and its new offer reaches the requestor.
    node_id = localnet.provider("provider-4").node_id
    localnet.restart_provider("provider-4")
    assert localnet.provider("provider-4").node_id == node_id
    d2, _, again = activity_on(client, allocation, "provider-4")
    assert run(client, again, Script().run("/bin/true"))[-1].ok
    d2.close()


def test_pause_and_resume_a_provider_daemon_from_the_cli(
    client: YagnaClient, allocation: Allocation, localnet: LocalNet, capsys
):
    d, agreement_id, activity_id = activity_on(client, allocation, "provider-1")
    node = localnet.daemons.node("provider-1")
    data_dir = str(localnet.data_dir)
    assert main(["localnet", "fault", "provider-1", "--pause-daemon", "--data-dir", data_dir]) == 0
    assert f"pid {node.pid}" in capsys.readouterr().out
    wait_for("the frozen daemon", lambda: node.state == "stopped", timeout=5)
    assert localnet.status()["providers"][0]["daemon"]["state"] == "stopped"
    with pytest.raises(requests.Timeout):  # it holds its port but answers nothing
        requests.get(f"{node.api_url}/me", timeout=1)
    assert main(["localnet", "fault", "provider-1", "--resume-daemon", "--data-dir", data_dir]) == 0
    wait_for("the thawed daemon", lambda: node.state == "running", timeout=5)
    # A short freeze heals: the same activity runs commands again.
    assert run(client, activity_id, Script().run("/bin/true"))[-1].ok
    client.activity.destroy_activity(activity_id, timeout=15)
    client.market.terminate_agreement(agreement_id, "done", code="Success")
    d.close()


def test_a_fresh_network_shows_every_offer_at_once_and_keeps_its_identities(tmp_path: Path):
    with LocalNet(providers=2, data_dir=tmp_path) as net:
        ids = {name: p.node_id for name, p in net.providers.items()}
        assert set(net.startup) == {"daemons", "agents", "offers"}
        with YagnaClient(ApiConfig(app_key=net.app_key, api_url=net.api_url)) as client:
            allocation = client.payment.create_allocation("1")
            d = demand(client, allocation)
            offers = d.offers(2, timeout=2)  # already known to the requestor's node
            assert {p.issuer_id for p in offers.values()} == set(ids.values())
            d.close()
            client.payment.release_allocation(allocation.allocation_id)
        ports = {name: net.daemons.node(name).api_port for name in ids}
    assert (tmp_path / "providers" / "provider-1" / "yagna" / "yagna.db").is_file()
    with LocalNet(providers=2, data_dir=tmp_path) as net:
        assert {name: p.node_id for name, p in net.providers.items()} == ids
        assert {name: net.daemons.node(name).api_port for name in ids} == ports
        net.pause_daemon("provider-1")
        agent = net.provider("provider-1").process
    # Stopping thawed the frozen node first and ended its agent (a clean goodbye within the
    # stop's 15 s is the rule, but an agent whose call was frozen mid-request can miss it under
    # load: a CI run saw it killed once) — what must hold is that nothing of the node is left.
    assert agent is not None
    assert agent.returncode is not None
    assert net.daemons.node("provider-1").state not in ("running", "stopped")


def test_a_shared_daemon_serves_every_provider_and_has_no_daemon_faults(tmp_path: Path):
    with LocalNet(providers=2, data_dir=tmp_path, shared_daemon=True) as net:
        status = net.status()
        assert status["shared_daemon"] is True
        assert {p["daemon"]["pid"] for p in status["providers"]} == {net.node.pid}
        assert net.daemons.pids() == [net.node.pid]
        with pytest.raises(LocalNetError, match="no daemon of its own"):
            net.kill_daemon("provider-1")
        assert net.node.state == "running"
