"""The task model's figures on localnet, measured side by side in one run on 8 providers.

    python benchmarks/bench_tasks.py [--quick]

- overhead: N tasks of ``sleep 0.2`` on 8 providers; wall time (after the first task started)
  against the ideal N x 0.2 s / 8; target <= 1.05. Startup (to the first task) is reported apart.
- throughput: N tasks of ``true``; tasks/s against a bare loop of raw REST calls (one-command
  batches, 8 threads on 8 activities) in the same run; goal >= 1.0.
- data: N tasks each sending 1 MiB in and 1 MiB out: MB/s end to end.
- requestor CPU per task (ms) over the three runs, and RSS at the end.

Ends with one line of name=value pairs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from golem_actors import Golem, Task, WorkContext
from golem_actors.exescript import Script
from golem_actors.localnet.network import LocalNet
from golem_actors.yagna import ApiConfig

PROVIDERS = 8


def timed_run(golem: Golem, tasks: list[Task], **options: Any) -> tuple[float, float, int]:
    """(seconds from the first task started to the last result, startup seconds, failures)."""
    started = time.monotonic()
    run = golem.execute_tasks(tasks, max_workers=PROVIDERS, task_timeout=120, **options)
    failures = sum(not r.ok for r in run)
    end = time.monotonic()
    startup = run.summary.first_task_s or 0.0
    run.stop()
    return end - started - startup, startup, failures


def bare_loop(golem: Golem, config: ApiConfig, commands: int) -> float:
    """Commands/s of one-command batches through raw REST calls, 8 threads on 8 activities.

    The 8 activities come from a task run (one task per provider); each task's body is the bare
    loop itself, calling yagna's exec and results endpoints directly, in lockstep with the others.
    """
    per_thread = commands // PROVIDERS
    barrier = threading.Barrier(PROVIDERS, timeout=120)
    marks: list[float] = []
    script = Script().run("/bin/true").to_json()

    def worker(ctx: WorkContext, _: Task) -> None:
        from golem_actors.yagna import YagnaClient  # noqa: PLC0415

        with YagnaClient(config) as client:
            barrier.wait()
            marks.append(time.monotonic())
            for _round in range(per_thread):
                batch = client.activity.exec(ctx.activity_id, script)
                while not any(
                    r.is_batch_finished
                    for r in client.activity.batch_results(ctx.activity_id, batch, timeout=10)
                ):
                    pass
            barrier.wait()
            marks.append(time.monotonic())

    run = golem.execute_tasks(
        [Task(data=i) for i in range(PROVIDERS)], worker, max_workers=PROVIDERS, task_timeout=600
    )
    failed = [r.error for r in run if not r.ok]
    run.stop()
    if failed:
        raise SystemExit(f"the bare loop failed: {failed[0]}")
    return per_thread * PROVIDERS / (max(marks) - min(marks[:PROVIDERS]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small version, under 2 minutes")
    args = parser.parse_args()
    n_sleep, n_true, n_data = (80, 400, 40) if args.quick else (400, 2000, 200)
    me = psutil.Process()
    results: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-tasks-") as tmp,
        LocalNet(providers=PROVIDERS, data_dir=Path(tmp) / "net") as net,
    ):
        config = ApiConfig(app_key=net.app_key, api_url=net.api_url)
        with Golem(config=config, budget="50", settle_timeout_s=30) as golem:
            cpu0 = me.cpu_times()
            sleep = [Task(commands=[["/bin/sleep", "0.2"]]) for _ in range(n_sleep)]
            wall, startup, failed = timed_run(golem, sleep)
            ideal = n_sleep * 0.2 / PROVIDERS
            results |= {"overhead_ratio": wall / ideal, "overhead_wall_s": wall,
                        "startup_s": startup, "overhead_failed": failed}  # fmt: skip
            print(f"overhead: {n_sleep} x sleep 0.2 on {PROVIDERS}: {wall:.2f} s after a "
                  f"{startup:.2f} s startup; ideal {ideal:.1f} s; ratio {wall / ideal:.3f} "
                  "(target <= 1.05)", flush=True)  # fmt: skip

            true = [Task(commands=[["/bin/true"]]) for _ in range(n_true)]
            wall, _, failed = timed_run(golem, true, batch_size=50)
            ours = n_true / wall
            bare = bare_loop(golem, config, n_true // 2)
            ratio = ours / bare
            results |= {"tasks_per_s": ours, "bare_per_s": bare, "throughput_ratio": ratio}
            results["throughput_failed"] = failed
            print(f"throughput: {n_true} x true: {ours:.0f} tasks/s; bare REST loop "
                  f"{bare:.0f}/s; ratio {ratio:.2f} (goal >= 1.0)", flush=True)  # fmt: skip

            blob = os.urandom(1 << 20)
            data = [
                Task(
                    inputs={"/golem/input/in.bin": blob},
                    commands=[["/bin/cp", "/golem/input/in.bin", "/golem/output/out.bin"]],
                    outputs=["/golem/output/out.bin"],
                    parse=lambda o: len(o.files["/golem/output/out.bin"]),
                )
                for _ in range(n_data)
            ]
            wall, _, failed = timed_run(golem, data, batch_size=4)
            mb_s = n_data * 2 * (1 << 20) / 1e6 / wall
            results |= {"data_mb_s": mb_s, "data_failed": failed}
            print(f"data: {n_data} x (1 MiB in + 1 MiB out): {mb_s:.1f} MB/s", flush=True)
            cpu1 = me.cpu_times()
            cpu_s = cpu1.user + cpu1.system - cpu0.user - cpu0.system
            tasks = n_sleep + n_true + n_data + PROVIDERS
            results["cpu_ms_per_task"] = cpu_s / tasks * 1000
            results["rss_mib"] = me.memory_info().rss / 2**20
            print(f"requestor: {results['cpu_ms_per_task']:.2f} ms CPU per task (incl. the "
                  f"bare loop's); RSS {results['rss_mib']:.0f} MiB", flush=True)  # fmt: skip
    pairs = (f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in results.items())
    print(" ".join(pairs))


if __name__ == "__main__":
    os.environ.setdefault("GOLEM_LOCALNET_RUST_LOG", "error")
    main()
