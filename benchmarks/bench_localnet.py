"""localnet's figures: start-up, a provider node's idle cost, ExeScript and bus round trips.

    python benchmarks/bench_localnet.py [--providers 4] [--idle 10] [--exec-seconds 10]
                                        [--no-compare]

A provider node is a yagna of its own plus the provider agent (localnet part 3). Targets (issue:
localnet part 3): ``golem-actors localnet up`` with 4 provider nodes, to its export lines with
every offer visible at the requestor's node, <= 8 s warm (the offer-propagation share reported
apart) and <= 15 s cold; idle, all 4 nodes (agents + daemons) < 1 GiB RSS; one-command batch
``run /bin/true`` across daemons (POST exec -> results finished, median of 50 after 5 warm-ups)
<= 40 ms. Part 2's load figure stays: 8 threads over 8 activities, batches/s.

Compared in the same run (unless --no-compare): the same round trips with yagna's bus sockets as
shipped (Nagle on: ``GOLEM_LOCALNET_NODELAY=0``), and on one shared daemon (``--shared-daemon``,
the layout before part 3). "Bus" is a native GSB call from the requestor's bus to a service on a
provider node's bus (``/net/<node>/...``): one at a time, and 32 at once. Ends with one line of
name=value pairs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import queue
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import psutil

from golem_actors.exescript import Script
from golem_actors.localnet.gsb import (
    FrameDecoder,
    GsbClient,
    IncomingCall,
    encode_body,
    encode_frame,
    new_packet,
)
from golem_actors.localnet.network import LocalNet
from golem_actors.localnet.nodelay import ENV_SWITCH
from golem_actors.yagna import ApiConfig, YagnaClient
from golem_actors.yagna.models import ProposalEvent

TRUE = Script().run("/bin/true").to_json()
CLI = [sys.executable, "-c", "import sys; from golem_actors.cli import main; sys.exit(main())"]
UP_LINE = re.compile(r"# localnet up in .*daemons ([\d.]+) s, agents ([\d.]+) s, offers ([\d.]+) s")


def cli_up(providers: int, data_dir: Path) -> dict[str, float]:
    """``golem-actors localnet up`` as a user runs it: seconds to its export lines (and the
    phases it prints), then Ctrl-C and the seconds to exit."""
    started = time.monotonic()
    cmd = [*CLI, "localnet", "up", "--providers", str(providers), "--data-dir", str(data_dir)]
    up = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    figures: dict[str, float] = {}
    timer = threading.Timer(120, up.kill)  # a bound on the whole start-up
    timer.start()
    try:
        assert up.stdout is not None
        for line in up.stdout:
            if match := UP_LINE.match(line):
                daemons, agents, offers = map(float, match.groups())
                figures |= {"daemons": daemons, "agents": agents, "offers": offers}
            if line.startswith("export YAGNA_APPKEY="):
                figures["up"] = time.monotonic() - started
                break
    finally:
        timer.cancel()
    if "up" not in figures:
        raise SystemExit(f"localnet up did not print its export lines (rc {up.poll()})")
    stopping = time.monotonic()
    up.send_signal(signal.SIGINT)
    up.wait(60)
    figures["down"] = time.monotonic() - stopping
    return figures


def node_processes(net: LocalNet) -> dict[str, list[psutil.Process]]:
    """Each provider node's processes: its agent and (unless shared) its daemon."""
    nodes = {}
    for name, provider in net.providers.items():
        pids = [provider.pid, None if net.daemons.shared else net.daemons.node(name).pid]
        nodes[name] = [psutil.Process(pid) for pid in pids if pid]
    return nodes


def idle_cost(net: LocalNet, seconds: float) -> dict[str, float]:
    """RSS (MiB) of each provider node (agent + daemon; the largest, and all nodes together)
    and their mean CPU (% of one core per node) while idle; the hub's RSS apart."""
    nodes = node_processes(net)
    before = {name: [p.cpu_times() for p in procs] for name, procs in nodes.items()}
    time.sleep(seconds)
    cpu, rss = [], []
    for name, procs in nodes.items():
        after = [p.cpu_times() for p in procs]
        used = sum(
            a.user + a.system - b.user - b.system for a, b in zip(after, before[name], strict=True)
        )
        cpu.append(used / seconds * 100)
        rss.append(sum(p.memory_info().rss for p in procs) / 2**20)
    return {
        "node_rss_mib": max(rss),
        "nodes_rss_mib": sum(rss),
        "node_cpu_pct": statistics.mean(cpu),
        "hub_rss_mib": psutil.Process(net.node.pid).memory_info().rss / 2**20,
    }


def agreements(yagna: YagnaClient, allocation_id: str, count: int) -> list[str]:
    """One agreement with each of ``count`` providers, negotiated with raw client calls."""
    decoration = yagna.payment.demand_decorations([allocation_id])
    props = {
        "golem.srv.comp.expiration": int((time.time() + 3600) * 1000),
        "golem.node.debug.subnet": "public",
        **decoration.property_dict(),
    }
    constraints = "(&" + "".join(decoration.constraints) + "(golem.runtime.name=vm))"
    demand_id = yagna.market.subscribe_demand(props, constraints)
    countered: dict[str, str] = {}  # our counter-proposal id -> provider name
    agreed: list[str] = []
    deadline = time.monotonic() + 60
    while len(agreed) < count and time.monotonic() < deadline:
        for event in yagna.market.demand_events(demand_id, timeout=1):
            if not isinstance(event, ProposalEvent):
                continue
            proposal = event.proposal
            name = proposal.properties.get("golem.node.id.name", "")
            if proposal.state == "Initial" and name not in countered.values():
                our = yagna.market.counter_proposal_demand(
                    demand_id, proposal.proposal_id, props, constraints
                )
                countered[our] = name
            elif proposal.state == "Draft" and proposal.prev_proposal_id in countered:
                valid_to = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
                agreement_id = yagna.market.create_agreement(proposal.proposal_id, valid_to)
                yagna.market.confirm_agreement(agreement_id)
                yagna.market.wait_for_approval(agreement_id, timeout=15)
                agreed.append(agreement_id)
    yagna.market.unsubscribe_demand(demand_id)
    if len(agreed) < count:
        raise RuntimeError(f"only {len(agreed)} of {count} agreements in 60 s")
    return agreed


def one_batch(yagna: YagnaClient, activity_id: str, script: list[dict[str, Any]]) -> float:
    """POST exec, then long-poll the results until the batch has finished; seconds taken."""
    started = time.perf_counter()
    batch_id = yagna.activity.exec(activity_id, script)
    while True:
        results = yagna.activity.batch_results(activity_id, batch_id, timeout=10)
        if results and results[-1].is_batch_finished:
            if not all(r.ok for r in results):
                raise RuntimeError(f"batch failed: {results}")
            return time.perf_counter() - started


@dataclass
class CpuMeter:
    """CPU seconds of the daemons, the providers (own), bubblewrap (the providers' reaped
    children), this requestor, and the whole machine, between ``start()`` and ``stop()``."""

    net: LocalNet

    def _sample(self) -> dict[str, float]:
        daemons = [psutil.Process(pid).cpu_times() for pid in self.net.daemons.pids()]
        own = children = 0.0
        for provider in self.net.providers.values():
            if provider.pid:
                t = psutil.Process(provider.pid).cpu_times()
                own += t.user + t.system
                children += t.children_user + t.children_system
        me = psutil.Process().cpu_times()
        machine = psutil.cpu_times()
        return {
            "yagna": sum(t.user + t.system for t in daemons),
            "providers": own,
            "bwrap": children,
            "requestor": me.user + me.system,
            "machine": machine.user + machine.system + getattr(machine, "softirq", 0.0),
        }

    def start(self) -> None:
        self._before = self._sample()

    def stop(self) -> dict[str, float]:
        after = self._sample()
        return {k: after[k] - self._before[k] for k in after}


def exec_figures(net: LocalNet, seconds: float, threads: int = 8) -> dict[str, float]:
    """Round trip of one batch (median of 50 after 5 warm-ups); then, unless ``seconds`` is 0,
    ``threads`` requestor threads over ``threads`` activities: batches/s and CPU per batch."""
    config = ApiConfig(app_key=net.app_key, api_url=net.api_url)
    if seconds <= 0:
        threads = 1
    with YagnaClient(config) as yagna:
        allocation = yagna.payment.create_allocation("100")
        agreement_ids = agreements(
            yagna, allocation.allocation_id, min(threads, len(net.providers))
        )
        activities = [
            yagna.activity.create_activity(agreement_ids[i % len(agreement_ids)]).activity_id
            for i in range(threads)
        ]
        for activity_id in activities:
            one_batch(yagna, activity_id, Script().deploy().start().to_json())
        rtts = [one_batch(yagna, activities[0], TRUE) for _ in range(55)][5:]
        figures = {
            "exec_rtt_ms": statistics.median(rtts) * 1000,
            "exec_rtt_p90_ms": statistics.quantiles(rtts, n=10)[-1] * 1000,
        }
        if seconds > 0:
            figures |= load(net, config, activities, seconds)
        for activity_id in activities:
            yagna.activity.destroy_activity(activity_id)
        for agreement_id in agreement_ids:
            yagna.market.terminate_agreement(agreement_id, "benchmark done", code="Success")
        yagna.payment.release_allocation(allocation.allocation_id)
    return figures


def load(
    net: LocalNet, config: ApiConfig, activities: list[str], seconds: float
) -> dict[str, float]:
    counts = [0] * len(activities)
    latencies: list[float] = []
    stop = threading.Event()

    def worker(i: int) -> None:
        with YagnaClient(config) as own:
            while not stop.is_set():
                latencies.append(one_batch(own, activities[i], TRUE))
                counts[i] += 1

    meter = CpuMeter(net)
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(len(activities))]
    meter.start()
    started = time.monotonic()
    for w in workers:
        w.start()
    stop.wait(seconds)
    stop.set()
    for w in workers:
        w.join(30)
    elapsed = time.monotonic() - started
    cpu = meter.stop()
    batches = sum(counts)
    figures = {
        "exec_batches_per_s": batches / elapsed,
        "exec_latency_8t_ms": statistics.median(latencies) * 1000,
    }
    for name, used in cpu.items():
        figures[f"cpu_{name}_ms_per_batch"] = used / batches * 1000
        figures[f"cpu_{name}_cores"] = used / elapsed
    return figures


def bus_figures(net: LocalNet, calls: int = 55, burst: int = 32) -> dict[str, float]:
    """Native GSB traffic between the requestor's bus and a service on provider-1's node:
    the median round trip of ``calls`` calls one at a time (after 5 warm-ups); ``burst`` calls
    at once (ms until all answered); and a ping-pong of pushes (no reply wanted, both ways,
    as VPN frames travel: ``/udp/net/<node>/...``), median round trip."""
    name = next(iter(net.providers))
    node_bus = net.daemons.endpoint(name).gsb_url
    address = f"/net/{net.providers[name].node_id}/localnet-bench/echo"
    pongs: queue.Queue[float] = queue.Queue()

    with (
        GsbClient(node_bus, name="bench-echo") as server,
        GsbClient(net.node.gsb_url) as me,
        Pusher(net.node.gsb_port) as ping,
        Pusher(net.daemons.node(name).gsb_port) as pong,
    ):
        back = f"/udp/net/{net.requestor_id}/localnet-bench-back/pong"

        def echo(call: IncomingCall) -> Any:
            if isinstance(call.body, dict) and "ping" in call.body:
                pong.push(back, call.body)  # answered by a push, not a reply
            return call.body

        server.register("/public/localnet-bench", echo)
        me.register("/public/localnet-bench-back", lambda call: pongs.put(call.body["ping"]))
        times = []
        for i in range(calls):
            started = time.perf_counter()
            assert me.call(address, {"n": i}, timeout=10) == {"n": i}
            times.append(time.perf_counter() - started)
        with ThreadPoolExecutor(burst) as pool:
            started = time.perf_counter()
            answers = list(pool.map(lambda i: me.call(address, i, timeout=10), range(burst)))
            together = time.perf_counter() - started
        assert answers == list(range(burst))
        rounds = []
        for i in range(calls):
            started = time.perf_counter()
            ping.push("/udp" + address, {"ping": i})
            assert pongs.get(timeout=10) == i
            rounds.append(time.perf_counter() - started)
    return {
        "bus_rtt_ms": statistics.median(times[5:]) * 1000,
        "bus_burst_ms": together * 1000,
        "bus_push_rtt_ms": statistics.median(rounds[5:]) * 1000,
    }


class Pusher:
    """Sends pushes (calls with ``no_reply``, which the bus client does not make) from a
    socket of its own on a node's bus (with TCP_NODELAY: only yagna's sockets are measured)."""

    def __init__(self, gsb_port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", gsb_port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._lock = threading.Lock()
        self._sent = 0

    def __enter__(self) -> Self:
        hello = new_packet("hello", name="bench-push", instance_id=os.urandom(16))
        self.sock.sendall(encode_frame(hello))
        decoder = FrameDecoder()
        while not decoder.feed(self.sock.recv(4096)):  # the router's Hello
            pass
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()

    def push(self, address: str, body: Any) -> None:
        with self._lock:
            self._sent += 1
            pkt = new_packet(
                "call_request",
                caller="local",
                address=address,
                request_id=f"push-{self._sent}",
                data=encode_body(body),
                no_reply=True,
            )
            self.sock.sendall(encode_frame(pkt))


def variant(providers: int, data_dir: Path, *, shared: bool, nodelay: bool) -> dict[str, float]:
    """Exec and bus round trips on a network of another layout, started and stopped here."""
    previous = os.environ.get(ENV_SWITCH)
    os.environ[ENV_SWITCH] = "1" if nodelay else "0"
    try:
        with LocalNet(providers=providers, data_dir=data_dir, shared_daemon=shared) as net:
            return {**exec_figures(net, 0), **bus_figures(net)}
    finally:
        if previous is None:
            os.environ.pop(ENV_SWITCH, None)
        else:
            os.environ[ENV_SWITCH] = previous


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--providers", type=int, default=4)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle measurement")
    parser.add_argument("--exec-seconds", type=float, default=10.0, help="seconds of 8-thread load")
    parser.add_argument("--no-compare", action="store_true", help="skip the Nagle/shared runs")
    args = parser.parse_args()
    n = args.providers
    with tempfile.TemporaryDirectory(prefix="bench-localnet-") as tmp:
        data_dir = Path(tmp) / "net"
        cold = cli_up(n, data_dir)
        warm = cli_up(n, data_dir)
        with LocalNet(providers=n, data_dir=data_dir) as net:
            idle = idle_cost(net, args.idle)
            ex = exec_figures(net, args.exec_seconds)
            bus = bus_figures(net)
        compared: dict[str, dict[str, float]] = {}
        if not args.no_compare:
            compared["nagle"] = variant(n, data_dir, shared=False, nodelay=False)
            compared["shared"] = variant(n, Path(tmp) / "shared", shared=True, nodelay=False)
    report(n, cold=cold, warm=warm, idle=idle, ex={**ex, **bus}, compared=compared, args=args)


def report(
    n: int,
    *,
    cold: dict[str, float],
    warm: dict[str, float],
    idle: dict[str, float],
    ex: dict[str, float],
    compared: dict[str, dict[str, float]],
    args: argparse.Namespace,
) -> None:
    for what, up in (("cold", cold), ("warm", warm)):
        target = 15 if what == "cold" else 8
        print(
            f"localnet up, {n} provider nodes, {what}: {up['up']:.2f} s to the export lines "
            f"(target <= {target}): daemons {up['daemons']:.1f} s, agents {up['agents']:.1f} s, "
            f"offers seen at the requestor's node {up['offers']:.2f} s; down {up['down']:.2f} s"
        )
    print(
        f"idle over {args.idle:.0f} s: a provider node (agent + its yagna) up to "
        f"{idle['node_rss_mib']:.0f} MiB, all {n} nodes {idle['nodes_rss_mib']:.0f} MiB "
        f"(target < 1024), {idle['node_cpu_pct']:.2f} % of a core each; "
        f"the requestor's yagna {idle['hub_rss_mib']:.0f} MiB"
    )
    line = f"exec run /bin/true across daemons: median {ex['exec_rtt_ms']:.1f} ms (target <= 40)"
    for name, figures in compared.items():
        line += f"; {name} {figures['exec_rtt_ms']:.1f} ms"
    print(line + f" (p90 {ex['exec_rtt_p90_ms']:.1f} ms)")
    keys = ("bus_rtt_ms", "bus_burst_ms", "bus_push_rtt_ms")
    line = "bus to a provider node, call / 32 calls at once / push ping-pong: "
    line += " / ".join(f"{ex[k]:.1f}" for k in keys) + " ms"
    for name, figures in compared.items():
        line += f"; {name} " + " / ".join(f"{figures[k]:.1f}" for k in keys) + " ms"
    print(line)
    print(
        f"8 threads x 8 activities for {args.exec_seconds:.0f} s: "
        f"{ex['exec_batches_per_s']:.1f} batches/s, median {ex['exec_latency_8t_ms']:.1f} ms"
    )
    shares = ", ".join(
        f"{who} {ex[f'cpu_{who}_cores']:.2f} cores ({ex[f'cpu_{who}_ms_per_batch']:.1f} ms/batch)"
        for who in ("yagna", "providers", "bwrap", "requestor", "machine")
    )
    print(f"cpu under load: {shares}")
    pairs = {
        "providers": n,
        **{f"up_cold_{k}_s": v for k, v in cold.items()},
        **{f"up_warm_{k}_s": v for k, v in warm.items()},
        **idle,
        **ex,
        **{f"{name}_{k}": v for name, figures in compared.items() for k, v in figures.items()},
    }
    print(
        " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in pairs.items())
    )


if __name__ == "__main__":
    main()
