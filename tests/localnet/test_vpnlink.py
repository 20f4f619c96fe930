"""An activity's VPN links without daemons: a fake bus on one side, a real container on the other.

Frames go in as the bus hands them over (the sink), the container's kernel answers, and the
answers must be pushed to the right member's ``/udp/net/<node>/vpn/<net>/raw``. Then the exe-unit's
part: a deploy with ``net`` opens the links (only with the ``vpn`` capability), a second activity
of the same network on the same daemon is refused, the links close with the activity.
"""

from __future__ import annotations

import datetime as dt
import queue
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from golem_actors.localnet import gsb as gsblib
from golem_actors.localnet.exeunit import ExeUnit
from golem_actors.localnet.faults import Faults
from golem_actors.localnet.runtime import RuntimeSettings
from golem_actors.localnet.sandbox import Sandbox, SandboxNetwork
from golem_actors.localnet.vpn import VpnError, mac_of, parse_net
from golem_actors.localnet.vpnlink import ActivityNetwork
from golem_actors.yagna.models import Agreement, Demand, Offer
from tests.localnet.test_vpn import ME, NET, OTHER, PEER, REQUESTOR, arp, entry, ip
from tests.waiting import wait_for

WAIT = 10.0


class FakeBus:
    """The provider's bus: what was registered, and every frame pushed, per address."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}
        self.sinks: dict[str, Callable[[str, bytes], None]] = {}
        self.pushed: queue.Queue[tuple[str, bytes, str]] = queue.Queue()

    def register(self, address: str, handler: Any, *, timeout: float = 5.0) -> None:
        if address in self.handlers or address in self.sinks:
            raise gsblib.GsbRegisterError("register", address, 409, "")
        self.handlers[address] = handler

    def register_sink(self, address: str, sink: Any, *, timeout: float = 5.0) -> None:
        if address in self.handlers or address in self.sinks:
            raise gsblib.GsbRegisterError("register", address, 409, "")
        self.sinks[address] = sink

    def unregister(self, address: str, *, timeout: float = 5.0) -> None:
        self.handlers.pop(address, None)
        self.sinks.pop(address, None)

    def push(self, address: str, data: bytes, *, caller: str = "local") -> None:
        self.pushed.put((address, data, caller))

    def call(self, address: str, body: Any, *, timeout: float, caller: str = "local") -> Any:
        return {"Ok": None}  # SetActivityState

    def frame_from(self, caller: str, frame: bytes) -> None:
        self.sinks[f"/public/vpn/{NET}/raw"](caller, frame)

    def control(self, body: dict[str, Any]) -> Any:
        call = gsblib.IncomingCall(
            REQUESTOR, f"/public/vpn/{NET}/VpnControl", "1", body, no_reply=False
        )
        return self.handlers[f"/public/vpn/{NET}"](call)

    def next_push(self, kind: bytes, timeout: float = WAIT) -> tuple[str, bytes, str]:
        """The next frame of EtherType ``kind`` pushed (others, e.g. the kernel's own, skipped)."""
        while True:
            address, frame, caller = self.pushed.get(timeout=timeout)
            if frame[12:14] == kind:
                return address, frame, caller


def raw_address(node: str) -> str:
    return f"/udp/net/{node}/vpn/{NET}/raw"


def checksum(data: bytes) -> int:
    data += b"\0" * (len(data) % 2)
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp(src: str, dst: str, port: int, payload: bytes = b"hello") -> bytes:
    """A valid Ethernet/IPv4/UDP frame (the kernel checks the IP header's checksum)."""
    length = 20 + 8 + len(payload)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, 7, 0, 64, 17, 0,
                         ip(src).packed, ip(dst).packed)  # fmt: skip
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    datagram = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
    return mac_of(ip(dst)) + mac_of(ip(src)) + b"\x08\x00" + header + datagram


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def linked(tmp_path: Path, bus: FakeBus) -> Iterator[ActivityNetwork]:
    """A container in the network as 192.168.8.2, its links on the fake bus."""
    network = ActivityNetwork([parse_net(entry())], cast("gsblib.GsbClient", bus), ME)
    network.open()
    sandbox = Sandbox(tmp_path / "activity", network=SandboxNetwork(network))
    try:
        assert sandbox.start()
        yield network
    finally:
        sandbox.destroy()
        network.close()


def test_frames_from_the_bus_reach_the_container_and_its_answers_go_back(
    bus: FakeBus, linked: ActivityNetwork
):
    assert set(bus.handlers) == {f"/public/vpn/{NET}"}
    assert set(bus.sinks) == {f"/public/vpn/{NET}/raw"}
    bus.frame_from(REQUESTOR, arp(1, "192.168.8.1", "192.168.8.2"))
    address, frame, caller = bus.next_push(b"\x08\x06")
    assert (address, caller) == (raw_address(REQUESTOR), ME)
    assert frame[6:12] == mac_of(ip("192.168.8.2"))  # is-at a0:13:c0:a8:08:02
    assert frame[20:22] == b"\x00\x02"
    link = linked.links[0]
    assert link.stats.received == 1
    assert link.stats.sent >= 1


def test_an_unknown_sender_is_learned_and_answered(bus: FakeBus, linked: ActivityNetwork):
    """A UDP datagram from 192.168.8.9 (in no table) to a closed port: the container's ICMP
    answer must reach the node that sent it, learned from that frame."""
    bus.frame_from(OTHER, arp(1, "192.168.8.9", "192.168.8.2"))  # the peer resolves us first
    bus.next_push(b"\x08\x06")
    bus.frame_from(OTHER, udp("192.168.8.9", "192.168.8.2", 9))
    address, frame, _ = bus.next_push(b"\x08\x00")
    assert address == raw_address(OTHER)
    assert frame[23] == 1  # ICMP: port unreachable
    assert frame[30:34] == ip("192.168.8.9").packed
    assert linked.links[0].members()["192.168.8.9"] == OTHER


def test_vpn_control_moves_and_removes_members(bus: FakeBus, linked: ActivityNetwork):
    link = linked.links[0]
    assert bus.control({"addNodes": {"network_id": NET, "nodes": {"192.168.8.4": OTHER}}}) == {
        "Ok": None
    }
    assert link.members() == {"192.168.8.1": REQUESTOR, "192.168.8.3": PEER, "192.168.8.4": OTHER}
    assert bus.control({"removeNodes": {"network_id": NET, "node_ids": [PEER]}}) == {"Ok": None}
    assert "192.168.8.3" not in link.members()
    with pytest.raises(gsblib.ReplyError) as refused:
        bus.control({"removeNodes": {"network_id": "another", "node_ids": [PEER]}})
    assert "badRequest" in refused.value.error
    with pytest.raises(gsblib.ReplyError):
        bus.control({"bogus": {}})


def test_frames_for_a_removed_peer_are_dropped(bus: FakeBus, linked: ActivityNetwork):
    link = linked.links[0]
    bus.control({"removeNodes": {"network_id": NET, "node_ids": [PEER]}})
    bus.frame_from(REQUESTOR, arp(1, "192.168.8.1", "192.168.8.2"))
    bus.next_push(b"\x08\x06")
    dropped = link.stats.dropped_out
    # The container now resolves 192.168.8.3: asked of everyone left (the requestor), and its
    # datagram to it (the ARP never answered) is never pushed to the peer that left.
    bus.frame_from(REQUESTOR, udp("192.168.8.1", "192.168.8.2", 9, b"x"))
    wait_for("the container's answer", lambda: link.stats.sent >= 2, timeout=WAIT)
    assert all(address != raw_address(PEER) for address, _, _ in list(bus.pushed.queue))
    assert link.stats.dropped_out >= dropped


def test_no_tap_no_frames(bus: FakeBus):
    network = ActivityNetwork([parse_net(entry())], cast("gsblib.GsbClient", bus), ME)
    network.open()
    try:
        bus.frame_from(REQUESTOR, arp(1, "192.168.8.1", "192.168.8.2"))  # deployed, not started
        assert network.links[0].stats.dropped_in == 1
    finally:
        network.close()
    assert bus.handlers == {}
    assert bus.sinks == {}


def test_a_network_served_here_already_is_refused_clearly(bus: FakeBus):
    first = ActivityNetwork([parse_net(entry())], cast("gsblib.GsbClient", bus), ME)
    first.open()
    try:
        second = ActivityNetwork(
            [parse_net(entry(nodeIp="192.168.8.5"))], cast("gsblib.GsbClient", bus), ME
        )
        with pytest.raises(VpnError, match="already served on this provider's daemon"):
            second.open()
        assert set(bus.handlers) == {f"/public/vpn/{NET}"}  # the first keeps its addresses
    finally:
        first.close()


# -- the exe-unit -------------------------------------------------------------------------------


def agreement(capabilities: list[str]) -> Agreement:
    offer = {"golem.runtime.capabilities": capabilities, "golem.node.id.name": "p"}
    return Agreement(
        agreement_id="agr-1",
        demand=Demand(properties={}, constraints="", requestor_id=REQUESTOR),
        offer=Offer(properties=offer, constraints="", provider_id=ME),
        valid_to=dt.datetime.now(dt.UTC),
        state="Approved",
    )


def exeunit(tmp_path: Path, bus: FakeBus, capabilities: list[str], act: str = "act-1") -> ExeUnit:
    settings = RuntimeSettings(tmp_path / "activities", lambda _p: None, 30.0)
    unit = ExeUnit(act, agreement(capabilities), cast("gsblib.GsbClient", bus), Faults, settings)
    unit.start()
    return unit


def run(unit: ExeUnit, *script: dict[str, Any], batch: str = "b") -> list[dict[str, Any]]:
    body = {"activityId": unit.activity_id, "batchId": batch, "exeScript": list(script)}
    unit.handle(gsblib.IncomingCall(REQUESTOR, f"{unit.address}/Exec", "1", body, no_reply=False))
    poll = {"activityId": unit.activity_id, "batchId": batch, "commandIndex": len(script) - 1,
            "timeout": WAIT}  # fmt: skip
    call = gsblib.IncomingCall(
        REQUESTOR, f"{unit.address}/GetExecBatchResults", "2", poll, no_reply=False
    )
    results: list[dict[str, Any]] = unit.handle(call)["Ok"]
    return results


def deploy(**changes: Any) -> dict[str, Any]:
    return {"deploy": {"net": [entry(**changes)], "hosts": {"back": "192.168.8.3"}}}


def test_a_deploy_with_a_network_joins_it_and_the_activity_leaves_it(tmp_path: Path, bus: FakeBus):
    unit = exeunit(tmp_path, bus, ["vpn", "inet"])
    try:
        script = [deploy(), {"start": {}}]
        script.append({"run": {"entry_point": "/bin/sh", "args": ["-c", "getent hosts back"]}})
        results = run(unit, *script)
        assert [r["result"] for r in results] == ["Ok", "Ok", "Ok"], results
        assert results[2]["stdout"].split() == ["192.168.8.3", "back"]
        assert set(bus.sinks) == {f"/public/vpn/{NET}/raw"}
        bus.frame_from(REQUESTOR, arp(1, "192.168.8.1", "192.168.8.2"))
        assert bus.next_push(b"\x08\x06")[0] == raw_address(REQUESTOR)
    finally:
        unit.stop()
    assert bus.handlers == {}  # the exe-unit's own address and the network's
    assert bus.sinks == {}


def test_a_deploy_with_a_network_is_refused_without_the_capability(tmp_path: Path, bus: FakeBus):
    unit = exeunit(tmp_path, bus, ["inet"])
    try:
        results = run(unit, deploy())
        assert results[0]["result"] == "Error"
        assert "cannot join VPN networks (no vpn capability)" in results[0]["message"]
        assert bus.sinks == {}
    finally:
        unit.stop()


def test_a_bad_network_fails_the_deploy_naming_the_field(tmp_path: Path, bus: FakeBus):
    unit = exeunit(tmp_path, bus, ["vpn"])
    try:
        results = run(unit, deploy(nodeIp="10.9.9.9"))
        assert results[0]["result"] == "Error"
        assert "net[0].nodeIp 10.9.9.9 is not a host address" in results[0]["message"]
        results = run(unit, {"deploy": {"hosts": {"bad name": "1.2.3.4"}}}, batch="b2")
        assert "hosts: 'bad name' is not a hostname" in results[0]["message"]
    finally:
        unit.stop()


def test_two_activities_of_one_network_on_one_daemon_are_refused(tmp_path: Path, bus: FakeBus):
    first = exeunit(tmp_path, bus, ["vpn"], "act-1")
    second = exeunit(tmp_path, bus, ["vpn"], "act-2")
    try:
        assert run(first, deploy())[0]["result"] == "Ok"
        refused = run(second, deploy(nodeIp="192.168.8.5"))[0]
        assert refused["result"] == "Error"
        assert "already served on this provider's daemon" in refused["message"]
        assert "node (daemon) of its own" in refused["message"]
        second.stop()
        assert f"/public/vpn/{NET}/raw" in bus.sinks  # the refused one took nothing away
    finally:
        first.stop()
        second.stop()
