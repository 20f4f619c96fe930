"""The VPN end to end, as on the real network: the requestor on its daemon (the hub), each
provider node on a daemon of its own joined to it, real provider processes, and a requestor that
does what golem-js does with raw calls: net-api (network, nodes), a Deploy with ``net`` and
``hosts``, then TCP to a server inside the container through yagna's VPN WebSocket.

Checked: data both ways intact (sha256), service to service by IP and by hostname, and that one
daemon cannot serve a network twice. Round trips are printed (``-s``): yagna's bus sockets lack
TCP_NODELAY, so each daemon adds a ~44 ms Nagle stall per exchange until localnet's daemons get
the fix (``vpn-proof.md`` §4).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from websockets.sync.client import ClientConnection, connect

from golem_actors.localnet.gsb import GsbClient
from golem_actors.localnet.node import YagnaNode
from golem_actors.localnet.offer import ProviderSpec
from golem_actors.localnet.provider.config import ProviderConfig
from golem_actors.localnet.vpn import VpnError, parse_net
from golem_actors.localnet.vpnlink import ActivityNetwork
from golem_actors.yagna import YagnaClient
from golem_actors.yagna.models import Allocation
from tests.conftest import RealYagna
from tests.localnet.test_exeunit import Activity
from tests.waiting import wait_for

pytestmark = pytest.mark.yagna

PORT = 8080
# The service in the container: ECHO n (n bytes back), UP n c (n bytes in chunks of c, a byte
# of ack after each, then their sha256), DOWN n (n random bytes, then their sha256).
SERVER = r"""
import hashlib, os, socketserver, sys
class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            cmd, *args = line.split()
            n = int(args[0])
            if cmd == b"ECHO":
                self.wfile.write(self.rfile.read(n))
            elif cmd == b"UP":
                digest, chunk = hashlib.sha256(), int(args[1])
                while n:
                    data = self.rfile.read(min(n, chunk))
                    digest.update(data)
                    n -= len(data)
                    self.wfile.write(b"+")
                self.wfile.write(digest.digest())
            elif cmd == b"DOWN":
                data = os.urandom(n)
                self.wfile.write(data + hashlib.sha256(data).digest())
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = daemon_threads = True
Server((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
"""
# A peer's client, run inside a container: talks to each ``host:port`` given, prints JSON.
CLIENT = r"""
import hashlib, json, os, socket, sys, time
def read(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError(len(buf))
        buf += chunk
    return buf
out = {}
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    t0 = time.monotonic()
    s = socket.create_connection((host, int(port)), timeout=20)
    connect_ms = (time.monotonic() - t0) * 1000
    rtts = []
    for _ in range(10):
        t = time.monotonic()
        s.sendall(b"ECHO 64\n" + b"e" * 64)
        assert read(s, 64) == b"e" * 64
        rtts.append((time.monotonic() - t) * 1000)
    up = os.urandom(100_000)
    s.sendall(b"UP 100000 100000\n" + up)
    ok_up = read(s, 33)[1:] == hashlib.sha256(up).digest()
    s.sendall(b"DOWN 100000\n")
    down = read(s, 100_032)
    ok_down = hashlib.sha256(down[:-32]).digest() == down[-32:]
    out[target] = {"up": ok_up, "down": ok_down, "connect_ms": connect_ms,
                   "rtt_ms": sorted(rtts)[len(rtts) // 2], "peer": s.getpeername()[0]}
print(json.dumps(out))
"""


@dataclass
class ProviderNode:
    """A provider node: its own daemon (joined to the hub) and a provider process on it."""

    name: str
    node: YagnaNode
    process: subprocess.Popen[bytes]
    state_dir: Path

    @property
    def node_id(self) -> str:
        return self.node.requestor.node_id


def start_provider(name: str, hub: YagnaNode, root: Path) -> ProviderNode:
    node = YagnaNode(root / "yagna", hub_gsb_url=hub.gsb_url)
    node.start()
    state = root / "provider"
    state.mkdir(parents=True)
    config = ProviderConfig(
        spec=ProviderSpec(name), api_url=node.api_url, app_key=node.requestor.app_key,
        node_id=node.requestor.node_id, gsb_url=node.gsb_url, state_dir=str(state),
        image_dir=str(root / "images"),
    )  # fmt: skip
    path = state / "config.json"
    path.write_text(json.dumps(config.to_json()))
    with (state / "provider.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "golem_actors.localnet.provider", str(path)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    provider = ProviderNode(name, node, process, state)

    def ready() -> bool:
        assert process.poll() is None, (state / "provider.log").read_text()[-2000:]
        with contextlib.suppress(OSError, ValueError):
            return bool(json.loads((state / "status.json").read_text())["state"] == "ready")
        return False

    try:
        wait_for(f"provider {name}", ready, timeout=60)
    except BaseException:
        stop_provider(provider)
        raise
    return provider


def stop_provider(provider: ProviderNode) -> None:
    if provider.process.poll() is None:
        provider.process.send_signal(signal.SIGTERM)
        try:
            provider.process.wait(20)
        except subprocess.TimeoutExpired:
            provider.process.kill()
            provider.process.wait(5)
    provider.node.stop()


@pytest.fixture(scope="module")
def providers(
    real_yagna: RealYagna, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ProviderNode]]:
    started: list[ProviderNode] = []
    try:
        for name in ("vpn-b", "vpn-c"):
            root = tmp_path_factory.mktemp(name)
            started.append(start_provider(name, real_yagna.node, root))
        yield started
    finally:
        for provider in started:
            stop_provider(provider)


@pytest.fixture(scope="module")
def requestor(real_yagna: RealYagna) -> Iterator[tuple[YagnaClient, Allocation]]:
    with real_yagna.client(real_yagna.requestor_id) as client:
        allocation = client.payment.create_allocation("10")
        yield client, allocation
        client.payment.release_allocation(allocation.allocation_id)


@dataclass
class Vpn:
    """A network as golem-js makes one: the requestor takes .1, each provider the next IP."""

    client: YagnaClient
    network_id: str
    requestor_id: str
    members: dict[str, str]  # ip -> node id

    def add(self, node_id: str) -> str:
        ip = f"192.168.8.{len(self.members) + 1}"
        self.client.net.add_node(self.network_id, node_id, ip)
        self.members[ip] = node_id
        return ip

    def deploy(self, ip: str, hosts: dict[str, str]) -> dict[str, Any]:
        net = {"id": self.network_id, "ip": "192.168.8.0", "mask": "255.255.255.0",
               "gateway": "192.168.8.1", "nodeIp": ip, "nodes": dict(self.members)}  # fmt: skip
        return {"deploy": {"net": [net], "hosts": hosts}}


@pytest.fixture
def vpn(real_yagna: RealYagna, requestor: tuple[YagnaClient, Allocation]) -> Iterator[Vpn]:
    client = requestor[0]
    network = client.net.create_network("192.168.8.0", mask="255.255.255.0")
    made = Vpn(client, network.id, real_yagna.requestor_id.node_id, {})
    made.add(made.requestor_id)
    try:
        yield made
    finally:
        client.net.remove_network(network.id)


def vm_with_vpn(name: str) -> str:
    return f"(&(golem.runtime.name=vm)(golem.runtime.capabilities=vpn)(golem.node.id.name={name}))"


@contextlib.contextmanager
def service(
    requestor: tuple[YagnaClient, Allocation], provider: ProviderNode, vpn: Vpn,
    hosts: dict[str, str], ip: str | None = None,
) -> Iterator[tuple[Activity, str]]:  # fmt: skip
    """An activity on ``provider`` in the network, its TCP server listening on its IP."""
    client, allocation = requestor
    with Activity.open(client, allocation, provider.name, deploy=False) as act:
        ip = ip or vpn.add(provider.node_id)
        script = [
            vpn.deploy(ip, hosts),
            {"start": {"args": []}},
            run("/usr/bin/python3", "-c", SAVE, SERVER),
            run("/bin/sh", "-c", f"python3 /golem/work/s.py {ip} {PORT} >/golem/work/s.log 2>&1 &"),
            run("/usr/bin/python3", "-c", WAIT_LISTENING, ip, str(PORT)),
        ]  # fmt: skip
        results = act.run_script(script)
        assert [r.result for r in results] == ["Ok"] * len(script), results
        yield act, ip


SAVE = "import sys; open('/golem/work/s.py', 'w').write(sys.argv[1])"
WAIT_LISTENING = r"""
import socket, sys, time
deadline = time.monotonic() + 20
while True:
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
"""


def run(*argv: str) -> dict[str, Any]:
    return {"run": {"entry_point": argv[0], "args": list(argv[1:])}}


def tcp(real_yagna: RealYagna, vpn: Vpn, ip: str) -> ClientConnection:
    """yagna's VPN TCP WebSocket, as golem-js opens it."""
    url = real_yagna.node.api_url.replace("http", "ws", 1)
    url += f"/net-api/v2/vpn/net/{vpn.network_id}/tcp/{ip}/{PORT}"
    headers = {"Authorization": f"Bearer {real_yagna.requestor_id.app_key}"}
    return connect(url, additional_headers=headers, compression=None, open_timeout=30)


class Stream:
    """TCP payload over the WebSocket: messages in, bytes out (any chunking)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.buf = ws, b""

    def read(self, n: int, timeout: float = 60.0) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            message = self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            self.buf += message if isinstance(message, bytes) else message.encode()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


def test_a_requestor_reaches_a_server_in_the_container_through_the_vpn(
    real_yagna: RealYagna, requestor: tuple[YagnaClient, Allocation],
    providers: list[ProviderNode], vpn: Vpn,
):  # fmt: skip
    with service(requestor, providers[0], vpn, {}) as (_, ip), tcp(real_yagna, vpn, ip) as ws:
        stream = Stream(ws)
        rtts = []
        for i in range(25):
            started = time.monotonic()
            ws.send(b"ECHO 64\n" + bytes([i]) * 64)
            assert stream.read(64) == bytes([i]) * 64
            rtts.append((time.monotonic() - started) * 1000)
        size = 256 * 1024
        started = time.monotonic()
        ws.send(f"DOWN {size}\n".encode())
        down = stream.read(size + 32)
        down_s = time.monotonic() - started
        assert hashlib.sha256(down[:-32]).digest() == down[-32:]
        # Upload in acknowledged chunks: back-to-back messages can be reordered by the
        # requestor's yagna (vpn-proof.md §7.3), which is the requestor side's to handle.
        upload, chunk = os.urandom(128 * 1024), 16 * 1024
        started = time.monotonic()
        ws.send(f"UP {len(upload)} {chunk}\n".encode())
        for at in range(0, len(upload), chunk):
            ws.send(upload[at : at + chunk])
            assert stream.read(1) == b"+"
        assert stream.read(32) == hashlib.sha256(upload).digest()
        up_s = time.monotonic() - started
    print(  # the figures of this run, shown with -s
        f"\nvpn requestor->container: echo rtt median {statistics.median(rtts):.1f} ms "
        f"(min {min(rtts):.1f}, max {max(rtts):.1f}); {size // 1024} KiB down in {down_s:.2f} s "
        f"({size / down_s / 2**20:.3f} MiB/s); {len(upload) // 1024} KiB up in {up_s:.2f} s"
    )


def test_services_reach_each_other_by_ip_and_by_hostname(
    requestor: tuple[YagnaClient, Allocation], providers: list[ProviderNode], vpn: Vpn
):
    back_ip, front_ip = vpn.add(providers[1].node_id), vpn.add(providers[0].node_id)
    hosts = {"back": back_ip, "front": front_ip}
    with (
        service(requestor, providers[1], vpn, hosts, back_ip),
        service(requestor, providers[0], vpn, hosts, front_ip) as (front, _),
    ):
        targets = [f"back:{PORT}", f"{back_ip}:{PORT}"]
        results = front.run_script([run("/usr/bin/python3", "-c", CLIENT, *targets)])
        assert results[-1].result == "Ok", results
        stdout = results[-1].stdout
        assert isinstance(stdout, str), results
        seen = json.loads(stdout)
    for target in targets:
        assert seen[target]["peer"] == back_ip
        assert seen[target]["up"] is True
        assert seen[target]["down"] is True
    print(
        "\nvpn service->service: "
        + "; ".join(
            f"{t}: connect {v['connect_ms']:.1f} ms, echo rtt median {v['rtt_ms']:.1f} ms"
            for t, v in seen.items()
        )
    )


def test_the_requestors_own_daemon_cannot_serve_its_network_too(real_yagna: RealYagna, vpn: Vpn):
    """The single-daemon topology: the requestor's own VPN holds the network's address on the
    daemon, so a provider there is refused, clearly, instead of swallowing frames."""
    net = {"id": vpn.network_id, "ip": "192.168.8.0", "mask": "255.255.255.0",
           "nodeIp": "192.168.8.9", "nodes": {}}  # fmt: skip
    spec = parse_net(net)
    with GsbClient(real_yagna.node.gsb_url, name="test-single-daemon") as bus:
        network = ActivityNetwork([spec], bus, real_yagna.provider_id.node_id)
        with pytest.raises(VpnError, match="already served on this provider's daemon"):
            network.open()


PROBE = r"""
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
    print("connected")
except OSError as e:
    print(type(e).__name__)
"""


def test_a_removed_peer_is_cut_off_and_an_added_one_reached_again(
    requestor: tuple[YagnaClient, Allocation], providers: list[ProviderNode], vpn: Vpn
):
    """VpnControl from the requestor reaches the members: removeNodes stops their frames to
    the peer at once, addNodes (the restarted-instance case) lets them through again."""
    back, front = providers[1], providers[0]
    back_ip, front_ip = vpn.add(back.node_id), vpn.add(front.node_id)
    with (
        service(requestor, back, vpn, {}, back_ip),
        service(requestor, front, vpn, {}, front_ip) as (front_act, _),
    ):

        def reach(timeout: float) -> str:
            results = front_act.run_script(
                [run("/usr/bin/python3", "-c", PROBE, back_ip, str(PORT), str(timeout))]
            )
            return str(results[-1].stdout).strip()

        assert reach(10) == "connected"
        vpn.client.net.remove_node(vpn.network_id, back.node_id)
        del vpn.members[back_ip]
        wait_for("the peer cut off", lambda: reach(2) == "TimeoutError", timeout=30)
        vpn.client.net.add_node(vpn.network_id, back.node_id, back_ip)
        wait_for("the peer again", lambda: reach(2) == "connected", timeout=30)


def netns_of(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/ns/net").stat().st_ino
    return None


def pids_in(netns: int) -> list[int]:
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    return [pid for pid in pids if netns_of(pid) == netns]


def test_a_crashed_provider_leaves_no_container_network_behind(
    real_yagna: RealYagna, requestor: tuple[YagnaClient, Allocation], vpn: Vpn,
    tmp_path: Path,
):  # fmt: skip
    provider = start_provider("vpn-crash", real_yagna.node, tmp_path)
    try:
        with service(requestor, provider, vpn, {}) as (_, ip):
            host = netns_of(os.getpid())
            sandboxed = {
                ns for child in psutil.Process(provider.process.pid).children(recursive=True)
                if (ns := netns_of(child.pid)) is not None and ns != host
            }  # fmt: skip
            assert len(sandboxed) == 1  # the container's own namespace (lo + its TAP)
            netns = sandboxed.pop()
            assert pids_in(netns)
            provider.process.kill()
            provider.process.wait(10)
            wait_for("the container's end", lambda: not pids_in(netns), timeout=15)
            # The daemon forgot the dead process's addresses: the network may be served again.
            spec = parse_net({"id": vpn.network_id, "ip": "192.168.8.0", "mask": "255.255.255.0",
                              "nodeIp": ip, "nodes": {}})  # fmt: skip
            with GsbClient(provider.node.gsb_url, name="test-after-crash") as bus:
                again = ActivityNetwork([spec], bus, provider.node_id)
                wait_for("the addresses freed", lambda: _opens(again), timeout=15)
                again.close()
    finally:
        stop_provider(provider)


def _opens(network: ActivityNetwork) -> bool:
    try:
        network.open()
    except VpnError:
        return False
    return True
