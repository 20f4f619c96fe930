"""localnet's figures: start-up time, a provider's idle cost, and ExeScript round trips.

    python benchmarks/bench_localnet.py [--providers 4] [--idle 10] [--exec-seconds 10]

Targets (issue: localnet part 1): up with 4 providers <= 2 s warm, <= 6 s cold; a provider idles
under 60 MB RSS and under 1 % of a core. Part 2: a one-command batch ``run /bin/true`` (after
deploy, in the bubblewrap sandbox) round-trips POST exec -> results finished in <= 35 ms
(median of 50 after 5 warm-ups), and 8 threads of one requestor over 8 activities finish >= 50
batches/s. Ends with one line of name=value pairs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from golem_actors.exescript import Script
from golem_actors.localnet.network import LocalNet
from golem_actors.yagna import ApiConfig, YagnaClient
from golem_actors.yagna.models import ProposalEvent

TRUE = Script().run("/bin/true").to_json()


def timed_up(providers: int, data_dir: Path) -> tuple[float, LocalNet]:
    started = time.monotonic()
    net = LocalNet(providers=providers, data_dir=data_dir)
    net.start()
    return time.monotonic() - started, net


def idle_cost(net: LocalNet, seconds: float) -> tuple[float, float]:
    """Max RSS (MiB) and mean CPU (% of one core) of the provider processes while idle."""
    procs = [psutil.Process(p.pid) for p in net.providers.values() if p.pid]
    before = [p.cpu_times() for p in procs]
    time.sleep(seconds)
    after = [p.cpu_times() for p in procs]
    cpu = [
        (a.user + a.system - b.user - b.system) / seconds * 100
        for a, b in zip(after, before, strict=True)
    ]
    rss = max(p.memory_info().rss for p in procs) / 2**20
    return rss, sum(cpu) / len(cpu)


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
    """CPU seconds of yagna, the providers (own), bubblewrap (the providers' reaped children),
    this requestor, and the whole machine, between ``start()`` and ``stop()``."""

    net: LocalNet

    def _sample(self) -> dict[str, float]:
        yagna = psutil.Process(self.net.node.pid).cpu_times()
        own = children = 0.0
        for provider in self.net.providers.values():
            if provider.pid:
                t = psutil.Process(provider.pid).cpu_times()
                own += t.user + t.system
                children += t.children_user + t.children_system
        me = psutil.Process().cpu_times()
        machine = psutil.cpu_times()
        return {
            "yagna": yagna.user + yagna.system,
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
    """Round trip of one batch (median of 50 after 5 warm-ups), then ``threads`` requestor
    threads over ``threads`` activities for ``seconds``: batches/s and CPU per batch."""
    config = ApiConfig(app_key=net.app_key, api_url=net.api_url)
    with YagnaClient(config) as yagna:
        allocation = yagna.payment.create_allocation("100")
        agreement_ids = agreements(yagna, allocation.allocation_id, len(net.providers))
        activities = [
            yagna.activity.create_activity(agreement_ids[i % len(agreement_ids)]).activity_id
            for i in range(threads)
        ]
        for activity_id in activities:
            one_batch(yagna, activity_id, Script().deploy().start().to_json())
        rtts = [one_batch(yagna, activities[0], TRUE) for _ in range(55)][5:]
        counts = [0] * threads
        latencies: list[float] = []
        stop = threading.Event()

        def worker(i: int) -> None:
            with YagnaClient(config) as own:
                while not stop.is_set():
                    latencies.append(one_batch(own, activities[i], TRUE))
                    counts[i] += 1

        meter = CpuMeter(net)
        workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
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
        for activity_id in activities:
            yagna.activity.destroy_activity(activity_id)
        for agreement_id in agreement_ids:
            yagna.market.terminate_agreement(agreement_id, "benchmark done", code="Success")
        yagna.payment.release_allocation(allocation.allocation_id)
    batches = sum(counts)
    figures = {
        "exec_rtt_ms": statistics.median(rtts) * 1000,
        "exec_rtt_p90_ms": statistics.quantiles(rtts, n=10)[-1] * 1000,
        "exec_batches_per_s": batches / elapsed,
        "exec_latency_8t_ms": statistics.median(latencies) * 1000,
    }
    for name, used in cpu.items():
        figures[f"cpu_{name}_ms_per_batch"] = used / batches * 1000
        figures[f"cpu_{name}_cores"] = used / elapsed
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--providers", type=int, default=4)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle measurement")
    parser.add_argument("--exec-seconds", type=float, default=10.0, help="seconds of 8-thread load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-localnet-") as tmp:
        data_dir = Path(tmp)
        cold, net = timed_up(args.providers, data_dir)
        net.stop()
        warm, net = timed_up(args.providers, data_dir)
        try:
            rss, cpu = idle_cost(net, args.idle)
            ex = exec_figures(net, args.exec_seconds)
        finally:
            stop_started = time.monotonic()
            net.stop()
            down = time.monotonic() - stop_started
    print(
        f"localnet up, {args.providers} providers: cold {cold:.2f} s (target <= 6), "
        f"warm {warm:.2f} s (target <= 2)"
    )
    print(
        f"provider idle over {args.idle:.0f} s: max RSS {rss:.1f} MiB (target < 60), "
        f"mean CPU {cpu:.2f} % of a core (target < 1)"
    )
    print(
        f"exec run /bin/true round trip: median {ex['exec_rtt_ms']:.1f} ms (target <= 35), "
        f"p90 {ex['exec_rtt_p90_ms']:.1f} ms"
    )
    print(
        f"8 threads x 8 activities for {args.exec_seconds:.0f} s: "
        f"{ex['exec_batches_per_s']:.1f} batches/s (target >= 50), "
        f"median {ex['exec_latency_8t_ms']:.1f} ms"
    )
    shares = ", ".join(
        f"{who} {ex[f'cpu_{who}_cores']:.2f} cores ({ex[f'cpu_{who}_ms_per_batch']:.1f} ms/batch)"
        for who in ("yagna", "providers", "bwrap", "requestor", "machine")
    )
    print(f"cpu under load: {shares}")
    print(f"localnet down: {down:.2f} s")
    extra = " ".join(f"{k}={v:.2f}" for k, v in ex.items())
    print(
        f"providers={args.providers} up_cold_s={cold:.2f} up_warm_s={warm:.2f} "
        f"provider_rss_mib={rss:.1f} provider_cpu_pct={cpu:.2f} down_s={down:.2f} {extra}"
    )


if __name__ == "__main__":
    main()
