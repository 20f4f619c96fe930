"""A compute-only task run: find the preimage of a SHA-256 hash by searching a key space in chunks.

The key space (numbers ``0 .. space-1``, as decimal strings) is split into chunks, one task each;
every task hashes its chunk on a provider with a small shell loop and prints the match, if any.
The tasks are declarative (commands + a parser), so the runtime packs several into one batch.

    golem-actors localnet run -- python examples/keyspace_search.py   # on localnet
    python examples/keyspace_search.py        # on your yagna: YAGNA_APPKEY (and YAGNA_API_URL)
"""

from __future__ import annotations

import hashlib
import sys

from golem_actors import GolemOptions, Task, TaskOutput, execute_tasks
from golem_actors.yagna import ApiConfig

SEARCH = (
    'i={start}; while [ "$i" -lt {end} ]; do '
    'h=$(printf %s "$i" | /usr/bin/sha256sum); [ "${{h%% *}}" = "{target}" ] && echo "$i"; '
    "i=$((i + 1)); done; true"
)


def found(output: TaskOutput) -> int | None:
    """A chunk's result: the preimage, or None when it is not in the chunk."""
    text = str(output.stdout[-1] or "").strip()
    return int(text) if text else None


def search_tasks(target: str, space: int, chunk: int) -> list[Task]:
    tasks = []
    for start in range(0, space, chunk):
        end = min(start + chunk, space)
        script = SEARCH.format(start=start, end=end, target=target)
        tasks.append(Task(data=(start, end), commands=[["/bin/sh", "-c", script]], parse=found))
    return tasks


def search(
    target: str,
    space: int,
    chunk: int,
    *,
    max_workers: int = 4,
    budget: str = "1",
    task_timeout: float = 300.0,
    config: ApiConfig | None = None,
    golem_options: GolemOptions | None = None,
) -> int | None:
    """The preimage of ``target`` in ``0 .. space-1``, or None; stops at the first hit."""
    hit = None
    with execute_tasks(
        search_tasks(target, space, chunk),
        max_workers=max_workers,
        budget=budget,
        task_timeout=task_timeout,
        config=config,
        golem_options=golem_options,
    ) as run:
        for done in run:
            if not done.ok:
                raise RuntimeError(f"chunk {done.task.data} failed: {done.error}")
            if done.result is not None:
                hit = int(done.result)
                break  # leaving the block stops the other chunks and pays for what they used
    print(run.summary.format(), file=sys.stderr)
    return hit


if __name__ == "__main__":
    secret = 1337
    digest = hashlib.sha256(str(secret).encode()).hexdigest()
    hit = search(digest, space=2000, chunk=250, max_workers=4, budget="1")
    print(f"preimage of {digest[:16]}...: {hit}")
    sys.exit(0 if hit == secret else 1)
