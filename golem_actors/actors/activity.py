"""ActivityActor: one per activity. Creates it, runs ExeScript batches, polls state, destroys it.

Batches are asked for by the service's work context from its own thread with a
``concurrent.futures.Future``; the actor sends the batch and long-polls its results through the
I/O pool, and resolves the future. When the activity is found gone (the provider's exe-unit no
longer answers, yagna says 404/410 or Terminated), every pending batch fails at once with
``ActivityGoneError`` and the owner is told, so a failure is never noticed only at the next batch.

A batch that wants its output as it comes (``ExecBatch.on_event``) also gets its results stream
read, by an I/O worker that hands each event straight to ``on_event`` — never through this
actor's mailbox, so a chatty command cannot crowd out ``status`` or ``stop``. The long-poll runs
beside it and stays the authority: the stream only adds earliness. When the poll says the batch
finished, the actor waits (up to ``STREAM_GRACE_S``) for the stream to deliver its last events,
then resolves the future and cancels the stream; what the stream never delivered, the caller's
``OutputStream`` takes from the results.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import pykka

from golem_actors.actors.base import RuntimeActor, handles
from golem_actors.actors.io import IoResult
from golem_actors.actors.runtime import Runtime
from golem_actors.errors import GolemActorsError
from golem_actors.events import ActivityCreated, ActivityDestroyed, BatchFinished, BatchStarted
from golem_actors.yagna import (
    YagnaConnectionError,
    YagnaError,
    YagnaNotFoundError,
    YagnaServerError,
    YagnaTimeoutError,
)
from golem_actors.yagna.models import ActivityState, CommandResult, RuntimeEvent
from golem_actors.yagna.transport import Cancel

__all__ = [
    "ActivityActor",
    "ActivityClosed",
    "ActivityFailed",
    "ActivityGone",
    "ActivityGoneError",
    "ActivityReady",
    "BatchTimeoutError",
    "CheckHealth",
    "Destroy",
    "ExecBatch",
    "HealthReport",
    "Inspect",
]

log = logging.getLogger(__name__)

POLL_S = 20.0  # results long-poll; long polls keep yagna's and our CPU per batch low
STREAM_GRACE_S = 2.0  # once the poll says finished, how long the stream may take to catch up


class ActivityGoneError(GolemActorsError, RuntimeError):
    """The activity no longer exists or its provider stopped answering."""


class BatchTimeoutError(GolemActorsError, TimeoutError):
    """A batch did not finish within its timeout; ``partial`` holds the results so far."""

    def __init__(self, message: str, partial: list[CommandResult]) -> None:
        super().__init__(message)
        self.partial = partial


# -- messages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecBatch:
    script: list[dict[str, Any]]
    timeout_s: float
    future: Future[list[CommandResult]]
    # Told every event of the batch's results stream, from an I/O thread; None: no stream.
    on_event: Callable[[RuntimeEvent], object] | None = None


@dataclass(frozen=True)
class Inspect:
    """Read the activity's ``usage`` or ``state`` from yagna into ``future``."""

    what: str
    future: Future[Any]


@dataclass(frozen=True)
class CheckHealth:
    pass


@dataclass(frozen=True)
class Destroy:
    pass


@dataclass(frozen=True)
class ActivityReady:
    activity_id: str


@dataclass(frozen=True)
class ActivityFailed:
    error: BaseException


@dataclass(frozen=True)
class ActivityClosed:
    """The activity actor stopped (destroyed, or never created); told to the owner last."""


@dataclass(frozen=True)
class ActivityGone:
    reason: str
    unresponsive: bool = False  # the provider stopped answering (rather than the activity ending)


@dataclass(frozen=True)
class HealthReport:
    state: ActivityState | None
    error: str | None = None


@dataclass(frozen=True)
class _StreamGrace:
    number: int


@dataclass
class _Batch:
    request: ExecBatch
    started: float
    deadline: float
    batch_id: str = ""
    results: dict[int, CommandResult] = field(default_factory=dict)
    stream: Cancel | None = None  # the results stream, while it is being read
    held: list[CommandResult] | None = None  # finished, waiting for the stream to catch up


def _is_gone(error: BaseException) -> bool:
    if isinstance(error, YagnaNotFoundError):
        return True
    if isinstance(error, YagnaServerError):
        text = error.message.lower()
        return "endpoint address not found" in text or "not found" in text
    return False


#: Create failures after which the activity may exist all the same (the reply was what failed).
_MAYBE_CREATED = (YagnaTimeoutError, YagnaConnectionError, YagnaServerError)


class ActivityActor(RuntimeActor):
    role = "activity"

    def __init__(
        self,
        rt: Runtime,
        parent: pykka.ActorRef[Any],
        agreement_id: str,
        *,
        create_timeout: float = 30.0,
    ) -> None:
        super().__init__(rt, parent)
        self.agreement_id = agreement_id
        self.activity_id: str | None = None
        self._create_timeout = create_timeout
        self._batches: dict[int, _Batch] = {}
        self._next = 0
        self._gone: str | None = None
        self._destroying = False
        self._create_error: BaseException | None = None

    def started(self) -> None:
        self.io(
            "create",
            self.rt.client.activity.create_activity,
            self.agreement_id,
            timeout=self._create_timeout,
        )

    def io_create(self, result: IoResult) -> None:
        if not result.ok:
            error = result.error or RuntimeError("create failed")
            if isinstance(error, _MAYBE_CREATED) and self._create_error is None:
                # The answer was lost, not necessarily the activity: yagna may have made it.
                self._create_error = error
                self.io("lookup", self.rt.client.activity.activities, self.agreement_id)
                return
            self._create_failed(error)
            return
        self._created(result.value.activity_id)

    def io_lookup(self, result: IoResult) -> None:
        found: list[str] = result.value if result.ok else []
        if found:
            log.info("adopting activity %s, created although its create call failed", found[-1])
            self._created(found[-1])
            return
        self._create_failed(self._create_error or RuntimeError("create failed"))

    def _create_failed(self, error: BaseException) -> None:
        self.tell_parent(ActivityFailed(error))
        self.stop()

    def _created(self, activity_id: str) -> None:
        self.activity_id = activity_id
        self.rt.emit(ActivityCreated(activity_id=activity_id, agreement_id=self.agreement_id))
        # Told even when it is to be destroyed at once: the provider bills it all the same, so
        # the owner must register it for payment.
        self.tell_parent(ActivityReady(activity_id))
        if self._destroying:  # destroy was asked while create was in flight
            self._send_destroy()

    # -- batches ----------------------------------------------------------------------------

    @handles(ExecBatch)
    def on_exec(self, request: ExecBatch) -> None:
        if self._gone or self._destroying or self.activity_id is None:
            request.future.set_exception(ActivityGoneError(self._gone or "activity not available"))
            return
        number = self._next
        self._next += 1
        now = time.monotonic()
        self._batches[number] = _Batch(request, now, now + request.timeout_s)
        self.rt.emit(BatchStarted(activity_id=self.activity_id))
        self.io(("exec", number), self.rt.client.activity.exec, self.activity_id, request.script)

    def io_exec(self, result: IoResult) -> None:
        batch = self._batches.get(result.tag[1])
        if batch is None:
            return
        if not result.ok:
            self._fail_batch(result.tag[1], result.error)
            return
        batch.batch_id = result.value
        self._poll(result.tag[1], batch)
        if batch.request.on_event is not None:
            batch.stream = Cancel()
            self.io(
                ("stream", result.tag[1]),
                self.rt.client.activity.follow_batch,
                self.activity_id,
                batch.batch_id,
                batch.request.on_event,
                commands=len(batch.request.script),
                timeout=batch.deadline - time.monotonic() + POLL_S,
                cancel=batch.stream,
            )

    def io_stream(self, result: IoResult) -> None:
        number = result.tag[1]
        batch = self._batches.get(number)
        if batch is None:
            return
        batch.stream = None
        if not result.ok:
            log.info("activity %s: output stream failed, polling only: %s", self.activity_id,
                     result.error)  # fmt: skip
        if batch.held is not None:
            self._finish(number, batch.held)

    @handles(_StreamGrace)
    def _on_grace(self, grace: _StreamGrace) -> None:
        batch = self._batches.get(grace.number)
        if batch is not None and batch.held is not None:
            self._finish(grace.number, batch.held)

    def _pop(self, number: int) -> _Batch:
        """Take a batch out, ending its stream (a stream not ended reads until its timeout)."""
        batch = self._batches.pop(number)
        if batch.stream is not None:
            batch.stream.set()
        if batch.held is not None:
            self.cancel_timer(f"grace:{number}")
        return batch

    def _finish(self, number: int, ordered: list[CommandResult]) -> None:
        batch = self._pop(number)
        self._batch_done(batch, "ok" if all(r.ok for r in ordered) else "error")
        batch.request.future.set_result(ordered)

    def _poll(self, number: int, batch: _Batch) -> None:
        assert self.activity_id is not None
        wait = max(0.0, min(POLL_S, batch.deadline - time.monotonic()))
        self.io(
            ("poll", number),
            self.rt.client.activity.batch_results,
            self.activity_id,
            batch.batch_id,
            timeout=round(wait, 3),
        )

    def io_poll(self, result: IoResult) -> None:
        number = result.tag[1]
        batch = self._batches.get(number)
        if batch is None:
            return
        if not result.ok:
            if isinstance(result.error, YagnaTimeoutError) and time.monotonic() < batch.deadline:
                self._poll(number, batch)
                return
            self._fail_batch(number, result.error)
            return
        for item in result.value:
            batch.results[item.index] = item
        ordered = [batch.results[i] for i in sorted(batch.results)]
        if any(r.is_batch_finished for r in ordered):
            if batch.stream is None:
                self._finish(number, ordered)
                return
            batch.held = ordered
            self.after(STREAM_GRACE_S, _StreamGrace(number), key=f"grace:{number}")
        elif time.monotonic() >= batch.deadline:
            self._pop(number)
            self._batch_done(batch, "timeout")
            message = f"batch did not finish within {batch.request.timeout_s:g} s"
            batch.request.future.set_exception(BatchTimeoutError(message, ordered))
        else:
            self._poll(number, batch)

    def _batch_done(self, batch: _Batch, outcome: str) -> None:
        self.rt.emit(
            BatchFinished(
                activity_id=self.activity_id or "",
                ok=outcome == "ok",
                seconds=time.monotonic() - batch.started,
                outcome=outcome,
            )
        )

    def _fail_batch(self, number: int, error: BaseException | None) -> None:
        batch = self._pop(number)
        if isinstance(error, YagnaTimeoutError) and error.status == 408 and not batch.batch_id:  # noqa: PLR2004
            # yagna gave up waiting for the exe-unit to take the batch: the provider hangs.
            self._batch_done(batch, "gone")
            self._mark_gone(f"the provider did not answer: {error}", unresponsive=True)
            batch.request.future.set_exception(ActivityGoneError(self._gone or str(error)))
            return
        if error is not None and _is_gone(error):
            self._batch_done(batch, "gone")
            self._mark_gone(f"the provider stopped serving the activity: {error}")
            batch.request.future.set_exception(ActivityGoneError(self._gone or str(error)))
            return
        self._batch_done(batch, "error")
        batch.request.future.set_exception(error or RuntimeError("batch failed"))

    def _mark_gone(self, reason: str, *, unresponsive: bool = False) -> None:
        if self._gone is not None:
            return
        self._gone = reason
        # The owner hears why before any waiting user code wakes up with the error.
        self.tell_parent(ActivityGone(reason, unresponsive))
        for number in list(self._batches):
            self._pop(number).request.future.set_exception(ActivityGoneError(reason))

    # -- health -----------------------------------------------------------------------------

    @handles(CheckHealth)
    def on_check(self, _: CheckHealth) -> None:
        if self.activity_id is not None and not self._gone:
            self.io("state", self.rt.client.activity.get_state, self.activity_id)

    def io_state(self, result: IoResult) -> None:
        if not result.ok:
            if result.error is not None and _is_gone(result.error):
                self._mark_gone(f"activity state unavailable: {result.error}")
                return
            self.tell_parent(HealthReport(None, str(result.error)))
            return
        state: ActivityState = result.value
        if state.current == "Terminated":
            self._mark_gone(f"the activity was terminated ({state.reason or 'no reason given'})")
            return
        self.tell_parent(HealthReport(state))

    @handles(Inspect)
    def on_inspect(self, request: Inspect) -> None:
        if self.activity_id is None or self._gone:
            request.future.set_exception(ActivityGoneError(self._gone or "no activity yet"))
            return
        api = self.rt.client.activity
        read = api.get_usage if request.what == "usage" else api.get_state
        self.io(("inspect", request.future), read, self.activity_id)

    def io_inspect(self, result: IoResult) -> None:
        future: Future[Any] = result.tag[1]
        if result.ok:
            future.set_result(result.value)
        else:
            future.set_exception(result.error or RuntimeError("reading the activity failed"))

    # -- teardown ---------------------------------------------------------------------------

    @handles(Destroy)
    def on_destroy(self, _: Destroy) -> None:
        if self._destroying:
            return
        self._destroying = True
        for number in list(self._batches):
            self._pop(number).request.future.set_exception(
                ActivityGoneError("the activity is being destroyed")
            )
        if self.activity_id is None:
            return  # create still in flight: io_create destroys it
        if self._gone:
            self.stop()
            return
        self._send_destroy()

    def _send_destroy(self) -> None:
        assert self.activity_id is not None
        self.io("destroy", self.rt.client.activity.destroy_activity, self.activity_id, timeout=10)

    def io_destroy(self, result: IoResult) -> None:
        if not result.ok and not isinstance(result.error, YagnaError):
            log.warning("destroying activity %s: %r", self.activity_id, result.error)
        self.stop()

    def stopping(self) -> None:
        for number in list(self._batches):
            self._pop(number).request.future.set_exception(
                ActivityGoneError("the activity actor stopped")
            )
        if self.activity_id is not None:
            self.rt.emit(
                ActivityDestroyed(activity_id=self.activity_id, agreement_id=self.agreement_id)
            )
        self.tell_parent(ActivityClosed())
