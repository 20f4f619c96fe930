"""The exe-unit's record of one ExeScript batch: results, runtime events and their long-polls.

Pure bookkeeping (no I/O), so the long-poll semantics are tested without yagna. It mirrors the
real exe-unit (``exe-unit/src/state.rs``): results are reported for the finished prefix of the
script, output only for the command asked about, and a batch ends at its last command or at its
first error. Two deliberate differences: ``isBatchFinished`` means what it says even when a
``commandIndex`` is polled (the real one sets it on the polled index), and a batch that ends
early wakes every waiter at once (the real one lets a poll for a never-run command time out).
"""

from __future__ import annotations

import codecs
import datetime as dt
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Batch",
    "CommandState",
    "StreamedOutput",
    "event_date",
    "format_output",
    "runtime_timestamp",
]

Output = str | list[int] | None


def event_date(when: dt.datetime) -> str:
    """``eventDate`` of a result: RFC 3339 in UTC with ``Z``, as chrono's ``DateTime<Utc>``."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def runtime_timestamp(when: dt.datetime) -> str:
    """``RuntimeEvent.timestamp``: a ``NaiveDateTime``, so no zone suffix (yagna rejects one)."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _text(data: bytes) -> str:
    """Invalid UTF-8 is mapped byte by byte, as the real exe-unit does, never dropped."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _capture_mode(spec: Mapping[str, Any] | None) -> tuple[str, Mapping[str, Any]]:
    """``("atEnd"|"stream", options)``; no spec means the whole output at the end, as text."""
    if not spec:
        return "atEnd", {}
    mode, options = next(iter(spec.items()))
    if mode not in ("atEnd", "stream") or not isinstance(options, Mapping):
        raise ValueError(f"unknown capture mode {spec!r}")
    part = options.get("part")  # serde may nest the head/tail choice; accept both shapes
    return mode, {**options, **part} if isinstance(part, Mapping) else options


def format_output(spec: Mapping[str, Any] | None, data: bytes) -> tuple[Output, bool]:
    """What a capture spec keeps of ``data``, and whether it is streamed.

    ``head``/``tail``/``headTail``/``limit`` cap the bytes kept; ``bin`` gives a list of byte
    values (serde's ``Vec<u8>``), ``str`` a string; nothing captured is ``None``, not ``""``.
    """
    mode, options = _capture_mode(spec)
    if (limit := options.get("head", options.get("limit"))) is not None:
        data = data[: int(limit)]
    elif (limit := options.get("tail")) is not None:
        data = data[len(data) - int(limit) :] if int(limit) else b""
    elif (limit := options.get("headTail")) is not None:
        head = (int(limit) + 1) // 2
        tail = int(limit) - head
        data = data if len(data) <= int(limit) else data[:head] + data[len(data) - tail :]
    if not data:
        return None, mode == "stream"
    if options.get("format") in ("bin", "binary"):
        return list(data), mode == "stream"
    return _text(data), mode == "stream"


class StreamedOutput:
    """A ``stream`` capture of one command's stdout or stderr, formatted chunk by chunk as the
    command prints (a ``limit`` caps the whole stream; text is decoded across chunk ends)."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        limit = options.get("limit")
        self._left = None if limit is None else int(limit)
        self._binary = options.get("format") in ("bin", "binary")
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    @classmethod
    def of(cls, spec: Mapping[str, Any] | None) -> StreamedOutput | None:
        """The streamed capture a spec asks for; None for an at-end capture or none."""
        if not spec:
            return None
        mode, options = _capture_mode(spec)
        return cls(options) if mode == "stream" else None

    def chunk(self, data: bytes, *, final: bool = False) -> Output:
        """What of ``data`` goes out as an event now (None: nothing yet)."""
        if self._left is not None:
            data = data[: self._left]
            self._left -= len(data)
        if self._binary:
            return list(data) or None
        return self._decoder.decode(data, final) or None


@dataclass
class CommandState:
    """A finished command's result."""

    ok: bool
    stdout: Output = None
    stderr: Output = None
    message: str | None = None
    date: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


class Batch:
    """One batch: the finished prefix of its commands, its runtime events, and who waits on them.

    The worker thread calls ``started``/``output``/``finish``/``end``; GSB handlers call
    ``wait``, ``results`` and ``events_after`` from any number of threads.
    """

    def __init__(self, batch_id: str, script: list[Any]) -> None:
        self.batch_id = batch_id
        self.script = script
        self.aborted = False  # set by ``terminate`` in another batch, or the exe-unit stopping
        self._cond = threading.Condition()
        self._done: list[CommandState] = []
        self._events: list[dict[str, Any]] = []
        self._running: int | None = None
        self._finished = not script  # an empty script has nothing to wait for

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def running(self) -> int | None:
        return self._running

    def started(self, index: int) -> None:
        with self._cond:
            self._running = index
            self._event(index, {"started": {"command": self.script[index]}})

    def output(self, index: int, stream: str, value: Output) -> None:
        """A streamed chunk of a command's stdout/stderr (only for ``stream`` captures)."""
        with self._cond:
            self._event(index, {stream: value})

    def finish(self, index: int, state: CommandState, return_code: int) -> None:
        with self._cond:
            if index != len(self._done):
                raise ValueError(f"command {index} finished out of order in {self.batch_id}")
            self._done.append(state)
            self._running = None
            finished = {"return_code": return_code, "message": state.message}
            self._event(index, {"finished": finished})
            if not state.ok or index == len(self.script) - 1:
                self._finished = True
            self._cond.notify_all()

    def end(self) -> None:
        """No more commands will run (error, abort, crash): wake every waiter."""
        with self._cond:
            self._finished = True
            self._running = None
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _event(self, index: int, kind: dict[str, Any]) -> None:
        now = runtime_timestamp(dt.datetime.now(dt.UTC))
        event = {"batch_id": self.batch_id, "index": index, "timestamp": now, "kind": kind}
        self._events.append(event)
        self._cond.notify_all()

    def check_index(self, command_index: int | None) -> None:
        if command_index is not None and not 0 <= command_index < len(self.script):
            raise IndexError(
                f"commandIndex {command_index} is outside this {len(self.script)}-command batch"
            )

    def done(self, command_index: int | None = None) -> bool:
        """Whether polling ``command_index`` (None: the whole batch) has its answer."""
        last = len(self.script) - 1 if command_index is None else command_index
        return self._finished or len(self._done) > last

    def wait(
        self, command_index: int | None, timeout: float, stop: threading.Event | None = None
    ) -> bool:
        """Wait up to ``timeout`` s for ``done(command_index)``; False on expiry or ``stop``."""
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._cond:
            while not self.done(command_index):
                left = deadline - time.monotonic()
                if left <= 0 or (stop is not None and stop.is_set()):
                    return False
                self._cond.wait(left)
            return True

    def results(self, command_index: int | None = None) -> list[dict[str, Any]]:
        """``ExeScriptCommandResult`` items of the finished prefix up to ``command_index``."""
        last = len(self.script) - 1 if command_index is None else command_index
        with self._cond:
            done = list(self._done[: last + 1])
        items = []
        for index, state in enumerate(done):
            output = command_index is None or command_index == index
            items.append(
                {
                    "index": index,
                    "eventDate": event_date(state.date),
                    "result": "Ok" if state.ok else "Error",
                    "stdout": state.stdout if output else None,
                    "stderr": state.stderr if output else None,
                    "message": state.message,
                    "isBatchFinished": not state.ok or index == len(self.script) - 1,
                }
            )
        return items

    def events_after(
        self, seen: int, timeout: float, stop: threading.Event | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """Events past the first ``seen``, waiting up to ``timeout`` s for one; and whether the
        batch has ended (so a stream knows to close once it has sent them)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._events) <= seen and not self._finished:
                left = deadline - time.monotonic()
                if left <= 0 or (stop is not None and stop.is_set()):
                    break
                self._cond.wait(left)
            return list(self._events[seen:]), self._finished
