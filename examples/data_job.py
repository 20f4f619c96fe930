"""A data task run: input files go in, results come out, and each one is verified locally.

Each task sends one text file to ``/golem/input``, counts its lines, words and bytes with ``wc``
on a provider, and sends back a sorted copy from ``/golem/output``; the requestor checks both
against what it computes itself.

    golem-actors localnet run -- python examples/data_job.py   # on localnet
    python examples/data_job.py        # on your yagna: YAGNA_APPKEY (and YAGNA_API_URL)
"""

from __future__ import annotations

import random
import sys

from golem_actors import GolemOptions, Task, TaskOutput, execute_tasks
from golem_actors.yagna import ApiConfig

IN, OUT = "/golem/input/data.txt", "/golem/output/sorted.txt"


def make_files(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
    words = ["golem", "actor", "task", "yagna", "offer", "batch", "provider", "invoice"]
    return [
        "\n".join(" ".join(rng.choices(words, k=rng.randint(1, 6))) for _ in range(20 + i)).encode()
        + b"\n"
        for i in range(count)
    ]


def counts(output: TaskOutput) -> tuple[int, int, int]:
    lines, words, size = str(output.stdout[0]).split()[:3]
    return int(lines), int(words), int(size)


def tasks_for(files: list[bytes]) -> list[Task]:
    return [
        Task(
            data=i,
            inputs={IN: content},
            commands=[["/usr/bin/wc", IN], ["/bin/sh", "-c", f"/usr/bin/sort {IN} > {OUT}"]],
            outputs=[OUT],
            parse=counts,
        )
        for i, content in enumerate(files)
    ]


def verify(content: bytes, result: object, sorted_back: bytes) -> None:
    expected = (content.count(b"\n"), len(content.split()), len(content))
    if result != expected:
        raise AssertionError(f"wc says {result}, expected {expected}")
    if sorted_back.splitlines() != sorted(content.splitlines()):
        raise AssertionError("the sorted file does not match")


def run_job(
    files: list[bytes],
    *,
    max_workers: int = 4,
    budget: str = "1",
    task_timeout: float = 300.0,
    config: ApiConfig | None = None,
    golem_options: GolemOptions | None = None,
) -> int:
    """Run and verify every file; returns how many were verified."""
    verified = 0
    with execute_tasks(
        tasks_for(files),
        max_workers=max_workers,
        budget=budget,
        task_timeout=task_timeout,
        config=config,
        golem_options=golem_options,
    ) as run:
        for done in run:
            if not done.ok:
                raise RuntimeError(f"file {done.task.data} failed: {done.error}")
            verify(files[done.task.data], done.result, done.files[OUT])
            verified += 1
    print(run.summary.format())
    return verified


if __name__ == "__main__":
    files = make_files(12)
    ok = run_job(files, max_workers=4, budget="1")
    print(f"{ok}/{len(files)} files verified")
    sys.exit(0 if ok == len(files) else 1)
