"""The VPN's pure parts: the Deploy ``net`` entry, VpnControl, and where each frame goes."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address
from typing import Any

import pytest

from golem_actors.localnet.vpn import (
    Control,
    Routes,
    VpnError,
    hosts_file,
    mac_of,
    parse_control,
    parse_hosts,
    parse_net,
    parse_networks,
    source_ip,
)

NET = "a1b2c3"
REQUESTOR, ME, PEER, OTHER = "0xaaaa", "0xbbbb", "0xcccc", "0xdddd"
BROADCAST = b"\xff" * 6


def ip(text: str) -> IPv4Address:
    return IPv4Address(text)


def entry(**changes: Any) -> dict[str, Any]:
    """What golem-js puts in a Deploy: the network address, our IP, every member."""
    base: dict[str, Any] = {
        "id": NET,
        "ip": "192.168.8.0",
        "mask": "255.255.255.0",
        "gateway": "192.168.8.1",
        "nodeIp": "192.168.8.2",
        "nodes": {"192.168.8.1": REQUESTOR, "192.168.8.2": ME, "192.168.8.3": PEER},
    }
    return {**base, **changes}


def routes(**changes: Any) -> Routes:
    return Routes(parse_net(entry(**changes)), ME)


def arp(op: int, src: str, dst: str, *, dst_mac: bytes = BROADCAST) -> bytes:
    """An Ethernet ARP frame: 1 request (who-has ``dst`` tell ``src``), 2 reply."""
    header = dst_mac + mac_of(ip(src)) + b"\x08\x06"
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op)
    body += mac_of(ip(src)) + ip(src).packed + b"\0" * 6 + ip(dst).packed
    return header + body


def ipv4(src: str, dst: str, *, dst_mac: bytes | None = None, size: int = 60) -> bytes:
    """An Ethernet IPv4 frame (a UDP-ish payload; only the addresses matter here)."""
    mac = dst_mac if dst_mac is not None else mac_of(ip(dst))
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size - 14, 1, 0, 64, 17, 0,
                         ip(src).packed, ip(dst).packed)  # fmt: skip
    return mac + mac_of(ip(src)) + b"\x08\x00" + header + b"\0" * (size - 34)


def ipv6() -> bytes:
    return b"\x33\x33\0\0\0\x02" + mac_of(ip("192.168.8.2")) + b"\x86\xdd" + b"\x60" + b"\0" * 60


# -- the Deploy entry --------------------------------------------------------------------------


def test_a_golem_js_net_entry_parses():
    spec = parse_net(entry())
    assert spec.network_id == NET
    assert str(spec.network) == "192.168.8.0/24"
    assert spec.node_ip == ip("192.168.8.2")
    assert spec.gateway == ip("192.168.8.1")
    assert spec.mac == bytes.fromhex("a013c0a80802")
    assert spec.nodes[ip("192.168.8.3")] == PEER
    cidr = parse_net(entry(ip="10.0.0.0/16", mask=None, gateway=None, nodeIp="10.0.3.4", nodes={}))
    assert (cidr.network.prefixlen, cidr.gateway, cidr.nodes) == (16, None, {})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": ""}, r"net\[0\]\.id"),
        ({"id": "a/b"}, r"net\[0\]\.id"),
        ({"ip": 7}, r"net\[0\]\.ip"),
        ({"mask": "255.0.255.0"}, r"net\[0\]\.ip/\.mask"),
        ({"ip": "fd00::", "mask": None}, r"net\[0\]\.ip/\.mask"),
        ({"mask": "255.255.255.254"}, "4 addresses or more"),
        ({"nodeIp": None}, r"net\[0\]\.nodeIp"),
        ({"nodeIp": "10.0.0.2"}, r"net\[0\]\.nodeIp 10\.0\.0\.2 is not a host address"),
        ({"nodeIp": "192.168.8.255"}, "not a host address"),
        ({"gateway": "x"}, r"net\[0\]\.gateway"),
        ({"nodes": ["192.168.8.1"]}, r"net\[0\]\.nodes must map"),
        ({"nodes": {"192.168.8.1": 5}}, r"net\[0\]\.nodes\['192\.168\.8\.1'\] must be a node id"),
        ({"nodes": {"10.1.1.1": PEER}}, "is not a host address of 192.168.8.0/24"),
    ],
)
def test_a_bad_net_entry_is_refused_naming_the_field(changes: dict[str, Any], field: str):
    with pytest.raises(VpnError, match=field):
        parse_net(entry(**changes))


def test_networks_must_differ_and_not_overlap():
    assert parse_networks(None) == []
    two = parse_networks([entry(), entry(id="other", ip="10.0.0.0", nodeIp="10.0.0.2", nodes={})])
    assert [s.network_id for s in two] == [NET, "other"]
    with pytest.raises(VpnError, match=r"net\[1\].*overlaps"):
        parse_networks([entry(), entry(id="other", ip="192.168.0.0", mask="255.255.0.0")])
    with pytest.raises(VpnError, match=r"net\[1\].*repeats"):
        parse_networks([entry(), entry(ip="10.0.0.0", nodeIp="10.0.0.2", nodes={})])
    with pytest.raises(VpnError, match="net must be a list"):
        parse_networks(entry())


def test_hosts_become_the_containers_hosts_file():
    hosts = parse_hosts({"back": "192.168.8.3", "front.svc": "192.168.8.2"})
    text = hosts_file(hosts, "localnet")
    assert text.splitlines()[0] == "127.0.0.1\tlocalhost localnet"
    assert "192.168.8.3\tback" in text.splitlines()
    assert "192.168.8.2\tfront.svc" in text.splitlines()
    assert parse_hosts(None) == {}
    for bad in ({"b ack": "192.168.8.3"}, {"-x": "192.168.8.3"}, {"back": "nowhere"}, ["back"]):
        with pytest.raises(VpnError, match="hosts"):
            parse_hosts(bad)


# -- VpnControl --------------------------------------------------------------------------------


def test_vpn_control_messages_as_yagna_sends_them():
    add = {"addNodes": {"network_id": NET, "nodes": {"192.168.8.4": OTHER}}}
    assert parse_control(add) == Control(NET, nodes={"192.168.8.4": OTHER})
    remove = {"removeNodes": {"network_id": NET, "node_ids": [PEER]}}
    assert parse_control(remove) == Control(NET, node_ids=(PEER,))
    bad: dict[str, Any]
    for bad in (
        {},
        {"addNodes": {"network_id": NET, "nodes": ["x"]}},
        {"removeNodes": {"network_id": NET, "node_ids": PEER}},
        {"AddNodes": {"network_id": NET, "nodes": {}}},
        {"addNodes": {"nodes": {}}},
    ):
        with pytest.raises(VpnError, match="VpnControl"):
            parse_control(bad)


# -- frames: TAP -> bus ------------------------------------------------------------------------


def test_arp_goes_to_the_owner_of_its_target_address():
    r = routes()
    assert r.targets(arp(1, "192.168.8.2", "192.168.8.1")) == [REQUESTOR]
    reply = arp(2, "192.168.8.2", "192.168.8.3", dst_mac=mac_of(ip("192.168.8.3")))
    assert r.targets(reply) == [PEER]


def test_a_broadcast_arp_for_an_unknown_address_asks_every_member():
    r = routes()
    assert r.targets(arp(1, "192.168.8.2", "192.168.8.9")) == [REQUESTOR, PEER]
    unicast = arp(1, "192.168.8.2", "192.168.8.9", dst_mac=mac_of(ip("192.168.8.9")))
    assert r.targets(unicast) == []  # a unicast probe for nobody goes nowhere
    assert r.targets(arp(1, "192.168.8.2", "192.168.8.2")) == []  # about ourselves
    assert r.targets(arp(1, "192.168.8.2", "10.0.0.1")) == []  # outside the network


def test_ipv4_unicast_goes_to_the_owner_of_its_destination():
    r = routes()
    assert r.targets(ipv4("192.168.8.2", "192.168.8.1")) == [REQUESTOR]
    assert r.targets(ipv4("192.168.8.2", "192.168.8.3", size=1400)) == [PEER]


def test_broadcasts_go_to_every_member_once():
    r = routes(nodes={"192.168.8.1": REQUESTOR, "192.168.8.3": PEER, "192.168.8.4": PEER})
    everyone = [REQUESTOR, PEER]
    assert r.targets(ipv4("192.168.8.2", "192.168.8.255", dst_mac=BROADCAST)) == everyone
    assert r.targets(ipv4("192.168.8.2", "255.255.255.255", dst_mac=BROADCAST)) == everyone
    assert r.targets(ipv4("192.168.8.2", "192.168.8.255", dst_mac=b"\x01" * 6)) == everyone


def test_unknown_destinations_and_other_frames_are_dropped():
    r = routes()
    assert r.targets(ipv4("192.168.8.2", "192.168.8.77")) == []
    assert r.targets(ipv4("192.168.8.2", "8.8.8.8", dst_mac=b"\x02" * 6)) == []
    assert r.targets(ipv4("192.168.8.2", "224.0.0.22", dst_mac=b"\x01\0\x5e\0\0\x16")) == []
    assert r.targets(ipv6()) == []
    assert r.targets(b"\xff" * 10) == []  # shorter than an Ethernet header
    assert r.targets(arp(1, "192.168.8.2", "192.168.8.1")[:30]) == []  # a truncated ARP


def test_a_yagna_mac_names_the_owner_when_the_address_does_not():
    """As yagna master: a frame via the gateway to an outside address keeps its MAC."""
    r = routes()
    frame = ipv4("192.168.8.2", "8.8.8.8", dst_mac=mac_of(ip("192.168.8.1")))
    assert r.targets(frame) == [REQUESTOR]


def test_our_own_node_is_never_a_target():
    r = routes(nodes={"192.168.8.1": REQUESTOR, "192.168.8.2": ME, "192.168.8.5": ME})
    assert ip("192.168.8.5") not in r.nodes()
    assert r.targets(ipv4("192.168.8.2", "192.168.8.5")) == []
    assert r.everyone() == [REQUESTOR]


# -- the table: VpnControl and learning --------------------------------------------------------


def test_add_nodes_adds_and_moves_members():
    r = routes()
    assert r.add({"192.168.8.4": OTHER}) == []
    assert r.targets(ipv4("192.168.8.2", "192.168.8.4")) == [OTHER]
    assert r.add({"192.168.8.3": OTHER}) == []  # a restarted instance keeps its IP elsewhere
    assert r.targets(ipv4("192.168.8.2", "192.168.8.3")) == [OTHER]
    refused = r.add({"10.0.0.1": PEER, "192.168.8.2": PEER, "192.168.8.6": ME})
    assert len(refused) == 3
    assert r.owner(ip("192.168.8.6")) is None


def test_a_peer_that_vanishes_gets_no_more_frames():
    r = routes(nodes={"192.168.8.1": REQUESTOR, "192.168.8.3": PEER, "192.168.8.4": PEER})
    assert r.remove([PEER.upper()]) == 2  # every address of it, ids in any case
    assert r.targets(ipv4("192.168.8.2", "192.168.8.3")) == []
    assert r.targets(arp(1, "192.168.8.2", "192.168.8.4", dst_mac=b"\x02" * 6)) == []
    assert r.everyone() == [REQUESTOR]
    assert r.remove(["0xnobody"]) == 0
    assert not r.learn(ipv4("192.168.8.3", "192.168.8.2"), PEER)  # its late frames teach nothing
    assert r.targets(ipv4("192.168.8.2", "192.168.8.3")) == []
    assert r.add({"192.168.8.7": PEER}) == []  # until the requestor adds it again
    assert r.learn(ipv4("192.168.8.3", "192.168.8.2"), PEER)


def test_a_frames_sender_is_learned_for_an_address_nobody_owns():
    r = routes(nodes={})
    assert r.targets(ipv4("192.168.8.2", "192.168.8.1")) == []
    assert r.learn(arp(1, "192.168.8.1", "192.168.8.2"), REQUESTOR)
    assert r.targets(ipv4("192.168.8.2", "192.168.8.1")) == [REQUESTOR]
    assert r.learn(ipv4("192.168.8.3", "192.168.8.2"), PEER.upper())
    assert r.owner(ip("192.168.8.3")) == PEER


def test_learning_never_takes_an_owned_or_impossible_address():
    r = routes()
    assert not r.learn(ipv4("192.168.8.1", "192.168.8.2"), OTHER)  # owned by the requestor
    assert r.owner(ip("192.168.8.1")) == REQUESTOR
    assert not r.learn(ipv4("192.168.8.2", "192.168.8.2"), OTHER)  # our own address
    assert not r.learn(ipv4("10.0.0.1", "192.168.8.2"), OTHER)  # outside the network
    assert not r.learn(ipv4("192.168.8.255", "192.168.8.2"), OTHER)  # the broadcast address
    assert not r.learn(ipv4("192.168.8.9", "192.168.8.2"), ME)  # ourselves
    assert not r.learn(ipv4("192.168.8.9", "192.168.8.2"), "")
    assert not r.learn(ipv6(), OTHER)


def test_source_ip_reads_arp_and_ipv4_only():
    assert source_ip(arp(2, "192.168.8.3", "192.168.8.2")) == ip("192.168.8.3")
    assert source_ip(ipv4("192.168.8.4", "192.168.8.2")) == ip("192.168.8.4")
    assert source_ip(ipv6()) is None
    assert source_ip(b"") is None
