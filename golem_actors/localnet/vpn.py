"""A localnet exe-unit's VPN, as pure code: the Deploy ``net`` entry and where each frame goes.

Golem's VPN carries bare Ethernet frames (ARP included) between nodes, one frame per bus call to
``/public/vpn/<network>/raw`` (``shared/notes/yagna-vpn.md``). Each node keeps a table of the
network's members, IP -> node id, and sends a frame read from its TAP device to the node that owns
the frame's destination, as yagna's own exe-unit does (``exe-unit/src/network/vpn.rs``):

- ARP (IPv4 only) by its target address; a broadcast request for an address nobody is known to
  own goes to every member (whoever owns it answers, and the answer teaches us the owner);
- IPv4 by its destination; the limited and the subnet broadcast to every member; a destination
  nobody owns is dropped, except that a destination MAC of the form ``a0:13:<IPv4>`` (yagna's
  convention) names its owner as yagna master does;
- anything else (IPv6, multicast, other EtherTypes) is dropped.

The table starts from the Deploy's ``nodes``, follows the requestor's ``VpnControl``
(``addNodes``/``removeNodes``) and learns the sender of a frame from an address it does not
know yet (an address already owned is never taken over by a frame, and a node the requestor
removed is not learned back from its late frames, until the requestor adds it again; yagna's
exe-unit learns it back, so a removed node that still talks would stay reachable). It never
names our own node: a frame to ourselves would only come back. Nothing here invents a node id:
under central net a call to a node that is not connected loops inside the hub
(``vpn-proof.md`` §7.5).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from golem_actors.errors import GolemActorsError

__all__ = [
    "BROADCAST_MAC",
    "MAC_PREFIX",
    "MTU",
    "Control",
    "NetSpec",
    "Routes",
    "VpnError",
    "hosts_file",
    "mac_of",
    "parse_control",
    "parse_hosts",
    "parse_networks",
    "source_ip",
]

#: The TAP's MTU: yagna's stack (smoltcp) counts 1400 bytes with the 14-byte Ethernet header.
MTU = 1386
MAC_PREFIX = b"\xa0\x13"  # yagna's MACs: a0:13 and the four bytes of the node's IPv4 address
BROADCAST_MAC = b"\xff" * 6
_ETH = 14
_IPV4, _ARP = b"\x08\x00", b"\x08\x06"
_ARP_LEN = _ETH + 28
_IPV4_MIN = _ETH + 20
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")


class VpnError(GolemActorsError, ValueError):
    """A network setting or control message that cannot be used; the message names the field."""


def mac_of(ip: IPv4Address) -> bytes:
    """The MAC yagna gives the node at ``ip``."""
    return MAC_PREFIX + ip.packed


@dataclass(frozen=True)
class NetSpec:
    """One network of a Deploy: its id and range, our address in it, the members it names."""

    network_id: str
    network: IPv4Network
    node_ip: IPv4Address
    gateway: IPv4Address | None
    nodes: Mapping[IPv4Address, str]  # as deployed, our own entry included

    @property
    def mac(self) -> bytes:
        return mac_of(self.node_ip)


def _address(value: Any, field: str) -> IPv4Address:
    if not isinstance(value, str):
        raise VpnError(f"{field} must be an IPv4 address as a string, got {value!r}")
    try:
        return IPv4Address(value.strip())
    except ValueError:
        raise VpnError(f"{field} must be an IPv4 address, got {value!r}") from None


def _network(entry: Mapping[str, Any], field: str) -> IPv4Network:
    ip, mask = entry.get("ip"), entry.get("mask")
    if not isinstance(ip, str) or (mask is not None and not isinstance(mask, str)):
        raise VpnError(f"{field}.ip and .mask must be strings, got {ip!r} and {mask!r}")
    text = ip if "/" in ip or mask is None else f"{ip}/{mask}"
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise VpnError(f"{field}.ip/.mask is not an IPv4 network: {text!r}") from None
    if not isinstance(network, IPv4Network) or network.prefixlen > 30:  # noqa: PLR2004
        raise VpnError(f"{field}.ip/.mask must be an IPv4 network of 4 addresses or more: {text!r}")
    return network


def _member(network: IPv4Network, ip: IPv4Address, field: str) -> IPv4Address:
    if ip not in network or ip in (network.network_address, network.broadcast_address):
        raise VpnError(f"{field} {ip} is not a host address of {network}")
    return ip


def parse_net(entry: Any, field: str = "net[0]") -> NetSpec:
    """One item of a Deploy's ``net`` list (ya-client's ``Network``, camelCase)."""
    if not isinstance(entry, Mapping):
        raise VpnError(f"{field} must be an object, got {entry!r}")
    network_id = entry.get("id")
    if not isinstance(network_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", network_id):
        what = "a network id (letters, digits, - or _)"
        raise VpnError(f"{field}.id must be {what}, got {network_id!r}")
    network = _network(entry, field)
    node_ip = _member(network, _address(entry.get("nodeIp"), f"{field}.nodeIp"), f"{field}.nodeIp")
    gateway = entry.get("gateway")
    gw = None if gateway in (None, "") else _address(gateway, f"{field}.gateway")
    raw_nodes = entry.get("nodes") or {}
    if not isinstance(raw_nodes, Mapping):
        raise VpnError(f"{field}.nodes must map IP addresses to node ids, got {raw_nodes!r}")
    nodes = {}
    for ip, node_id in raw_nodes.items():
        where = f"{field}.nodes[{ip!r}]"
        if not isinstance(node_id, str) or not node_id:
            raise VpnError(f"{where} must be a node id, got {node_id!r}")
        nodes[_member(network, _address(ip, where), where)] = node_id.lower()
    return NetSpec(network_id, network, node_ip, gw, nodes)


def parse_networks(entries: Any) -> list[NetSpec]:
    """A Deploy's whole ``net`` list; networks must differ in id and must not overlap."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise VpnError(f"net must be a list of networks, got {entries!r}")
    specs = [parse_net(entry, f"net[{i}]") for i, entry in enumerate(entries)]
    for i, spec in enumerate(specs):
        for other in specs[:i]:
            if spec.network_id == other.network_id or spec.network.overlaps(other.network):
                raise VpnError(
                    f"net[{i}] ({spec.network_id}, {spec.network}) repeats or overlaps "
                    f"{other.network_id} ({other.network})"
                )
    return specs


def parse_hosts(hosts: Any) -> dict[str, IPv4Address]:
    """A Deploy's ``hosts``: hostname -> IPv4 address (as ya-runtime-vm adds them)."""
    if hosts is None:
        return {}
    if not isinstance(hosts, Mapping):
        raise VpnError(f"hosts must map hostnames to addresses, got {hosts!r}")
    parsed = {}
    for name, ip in hosts.items():
        if not isinstance(name, str) or not _HOSTNAME.match(name):
            raise VpnError(f"hosts: {name!r} is not a hostname")
        parsed[name] = _address(ip, f"hosts[{name!r}]")
    return parsed


def hosts_file(hosts: Mapping[str, IPv4Address], hostname: str) -> str:
    """The container's ``/etc/hosts``: loopback names, its own hostname, then the Deploy's."""
    lines = [f"127.0.0.1\tlocalhost {hostname}", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{ip}\t{name}" for name, ip in hosts.items()]
    return "\n".join(lines) + "\n"


# -- frames -------------------------------------------------------------------------------------


def source_ip(frame: bytes) -> IPv4Address | None:
    """The sender's IPv4 address of an ARP or IPv4 frame (None for anything else)."""
    kind = frame[12:14]
    if kind == _ARP and len(frame) >= _ARP_LEN and frame[16:18] == _IPV4:
        return IPv4Address(frame[28:32])
    if kind == _IPV4 and len(frame) >= _IPV4_MIN and frame[_ETH] >> 4 == 4:  # noqa: PLR2004
        return IPv4Address(frame[26:30])
    return None


@dataclass(frozen=True)
class Control:
    """A ``VpnControl`` message: ``nodes`` (IP -> id) to add, or ``node_ids`` to remove."""

    network_id: str
    nodes: Mapping[str, str] | None = None
    node_ids: tuple[str, ...] = ()


def parse_control(body: Any) -> Control:
    """``{"addNodes": {"network_id", "nodes"}}`` or ``{"removeNodes": {"network_id", "node_ids"}}``
    (serde's tags are camelCase, the fields stay snake_case)."""
    if not isinstance(body, Mapping) or len(body) != 1:
        raise VpnError(f"VpnControl must be addNodes or removeNodes, got {body!r}")
    kind, inner = next(iter(body.items()))
    if kind not in ("addNodes", "removeNodes") or not isinstance(inner, Mapping):
        raise VpnError(f"VpnControl must be addNodes or removeNodes, got {body!r}")
    network_id = inner.get("network_id")
    if not isinstance(network_id, str):
        raise VpnError(f"VpnControl {kind}.network_id must be a string, got {network_id!r}")
    if kind == "addNodes":
        nodes = inner.get("nodes")
        if not isinstance(nodes, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in nodes.items()
        ):
            raise VpnError(f"VpnControl addNodes.nodes must map IPs to node ids, got {nodes!r}")
        return Control(network_id, nodes=dict(nodes))
    ids = inner.get("node_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise VpnError(f"VpnControl removeNodes.node_ids must be a list of ids, got {ids!r}")
    return Control(network_id, node_ids=tuple(ids))


class Routes:
    """One network's members as one node sees them: who gets each frame read from its TAP.

    Not thread-safe: the bridge that owns it holds a lock around every use.
    """

    def __init__(self, spec: NetSpec, own_id: str) -> None:
        self.spec = spec
        self.own_id = own_id.lower()
        self._owner: dict[IPv4Address, str] = {}
        self._removed: set[str] = set()
        self.add({str(ip): node_id for ip, node_id in spec.nodes.items()})

    def nodes(self) -> dict[IPv4Address, str]:
        return dict(self._owner)

    def owner(self, ip: IPv4Address) -> str | None:
        return self._owner.get(ip)

    def add(self, nodes: Mapping[str, str]) -> list[str]:
        """Add or move members (a restarted instance keeps its IP on a new node); returns what
        was refused and why (an address outside the network, ours, or our own node id)."""
        refused = []
        for text, given in nodes.items():
            try:
                ip = _member(self.spec.network, _address(text, "node"), "node")
            except VpnError as exc:
                refused.append(str(exc))
                continue
            node_id = given.lower()
            ours = (ip == self.spec.node_ip, node_id == self.own_id)
            if ours == (True, True):
                continue  # our own entry: nothing to send there
            if any(ours) or not node_id:
                refused.append(f"{ip} -> {node_id!r}: clashes with this node ({self.own_id})")
                continue
            self._owner[ip] = node_id
            self._removed.discard(node_id)
        return refused

    def remove(self, node_ids: Iterable[str]) -> int:
        """Drop every address of these nodes; frames to them are dropped from now on."""
        gone = {node_id.lower() for node_id in node_ids}
        self._removed |= gone
        before = len(self._owner)
        self._owner = {ip: n for ip, n in self._owner.items() if n not in gone}
        return before - len(self._owner)

    def learn(self, frame: bytes, caller: str) -> bool:
        """A frame from ``caller`` arrived: it owns the frame's source address if nobody does."""
        ip, caller = source_ip(frame), caller.lower()
        net = self.spec.network
        if ip is None or not caller or caller == self.own_id or ip in self._owner:
            return False
        if caller in self._removed:
            return False
        if ip not in net or ip in (net.network_address, net.broadcast_address, self.spec.node_ip):
            return False
        self._owner[ip] = caller
        return True

    def everyone(self) -> list[str]:
        return sorted(set(self._owner.values()))

    def targets(self, frame: bytes) -> list[str]:
        """The node ids a frame read from our TAP goes to (none: drop it)."""
        kind = frame[12:14]
        if kind == _ARP and len(frame) >= _ARP_LEN and frame[16:18] == _IPV4:
            return self._arp_targets(frame)
        if kind == _IPV4 and len(frame) >= _IPV4_MIN and frame[_ETH] >> 4 == 4:  # noqa: PLR2004
            return self._ip_targets(frame)
        return []

    def _arp_targets(self, frame: bytes) -> list[str]:
        target = IPv4Address(frame[38:42])
        owner = self._owner.get(target)
        if owner is not None:
            return [owner]
        unknown = target != self.spec.node_ip and target in self.spec.network
        return self.everyone() if frame[0:6] == BROADCAST_MAC and unknown else []

    def _ip_targets(self, frame: bytes) -> list[str]:
        dst_mac, dst = frame[0:6], IPv4Address(frame[30:34])
        if dst_mac == BROADCAST_MAC or dst in (
            IPv4Address("255.255.255.255"),
            self.spec.network.broadcast_address,
        ):
            return self.everyone()
        owner = self._owner.get(dst)
        if owner is None and dst_mac[:2] == MAC_PREFIX:
            owner = self._owner.get(IPv4Address(dst_mac[2:6]))
        return [owner] if owner is not None else []
