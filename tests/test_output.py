"""Streamed output as lines: order kept, nothing lost when the stream fails, nothing repeated."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

import pytest

from golem_actors.exescript import Capture, Script
from golem_actors.output import OutputLine, OutputStream, streamed_run, streams_output
from golem_actors.yagna.models import CommandResult, RuntimeEvent

NOW = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


def chunk(index: int, stream: str, text: str) -> RuntimeEvent:
    return RuntimeEvent("b", index, NOW, stream, output=text)


def finished(index: int, code: int = 0) -> RuntimeEvent:
    return RuntimeEvent("b", index, NOW, "finished", return_code=code)


def result(index: int, stdout: str | None, stderr: str | None = None, *, ok: bool = True):
    status = "Ok" if ok else "Error"
    return CommandResult(index, NOW, status, is_batch_finished=True, stdout=stdout, stderr=stderr)


def collect(events: list[RuntimeEvent], results: list[CommandResult] | None) -> list[OutputLine]:
    lines: list[OutputLine] = []
    stream = OutputStream(lines.append)
    for event in events:
        stream.push(event)
    stream.pump(0)
    stream.finish(results)
    return lines


def texts(lines: list[OutputLine]) -> list[tuple[str, str, bool]]:
    return [(line.stream, line.text, line.live) for line in lines]


def test_chunks_become_lines_in_the_order_printed() -> None:
    events = [
        chunk(0, "stdout", "o1\no"),
        chunk(0, "stderr", "e1\n"),
        chunk(0, "stdout", "2\r\nlast without end"),
        finished(0),
        chunk(1, "stdout", "next\n"),
        finished(1),
    ]
    results = [result(0, "o1\no2\r\nlast without end", "e1\n"), result(1, "next\n")]
    lines = collect(events, results)
    assert texts(lines) == [
        ("stdout", "o1", True),
        ("stderr", "e1", True),
        ("stdout", "o2", True),
        ("stdout", "last without end", True),
        ("stdout", "next", True),
    ]
    assert [line.index for line in lines] == [0, 0, 0, 0, 1]


def test_a_broken_stream_is_completed_from_the_results_without_repeats() -> None:
    events = [chunk(0, "stdout", "a\nb"), chunk(0, "stderr", "x\n")]  # then the stream broke
    results = [result(0, "a\nbc\nd\n", "x\ny"), result(1, "z\n")]
    assert texts(collect(events, results)) == [
        ("stdout", "a", True),
        ("stderr", "x", True),
        ("stdout", "bc", False),  # begun live, ended from the results
        ("stdout", "d", False),
        ("stderr", "y", False),
        ("stdout", "z", False),
    ]


def test_without_a_stream_every_line_comes_from_the_results() -> None:
    results = [result(0, "one\ntwo\n", None), result(1, None, "oops\n", ok=False)]
    assert texts(collect([], results)) == [
        ("stdout", "one", False),
        ("stdout", "two", False),
        ("stderr", "oops", False),
    ]


def test_a_stream_opened_late_gets_the_missed_start_from_the_results() -> None:
    events = [chunk(0, "stdout", "3\n4\n"), finished(0)]
    assert texts(collect(events, [result(0, "1\n2\n3\n4\n")])) == [
        ("stdout", "3", True),
        ("stdout", "4", True),
        ("stdout", "1", False),
        ("stdout", "2", False),
    ]


def test_results_that_disagree_with_the_stream_add_nothing() -> None:
    events = [chunk(0, "stdout", "seen\n")]
    assert texts(collect(events, [result(0, "something else\n")])) == [("stdout", "seen", True)]


def test_a_failed_batch_ends_the_lines_begun_and_late_events_are_dropped() -> None:
    lines: list[OutputLine] = []
    stream = OutputStream(lines.append)
    stream.push(chunk(0, "stdout", "begun"))
    stream.finish(None)
    stream.push(chunk(0, "stdout", " after the end\n"))
    stream.pump(0)
    assert texts(lines) == [("stdout", "begun", True)]


def test_direct_delivery_happens_in_push() -> None:
    lines: list[OutputLine] = []
    stream = OutputStream(lines.append, direct=True)
    stream.push(chunk(0, "stdout", "now\n"))
    assert texts(lines) == [("stdout", "now", True)]


def test_pump_wakes_on_an_event_not_at_its_timeout() -> None:
    lines: list[OutputLine] = []
    stream = OutputStream(lines.append)
    timer = threading.Timer(0.05, stream.push, [chunk(0, "stdout", "hi\n")])
    timer.start()
    started = time.monotonic()
    stream.pump(5.0)
    assert time.monotonic() - started < 2.0
    assert texts(lines) == [("stdout", "hi", True)]
    timer.join()


def test_pump_does_not_wait_once_woken() -> None:
    stream = OutputStream(lambda _: None)
    stream.wake()  # the batch ended before the owner got to wait
    started = time.monotonic()
    stream.pump(5.0)
    assert time.monotonic() - started < 1.0


def test_a_failing_callback_is_logged_once_and_delivery_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    def callback(line: OutputLine) -> None:
        seen.append(line.text)
        raise RuntimeError("broken callback")

    stream = OutputStream(callback)
    stream.push(chunk(0, "stdout", "a\nb\n"))
    with caplog.at_level(logging.ERROR, logger="golem_actors.output"):
        stream.finish(None)
    assert seen == ["a", "b"]
    assert sum("output callback failed" in r.getMessage() for r in caplog.records) == 1


def test_which_scripts_stream() -> None:
    assert streams_output(streamed_run("/bin/echo", "x").commands)
    assert not streams_output(Script().run("/bin/echo").commands)
    only_err = Script().run("/bin/echo", stdout=Capture(), stderr=Capture(stream=True))
    assert streams_output(only_err.commands)
