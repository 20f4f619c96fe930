"""Streamed output on localnet: how long after a command prints a line the requestor sees it.

    python benchmarks/bench_stream.py [--runs 30] [--pause 0.3]

Each run is one ``ctx.run`` of a shell that waits a moment, prints the wall-clock time
(``date +%s.%N``, the provider is on this machine so the clocks agree), then keeps running for
``--pause`` s; the callback given to ``on_output`` notes when the line arrives. The latency is
arrival minus the printed time: it covers the sandbox's pipe, localnet's exe-unit, yagna's GSB
stream and SSE, our reader and the hand-over to the user's thread. The same command polled
(no ``on_output``) shows what the stream saves: its line is seen only when the command ends.
Target: median <= 100 ms. Ends with one line of name=value pairs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from golem_actors import Golem, ServiceActor, WorkContext
from golem_actors.localnet.network import LocalNet
from golem_actors.output import OutputLine
from golem_actors.yagna import ApiConfig


class Probe(ServiceActor):
    """Runs the timed command ``runs`` times, streamed, then ``runs`` times polled; returns."""

    def run(self, ctx: WorkContext) -> None:
        runs, pause, out = self.params["runs"], self.params["pause"], self.params["out"]
        script = f"sleep 0.05; date +%s.%N; sleep {pause}"
        for _ in range(runs):
            seen: list[tuple[float, str]] = []

            def note(line: OutputLine, seen: list[tuple[float, str]] = seen) -> None:
                seen.append((time.time(), line.text))

            ctx.run("/bin/sh", "-c", script, on_output=note)
            arrived, printed = seen[0]
            out["stream"].append(arrived - float(printed))
        for _ in range(runs):
            outcome = ctx.run("/bin/sh", "-c", script)
            out["poll"].append(time.time() - float(str(outcome.stdout)))


def measure(net: LocalNet, runs: int, pause: float) -> dict[str, list[float]]:
    config = ApiConfig(app_key=net.app_key, api_url=net.api_url)
    out: dict[str, list[float]] = {"stream": [], "poll": []}
    params: dict[str, Any] = {"runs": runs, "pause": pause, "out": out}
    with Golem(config=config, budget="2", settle_timeout_s=10) as golem:
        cluster = golem.run_service(Probe, 1, params=[params])
        deadline = time.monotonic() + 120 + runs * (pause + 1.0) * 2
        while not cluster.state.finished.wait(0.5) and len(out["poll"]) < runs:
            if time.monotonic() > deadline:
                raise SystemExit(f"the probe did not finish: {cluster.snapshots()}")
    if len(out["stream"]) < runs or len(out["poll"]) < runs:
        raise SystemExit(f"the probe ended early: {cluster.snapshots()}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--pause", type=float, default=0.3, help="s the command runs on")
    parser.add_argument("--providers", type=int, default=2)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp,
        LocalNet(providers=args.providers, data_dir=Path(tmp)) as net,
    ):
        out = measure(net, args.runs, args.pause)
    stream_ms = sorted(x * 1000 for x in out["stream"])
    poll_ms = sorted(x * 1000 for x in out["poll"])
    p90 = stream_ms[int(0.9 * (len(stream_ms) - 1))]
    median = statistics.median(stream_ms)
    print(
        f"first line seen after printed: streamed median {median:.1f} ms (p90 {p90:.1f}, "
        f"max {stream_ms[-1]:.1f}); polled median {statistics.median(poll_ms):.1f} ms",
        flush=True,
    )
    pairs = {
        "stream_first_line_ms_median": f"{median:.1f}",
        "stream_first_line_ms_p90": f"{p90:.1f}",
        "stream_first_line_ms_max": f"{stream_ms[-1]:.1f}",
        "poll_first_line_ms_median": f"{statistics.median(poll_ms):.1f}",
        "runs": str(args.runs),
        "target_met": str(median <= 100.0).lower(),
    }
    print(" ".join(f"{k}={v}" for k, v in pairs.items()))


if __name__ == "__main__":
    main()
