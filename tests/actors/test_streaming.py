"""Streamed output on localnet: lines as they are printed, the same as the polled results (order
and completeness), and the polled path filling in when the stream fails or is not there."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from golem_actors import Golem, Task, WorkContext
from golem_actors.exescript import CommandFailedError, CommandOutcome
from golem_actors.localnet.network import LocalNet
from golem_actors.output import OutputLine
from golem_actors.yagna import ApiConfig, YagnaBadRequestError, YagnaConnectionError
from golem_actors.yagna.models import RuntimeEvent
from tests.actors.remote import Remote, remote_ctx

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]

SH = "/bin/sh"
# stdout and stderr in turns, with pauses so that the order printed is the order read
INTERLEAVED = "for i in 1 2 3; do echo out$i; sleep 0.05; echo err$i >&2; sleep 0.05; done"


@pytest.fixture(scope="module")
def remote(localnet: LocalNet) -> Iterator[Remote]:
    with remote_ctx(localnet) as session:
        yield session


def streamed(*argv: str) -> Callable[[WorkContext], tuple[list[OutputLine], CommandOutcome]]:
    def job(ctx: WorkContext) -> tuple[list[OutputLine], CommandOutcome]:
        lines: list[OutputLine] = []
        outcome = ctx.run(*argv, on_output=lines.append)
        return lines, outcome

    return job


def joined(lines: list[OutputLine], stream: str) -> str | None:
    text = "".join(f"{line.text}\n" for line in lines if line.stream == stream)
    return text or None


def test_streamed_lines_are_the_polled_output_in_the_order_printed(remote: Remote) -> None:
    lines, outcome = remote.call(streamed(SH, "-c", INTERLEAVED))
    polled = remote.call(lambda ctx: ctx.run(SH, "-c", INTERLEAVED))  # no stream at all
    expected = [(s, f"{s[3:]}{i}") for i in (1, 2, 3) for s in ("stdout", "stderr")]
    assert [(line.stream, line.text) for line in lines] == expected
    assert all(line.live and line.index == 0 for line in lines)
    assert (joined(lines, "stdout"), joined(lines, "stderr")) == (polled.stdout, polled.stderr)
    assert (outcome.stdout, outcome.stderr) == (polled.stdout, polled.stderr)


def test_a_long_commands_lines_arrive_while_it_runs(remote: Remote) -> None:
    def job(ctx: WorkContext) -> tuple[list[float], float, float]:
        seen: list[float] = []
        began = time.monotonic()
        ctx.run(
            SH,
            "-c",
            "for i in 1 2 3 4; do echo line$i; sleep 0.5; done",
            on_output=lambda _: seen.append(time.monotonic()),
        )
        return seen, began, time.monotonic()

    seen, began, ended = remote.call(job)
    assert len(seen) == 4
    assert ended - began >= 2.0
    assert seen[0] - began < 1.0  # the first line long before the command's end
    assert seen[3] - seen[0] > 1.2  # and each as it was printed, not all at the end


def test_a_command_without_output_streams_nothing(remote: Remote) -> None:
    lines, outcome = remote.call(streamed("/bin/true"))
    assert lines == []
    assert outcome.ok
    assert (outcome.stdout, outcome.stderr) == (None, None)


def test_a_failing_command_streams_what_it_printed_then_raises(remote: Remote) -> None:
    lines: list[OutputLine] = []

    def job(ctx: WorkContext) -> CommandOutcome:
        return ctx.run(
            SH, "-c", "echo before; sleep 0.1; echo why >&2; exit 3", on_output=lines.append
        )

    with pytest.raises(CommandFailedError) as failed:
        remote.call(job)
    assert [(line.stream, line.text) for line in lines] == [("stdout", "before"), ("stderr", "why")]
    assert failed.value.stderr == "why\n"


def test_a_stream_that_is_not_supported_falls_back_to_the_polled_output(
    remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert remote.golem.rt is not None
    api = remote.golem.rt.client.activity

    def unsupported(*_: Any, **__: Any) -> bool:
        raise YagnaBadRequestError("no event streams here", method="GET", path="/exec")

    monkeypatch.setattr(api, "follow_batch", unsupported)
    lines, outcome = remote.call(streamed(SH, "-c", INTERLEAVED))
    assert [line.live for line in lines] == [False] * 6
    assert (joined(lines, "stdout"), joined(lines, "stderr")) == (outcome.stdout, outcome.stderr)
    assert joined(lines, "stdout") == "out1\nout2\nout3\n"


def test_a_stream_that_breaks_midway_loses_and_repeats_nothing(
    remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert remote.golem.rt is not None
    api = remote.golem.rt.client.activity
    real = api.follow_batch

    def breaking(activity_id: str, batch_id: str, on_event: Any, **kwargs: Any) -> bool:
        printed = 0

        def cut(event: RuntimeEvent) -> None:
            nonlocal printed
            if event.kind == "stdout":
                printed += 1
                if printed > 2:
                    raise YagnaConnectionError("cut", method="GET", path="/exec")
            on_event(event)

        return real(activity_id, batch_id, cut, **kwargs)

    monkeypatch.setattr(api, "follow_batch", breaking)
    script = "for i in 1 2 3 4 5 6; do echo l$i; sleep 0.1; done"
    lines, outcome = remote.call(streamed(SH, "-c", script))
    assert [line.text for line in lines] == [f"l{i}" for i in range(1, 7)]
    assert [line.live for line in lines] == [True, True, False, False, False, False]
    assert outcome.stdout == "l1\nl2\nl3\nl4\nl5\nl6\n"


def test_tasks_stream_their_output_to_the_log(
    localnet: LocalNet, caplog: pytest.LogCaptureFixture
) -> None:
    config = ApiConfig(app_key=localnet.app_key, api_url=localnet.api_url)

    def worker(ctx: WorkContext, task: Task) -> str | bytes | None:
        return ctx.run(SH, "-c", f"echo worker-{task.data}").stdout

    declarative = [
        Task(data=i, commands=[[SH, "-c", f"echo packed-{i}; echo e{i} >&2"]]) for i in range(2)
    ]
    with (
        caplog.at_level(logging.INFO, logger="golem_actors.output"),
        Golem(config=config, budget="2", settle_timeout_s=20) as golem,
    ):
        for tasks, fn in (([Task(data=7)], worker), (declarative, None)):
            run = golem.execute_tasks(tasks, fn, max_workers=1, stream_output=True)
            assert all(done.ok for done in run), [done.error for done in run]
    logged = [r.getMessage() for r in caplog.records if r.name == "golem_actors.output"]
    assert "worker-1 [0 stdout] worker-7" in logged  # the worker form: its ctx.run
    packed = {"task-0 [0 stdout] packed-0", "task-0 [0 stderr] e0", "task-1 [1 stdout] packed-1"}
    assert packed <= {line.partition(" ")[2] for line in logged}, logged  # under the task's id
