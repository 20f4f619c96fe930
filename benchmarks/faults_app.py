"""What the fault rounds run: a service (deploys, starts, runs a command every half second) and a
short batch of tasks whose completions go to the run's journal.

    python -m benchmarks.faults_app RUN_DIR DURATION BUDGET   # YAGNA_APPKEY, YAGNA_API_URL set

runs both for DURATION seconds in a session journaled in RUN_DIR (the round may SIGKILL it). The
session journals each task's result before reporting it, and a resumed run does not run a task
whose result is in the journal: the application only starts its tasks and reads the results.
"""

from __future__ import annotations

import logging
import sys
import time
from decimal import Decimal
from pathlib import Path

from golem_actors import Golem, ServiceActor, Task, TaskOutput, TaskResult, TaskRun, WorkContext

TASKS = 12
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Sleeper(ServiceActor):
    def run(self, ctx: WorkContext) -> None:
        while True:
            ctx.run("/bin/true")
            ctx.sleep(0.5)


def _square(output: TaskOutput) -> int:
    return int(str(output.stdout[0]).strip())


def square_tasks() -> list[Task]:
    """Task ``sq-i`` prints i*i (stable ids: a resumed run knows which are done)."""
    return [
        Task(
            id=f"sq-{i}",
            data=i,
            commands=[["/bin/sh", "-c", f"echo $(({i} * {i}))"]],
            parse=_square,
        )
        for i in range(TASKS)
    ]


def start_tasks(golem: Golem) -> TaskRun:
    """Every task, started on ``golem``; those its journal holds are reported without running."""
    return golem.execute_tasks(
        square_tasks(), max_workers=2, task_timeout=30, max_retries=5, batch_size=4
    )


def read_results(run: TaskRun, until: float) -> list[TaskResult]:
    """Read the results as they come, until every task was reported or ``until``; returns
    them (the session journaled each success before reporting it)."""
    reported: list[TaskResult] = []
    while len(reported) < len(run.tasks) and (left := until - time.monotonic()) > 0:
        if (result := run.next_result(timeout=min(left, 0.5))) is not None:
            reported.append(result)
    return reported


def main(argv: list[str]) -> int:
    run_dir, duration, budget = Path(argv[0]), float(argv[1]), Decimal(argv[2])
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    golem = Golem(budget=budget, journal=run_dir, settle_timeout_s=60)
    golem.start()
    try:
        golem.run_service(Sleeper, 2, health_interval_s=1.0)
        run = start_tasks(golem)
        deadline = time.monotonic() + duration
        read_results(run, deadline)
        time.sleep(max(0.0, deadline - time.monotonic()))
    finally:
        golem.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
