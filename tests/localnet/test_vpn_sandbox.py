"""The container's end of the VPN, without a bus: a TAP made in the container's network namespace,
what the container sees (only ``lo`` and the VPN, its ``/etc/hosts``), and that it reaches
nothing outside the VPN: not the host's loopback, not the host's network. Needs root, as the
VPN does (``tap.vpn_unavailable``); CI runs as root.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from golem_actors.localnet.sandbox import Sandbox, SandboxError, SandboxNetwork
from golem_actors.localnet.tap import Tap, TapError, in_netns, vpn_unavailable
from golem_actors.localnet.vpn import MTU, NetSpec, hosts_file, mac_of, parse_hosts, parse_net
from tests.localnet.test_vpn import arp, entry, ip

# Inside the container: every interface with its MAC, MTU, address; then each connect's outcome.
PROBE = r"""
import fcntl, json, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def q(req, name):
    return fcntl.ioctl(s, req, struct.pack("256s", name.encode()))
out = {"ifaces": {}, "connect": {}}
for _, name in socket.if_nameindex():
    mtu = struct.unpack_from("i", q(0x8921, name), 16)[0]
    info = {"mac": q(0x8927, name)[18:24].hex(), "mtu": mtu}
    try:
        info["ip"] = socket.inet_ntoa(q(0x8915, name)[20:24])
        info["mask"] = socket.inet_ntoa(q(0x891b, name)[20:24])
    except OSError:
        pass
    out["ifaces"][name] = info
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        out["connect"][target] = "connected"
    except OSError as e:
        out["connect"][target] = type(e).__name__ + ":" + str(e.errno)
out["back"] = socket.gethostbyname("back")
print(json.dumps(out))
"""


@dataclass
class TapHook:
    """What ``vpnlink`` does at each container start and end, minus the bus."""

    spec: NetSpec
    tap: Tap | None = None
    netns: int | None = None  # held open, so the test can look inside after the container ends
    attached: list[int] = field(default_factory=list)

    def attach(self, pidfd: int) -> None:
        self.attached.append(pidfd)
        if self.netns is None:
            self.netns = in_netns(pidfd, lambda: os.open("/proc/thread-self/ns/net", os.O_RDONLY))
        self.tap = Tap.create(
            pidfd, name="vpn0", mac=self.spec.mac, address=self.spec.node_ip,
            network=self.spec.network, mtu=MTU,
        )  # fmt: skip

    def detach(self) -> None:
        if self.tap is not None:
            self.tap.close()

    def interfaces(self) -> list[str]:
        assert self.netns is not None
        return sorted(name for _, name in in_netns(self.netns, socket.if_nameindex))


@pytest.fixture
def hook() -> Iterator[TapHook]:
    made = TapHook(parse_net(entry()))
    yield made
    made.detach()
    if made.netns is not None:
        os.close(made.netns)


@pytest.fixture
def box(tmp_path: Path, hook: TapHook) -> Iterator[Sandbox]:
    etc_hosts = tmp_path / "etc-hosts"
    etc_hosts.write_text(hosts_file(parse_hosts({"back": "192.168.8.3"}), "localnet"))
    sandbox = Sandbox(tmp_path / "activity", network=SandboxNetwork(hook, etc_hosts))
    assert sandbox.start()
    yield sandbox
    sandbox.destroy()


def probe(sandbox: Sandbox, *targets: str) -> dict[str, object]:
    result = sandbox.run(["python3", "-c", PROBE, *targets], timeout=30)
    assert result.exit_code == 0, result.stderr.decode()
    probed: dict[str, object] = json.loads(result.stdout)
    return probed


def read_frame(tap: Tap, timeout: float = 5.0) -> bytes:
    ready, _, _ = select.select([tap.fileno()], [], [], timeout)
    assert ready, f"no frame from the container in {timeout} s"
    frame = tap.read()
    assert frame is not None
    return frame


def host_addresses() -> list[str]:
    """The host's own IPv4 addresses other than loopback."""
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            with contextlib.suppress(OSError):
                raw = fcntl.ioctl(s, 0x8915, struct.pack("256s", name.encode()))
                address = socket.inet_ntoa(raw[20:24])
                if not IPv4Address(address).is_loopback:
                    found.append(address)
    return found


def test_this_machine_can_give_containers_a_vpn():
    assert vpn_unavailable() is None  # root and /dev/net/tun: CI and this machine


def test_the_container_gets_its_tap_and_loses_it_when_it_ends(box: Sandbox, hook: TapHook):
    seen = probe(box)
    assert seen["ifaces"] == {
        "lo": {"mac": "000000000000", "mtu": 65536, "ip": "127.0.0.1", "mask": "255.0.0.0"},
        "vpn0": {"mac": "a013c0a80802", "mtu": MTU, "ip": "192.168.8.2", "mask": "255.255.255.0"},
    }
    assert seen["back"] == "192.168.8.3"  # the deploy's hosts are the container's /etc/hosts
    assert hook.interfaces() == ["lo", "vpn0"]
    box.stop()  # terminate: the container ends, its TAP goes with it
    assert hook.tap is not None
    assert hook.tap.closed
    assert hook.interfaces() == ["lo"]
    assert not hook.tap.write(b"\0" * 60)
    assert box.start()  # a new container gets a new TAP in its new namespace
    assert len(hook.attached) == 2
    assert probe(box)["ifaces"]["vpn0"]["ip"] == "192.168.8.2"  # type: ignore[index]


def test_frames_cross_the_tap_both_ways(box: Sandbox, hook: TapHook):
    """The container's kernel answers an ARP request written to the TAP, addressed as yagna's."""
    assert hook.tap is not None
    while hook.tap.read() is not None:  # whatever it said on its own at start (never blocks)
        pass
    assert hook.tap.read() is None
    assert hook.tap.write(arp(1, "192.168.8.1", "192.168.8.2"))
    for _ in range(10):
        frame = read_frame(hook.tap)
        if frame[12:14] == b"\x08\x06":
            break
    else:
        raise AssertionError("no ARP reply")
    assert frame[0:6] == mac_of(ip("192.168.8.1"))  # to the asker
    assert frame[6:12] == bytes.fromhex("a013c0a80802")  # from us, a0:13:<our ip>
    assert frame[20:22] == b"\x00\x02"  # a reply
    assert frame[28:32] == ip("192.168.8.2").packed


def test_the_container_reaches_nothing_outside_the_vpn(box: Sandbox):
    servers = []
    try:
        for address in ["127.0.0.1", *host_addresses()]:
            server = socket.create_server((address, 0))
            servers.append(server)
            with socket.create_connection(server.getsockname(), timeout=2):
                pass  # reachable from the host: the container's failure below is the sandbox
        targets = [f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in servers]
        outside = ["10.255.255.1:80", "8.8.8.8:53"]
        seen = probe(box, *targets, *outside)
    finally:
        for server in servers:
            server.close()
    assert list(seen["ifaces"]) == ["lo", "vpn0"]  # type: ignore[call-overload]
    connect: dict[str, str] = seen["connect"]  # type: ignore[assignment]
    assert connect[targets[0]] == "ConnectionRefusedError:111"  # its own loopback, not ours
    for target in [*targets[1:], *outside]:
        assert connect[target] == "OSError:101", (target, connect)  # ENETUNREACH: no route


def test_a_failing_attach_fails_the_start(tmp_path: Path):
    class Broken:
        held: int | None = None

        def attach(self, pidfd: int) -> None:
            self.held = os.dup(pidfd)  # the container's held pid 1
            raise TapError("no TAP today")

        def detach(self) -> None:
            self.detached = True

    broken = Broken()
    sandbox = Sandbox(tmp_path / "activity", network=SandboxNetwork(broken))
    try:
        with pytest.raises(SandboxError, match="no TAP today"):
            sandbox.start()
        assert broken.detached
        assert not sandbox.persistent
        assert broken.held is not None
        ended, _, _ = select.select([broken.held], [], [], 10)  # a pidfd: readable once it exits
        assert ended, "the held pid 1 of the failed container is still alive"
        os.close(broken.held)
    finally:
        sandbox.destroy()


def test_a_tap_made_in_a_closed_namespace_fails_clearly():
    read, write = os.pipe()
    os.close(write)
    network = parse_net(entry()).network
    try:
        with pytest.raises(TapError, match="network namespace"):
            Tap.create(read, name="vpn0", mac=b"\xa0\x13\0\0\0\x01",
                       address=ip("10.0.0.1"), network=network, mtu=MTU)  # fmt: skip
    finally:
        os.close(read)
