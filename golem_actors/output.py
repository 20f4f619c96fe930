"""Streamed output: what a batch's commands print, as lines, while they run.

yagna streams a batch's events (``RuntimeEvent``: a command started, printed a chunk, finished)
over server-sent events. ``OutputStream`` joins the chunks into lines and hands each to a
callback. The stream is best effort — yagna sends only what happens after it is opened, drops a
reader that falls behind, and the connection may break — so when the batch ends its polled
results, which hold each command's whole output, settle the account: what the stream missed is
delivered from them (``OutputLine.live`` is then False), what it delivered is never repeated.

Chunks are pushed from the I/O thread that reads the stream; lines reach the callback on the
thread that owns the stream (``pump``/``finish``: the user's worker thread), or at once under a
lock (``direct``, for a cheap callback such as a log line).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from golem_actors.exescript import Capture, Command, Script
from golem_actors.yagna.models import CommandResult, RuntimeEvent

__all__ = [
    "STREAMED",
    "OnOutput",
    "OutputLine",
    "OutputStream",
    "log_line",
    "log_output",
    "streamed_run",
    "streams_output",
]

log = logging.getLogger(__name__)  # golem_actors.output: also where log_output writes

#: The capture a run gets when its output is wanted as it comes (both stdout and stderr).
STREAMED = Capture(stream=True)


@dataclass(frozen=True)
class OutputLine:
    """One line a command printed, without its line end."""

    index: int  # the command's index in its batch
    stream: str  # "stdout" or "stderr"
    text: str
    live: bool = True  # False: it came from the final results (the stream missed or lost it)


OnOutput = Callable[[OutputLine], object]


def streams_output(commands: Iterable[Command]) -> bool:
    """Whether any command captures stdout or stderr as a stream (else nothing comes early)."""
    for command in commands:
        capture = command.body.get("capture") or {}
        if any("stream" in spec for spec in capture.values()):
            return True
    return False


def log_line(where: str, line: OutputLine) -> None:
    """Write one line to the ``golem_actors.output`` logger (INFO), saying where it ran."""
    log.info("%s [%d %s] %s", where, line.index, line.stream, line.text)


def log_output(where: str) -> OnOutput:
    """A callback writing each line to the ``golem_actors.output`` logger (INFO)."""
    return lambda line: log_line(where, line)


def _text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, bytes | tuple | list):
        return bytes(output).decode("utf-8", errors="replace")
    return ""


@dataclass
class _Part:
    """One command's stdout or stderr: what the stream gave, and the line not ended yet."""

    received: list[str] = field(default_factory=list)
    partial: str = ""


class OutputStream:
    """Lines of one batch from its stream events, reconciled with its results at the end."""

    def __init__(self, on_line: OnOutput, *, direct: bool = False) -> None:
        self._on_line = on_line
        self._direct = direct
        self._cond = threading.Condition()
        self._queue: list[RuntimeEvent] = []
        self._woken = False  # the batch is done: a pump no longer waits
        self._closed = False
        self._parts: dict[tuple[int, str], _Part] = {}
        self._failed = False

    # -- the reader's side (any thread) -----------------------------------------------------

    def push(self, event: RuntimeEvent) -> None:
        """An event from the stream; dropped once the stream is finished (the results have
        what it carried, so nothing is lost and nothing told twice)."""
        with self._cond:
            if self._closed:
                return
            if self._direct:
                self._apply(event)
                return
            self._queue.append(event)
            self._cond.notify_all()

    def wake(self) -> None:
        """The batch is done: end a ``pump`` wait, and let no later one wait (a wake between
        the owner's last check and its wait would otherwise cost it a whole timeout)."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    # -- the owner's side -------------------------------------------------------------------

    def pump(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for events and deliver their lines (owner's thread)."""
        with self._cond:
            if not self._queue and not self._woken:
                self._cond.wait(timeout)
            events, self._queue = self._queue, []
        for event in events:
            self._apply(event)

    def finish(self, results: Iterable[CommandResult] | None) -> None:
        """The batch ended: deliver what is queued, then what the stream missed according to
        ``results`` (None when there are none: only the lines begun are ended)."""
        with self._cond:
            self._closed = True
            events, self._queue = self._queue, []
            for event in events:
                self._apply(event)
            for result in sorted(results or (), key=lambda r: r.index):
                for stream in ("stdout", "stderr"):
                    self._settle(result.index, stream, _text(getattr(result, stream)))
            for (index, stream), part in sorted(self._parts.items()):
                self._end_line(index, stream, part, live=True)

    # -- lines ------------------------------------------------------------------------------

    def _apply(self, event: RuntimeEvent) -> None:
        if event.kind in ("stdout", "stderr"):
            text = _text(event.output)
            part = self._parts.setdefault((event.index, event.kind), _Part())
            part.received.append(text)
            self._add(event.index, event.kind, part, text, live=True)
        elif event.kind == "finished":
            for stream in ("stdout", "stderr"):
                if (ended := self._parts.get((event.index, stream))) is not None:
                    self._end_line(event.index, stream, ended, live=True)

    def _settle(self, index: int, stream: str, full: str) -> None:
        part = self._parts.setdefault((index, stream), _Part())
        got = "".join(part.received)
        if full == got:
            return
        if full.startswith(got):
            self._add(index, stream, part, full[len(got) :], live=False)
        elif got and (at := full.find(got)) > 0:
            # Opened late: the start of the output is missing. It comes now, out of order.
            head = _Part()
            self._add(index, stream, head, full[:at], live=False)
            self._end_line(index, stream, head, live=False)
            self._add(index, stream, part, full[at + len(got) :], live=False)
        else:
            log.debug("command %d %s: stream and results differ; kept the stream's", index, stream)
            return
        self._end_line(index, stream, part, live=False)

    def _add(self, index: int, stream: str, part: _Part, text: str, *, live: bool) -> None:
        part.partial += text
        *lines, part.partial = part.partial.split("\n")
        for line in lines:
            self._tell(OutputLine(index, stream, line.removesuffix("\r"), live))

    def _end_line(self, index: int, stream: str, part: _Part, *, live: bool) -> None:
        if part.partial:
            text, part.partial = part.partial, ""
            self._tell(OutputLine(index, stream, text.removesuffix("\r"), live))

    def _tell(self, line: OutputLine) -> None:
        try:
            self._on_line(line)
        except Exception:
            if not self._failed:  # once per batch: a broken callback must not flood the log
                log.exception("the output callback failed (later failures are not logged)")
            self._failed = True


def streamed_run(entry_point: str, *args: str) -> Script:
    """A one-command script whose stdout and stderr are streamed."""
    return Script().run(entry_point, *args, stdout=STREAMED, stderr=STREAMED)
