"""``Golem(storage="gftp")`` end to end on localnet: a service's ``ctx.send_file`` /
``download_file`` and a task's inputs and outputs move through ``GftpStorage`` (yagna's GSB API)
and the provider's exe-unit speaking GFTP on the bus, not through HTTP."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from golem_actors import Golem, ServiceActor, Task, WorkContext
from golem_actors.golem import GolemError
from golem_actors.yagna import ApiConfig
from tests.waiting import wait_for

MIB = 1 << 20


class RoundTrip(ServiceActor):
    """Sends a file in, has the provider copy it, brings the copy back; then idles."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.source, self.target = Path(params["source"]), Path(params["target"])

    def start(self, ctx: WorkContext) -> None:
        super().start(ctx)
        ctx.send_file(self.source, "/golem/input/in.bin", timeout=120)
        ctx.send_bytes(b"small", "/golem/input/small.txt")

    def run(self, ctx: WorkContext) -> None:
        ctx.run("/bin/sh", "-c", "cp /golem/input/in.bin /golem/output/out.bin")
        assert ctx.download_bytes("/golem/input/small.txt") == b"small"
        ctx.download_file("/golem/output/out.bin", self.target.with_suffix(".part"), timeout=120)
        self.target.with_suffix(".part").rename(self.target)
        while True:
            ctx.sleep(0.5)


def sha3(path: Path) -> bytes:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha3_256").digest()


@pytest.mark.yagna
@pytest.mark.usefixtures("healthy_providers")
def test_a_service_sends_and_downloads_files_by_gftp(golem: Golem, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(10 * MIB))
    target = tmp_path / "back.bin"
    params = [{"source": str(source), "target": str(target)}]
    cluster = golem.run_service(RoundTrip, 1, params=params, health_interval_s=2.0)
    assert cluster.wait_running(timeout=90), cluster.snapshots()
    wait_for("the file back from the provider", target.exists, timeout=120)
    assert sha3(target) == sha3(source)


@pytest.mark.yagna
@pytest.mark.usefixtures("healthy_providers")
def test_task_inputs_and_outputs_move_by_gftp(golem: Golem) -> None:
    def worker(ctx: WorkContext, task: Task) -> str:
        ctx.run("/bin/sh", "-c", "tr a-z A-Z < /golem/input/in.txt > /golem/output/out.txt")
        return ctx.provider_name

    tasks = [
        Task(data=i, inputs={"/golem/input/in.txt": f"hello {i}".encode()},
             outputs=["/golem/output/out.txt"])
        for i in range(4)
    ]  # fmt: skip
    run = golem.execute_tasks(tasks, worker, max_workers=2, task_timeout=60)
    results = {}
    for _ in tasks:
        result = run.next_result(timeout=120)
        assert result is not None
        results[result.task.data] = result
    for i in range(len(tasks)):
        result = results[i]
        assert result.ok, result.error
        assert result.files["/golem/output/out.txt"] == f"HELLO {i}".encode()


def test_an_unknown_storage_is_named() -> None:
    config = ApiConfig(app_key="k", api_url="http://127.0.0.1:9")
    with pytest.raises(GolemError, match="storage must be one of"):
        Golem(config=config, storage="ftp")
    with pytest.raises(GolemError, match="lacks publish_bytes"):
        Golem(config=config, storage=object())  # type: ignore[arg-type]
