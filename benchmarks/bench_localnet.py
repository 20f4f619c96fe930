"""localnet's figures: start-up time (cold and warm data dir) and a provider's idle cost.

    python benchmarks/bench_localnet.py [--providers 4] [--idle 10]

Targets (issue: localnet part 1): up with 4 providers <= 2 s warm, <= 6 s cold; a provider idles
under 60 MB RSS and under 1 % of a core. Ends with one line of name=value pairs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import psutil

from golem_actors.localnet.network import LocalNet


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--providers", type=int, default=4)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-localnet-") as tmp:
        data_dir = Path(tmp)
        cold, net = timed_up(args.providers, data_dir)
        net.stop()
        warm, net = timed_up(args.providers, data_dir)
        try:
            rss, cpu = idle_cost(net, args.idle)
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
    print(f"localnet down: {down:.2f} s")
    print(
        f"providers={args.providers} up_cold_s={cold:.2f} up_warm_s={warm:.2f} "
        f"provider_rss_mib={rss:.1f} provider_cpu_pct={cpu:.2f} down_s={down:.2f}"
    )


if __name__ == "__main__":
    main()
