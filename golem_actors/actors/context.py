"""The work context (``ctx``) a service's or task's code uses to drive its activity.

User code runs in its own worker thread, never in an actor: it may block on a command for as
long as the command runs. Every call here is bounded by a timeout, and every wait also wakes up
when the instance is told to stop, so user code never outlives its activity.

``run(..., on_output=callback)`` (and ``execute``) hand the callback each line the command prints
as it prints it, on this same thread (see ``golem_actors.output``); a context made with
``output=`` does so for every batch that names no callback (the runs' "stream output to the log"
option).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from concurrent.futures import wait as wait_for_future
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pykka

from golem_actors.actors.activity import ActivityGoneError, BatchTimeoutError, ExecBatch, Inspect
from golem_actors.costs import CostBook
from golem_actors.errors import GolemActorsError
from golem_actors.exescript import BatchResult, CommandOutcome, Script
from golem_actors.output import OnOutput, OutputStream, streamed_run, streams_output
from golem_actors.storage.http import Storage, StorageError
from golem_actors.yagna.models import ActivityState, ActivityUsage

__all__ = ["InstanceStoppingError", "WorkContext"]

DEFAULT_TIMEOUT = 300.0
_MARGIN = 5.0  # beyond a batch's own timeout, for the actor's answer to arrive

_T = TypeVar("_T")


class InstanceStoppingError(GolemActorsError, RuntimeError):
    """Raised in user code when its instance is stopping; let it propagate."""


class WorkContext:
    """What ``start``/``run``/``shutdown``/``health`` (and task workers) get as ``ctx``."""

    def __init__(
        self,
        activity: pykka.ActorRef[Any],
        *,
        storage: Storage | None,
        provider_id: str,
        provider_name: str,
        agreement_id: str,
        activity_id: str,
        stop: threading.Event | None = None,
        default_timeout: float = DEFAULT_TIMEOUT,
        output: OnOutput | None = None,
        costs: CostBook | None = None,
    ) -> None:
        self._activity = activity
        self._storage = storage
        self._stop = stop or threading.Event()
        self._output = output
        self._costs = costs
        self.provider_id = provider_id
        self.provider_name = provider_name
        self.agreement_id = agreement_id
        self.activity_id = activity_id
        self.default_timeout = default_timeout

    # -- flow control -----------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """True once the instance has been told to stop; long loops in ``run`` should check it."""
        return self._stop.is_set()

    def sleep(self, seconds: float) -> None:
        """Sleep, but raise ``InstanceStoppingError`` as soon as the instance is stopping."""
        if self._stop.wait(seconds):
            raise InstanceStoppingError("the instance is stopping")

    def wait_until_stopped(self) -> None:
        """Block until the instance is told to stop (the default ``run``)."""
        while not self._stop.wait(3600):
            pass
        raise InstanceStoppingError("the instance is stopping")

    # -- batches ----------------------------------------------------------------------------

    def execute(
        self, script: Script, *, timeout: float | None = None, on_output: OnOutput | None = None
    ) -> BatchResult:
        """Run a whole script; raises ``CommandFailedError`` for the first failing command,
        ``BatchTimeoutError``, ``ActivityGoneError`` or ``InstanceStoppingError``.

        ``on_output`` gets each line printed by the commands that capture with
        ``Capture(stream=True)`` as it comes, and every other line when the batch ends.
        """
        if self._stop.is_set():
            raise InstanceStoppingError("the instance is stopping")
        limit = self.default_timeout if timeout is None else timeout
        if limit <= 0:
            raise ValueError(f"timeout must be positive, got {limit}")
        on_output = on_output or self._output
        stream = OutputStream(on_output) if on_output is not None else None
        live = stream is not None and streams_output(script.commands)
        future: Future[list[Any]] = Future()
        try:
            self._activity.tell(
                ExecBatch(script.to_json(), limit, future, stream.push if live and stream else None)
            )
        except pykka.ActorDeadError:
            raise ActivityGoneError("the activity actor is gone") from None
        if stream is not None:
            future.add_done_callback(lambda _: stream.wake())
        try:
            results = self._wait(future, limit, stream)
        except BatchTimeoutError as exc:
            if stream is not None:
                stream.finish(exc.partial)
            raise
        except BaseException:
            if stream is not None:
                stream.finish(None)
            raise
        if stream is not None:
            stream.finish(results)
        return BatchResult.parse(script, results).raise_for_error()

    def _wait(
        self, future: Future[list[Any]], limit: float, stream: OutputStream | None
    ) -> list[Any]:
        """The batch's results, delivering its output meanwhile; bounded, and woken by stop."""
        deadline = time.monotonic() + limit + _MARGIN
        while not future.done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise BatchTimeoutError(f"no answer within {limit:g} s", [])
            if self._stop.is_set():
                raise InstanceStoppingError("the instance is stopping")
            if stream is not None:
                stream.pump(min(0.5, left))
            else:
                wait_for_future([future], timeout=min(0.5, left))
        return future.result(timeout=0)

    def run(
        self, *argv: str, timeout: float | None = None, on_output: OnOutput | None = None
    ) -> CommandOutcome:
        """Run one command (argv, no shell); its outcome, or ``CommandFailedError`` if it fails.

        ``on_output(line)`` is called with each ``OutputLine`` (stdout and stderr, in the order
        printed) as the command prints it, here on the calling thread, before ``run`` returns.
        """
        if not argv:
            raise ValueError("run needs a command: ctx.run('/bin/echo', 'hi')")
        streamed = on_output is not None or self._output is not None
        script = streamed_run(*argv) if streamed else Script().run(*argv)
        return self.execute(script, timeout=timeout, on_output=on_output)[0]

    def deploy_and_start(self, *, timeout: float | None = None, **deploy: Any) -> None:
        self.execute(Script().deploy(**deploy).start(), timeout=timeout)

    # -- the activity -----------------------------------------------------------------------

    def usage(self, *, timeout: float = 30.0) -> ActivityUsage:
        """The activity's usage counters as its provider last reported them (yagna's
        ``/usage``: ``current_usage`` in the order of the agreement's usage vector)."""
        usage: ActivityUsage = self._inspect("usage", timeout)
        return usage

    def state(self, *, timeout: float = 30.0) -> ActivityState:
        """The activity's state in yagna now (``state.current``: ``Ready``, ``Deployed``...)."""
        state: ActivityState = self._inspect("state", timeout)
        return state

    def cost(self) -> Decimal:
        """GLM accepted so far for this agreement: its invoice once accepted, else the debit
        notes accepted for its activities (0 before the first; a few seconds behind)."""
        return self._costs.agreement(self.agreement_id) if self._costs is not None else Decimal(0)

    def _inspect(self, what: str, timeout: float) -> Any:
        future: Future[Any] = Future()
        try:
            self._activity.tell(Inspect(what, future))
        except pykka.ActorDeadError:
            raise ActivityGoneError("the activity actor is gone") from None
        try:
            return future.result(timeout)
        except FutureTimeoutError:
            raise TimeoutError(f"reading the activity's {what} took over {timeout:g} s") from None

    # -- files ------------------------------------------------------------------------------

    def _need_storage(self) -> Storage:
        if self._storage is None:
            raise StorageError("no storage is configured for file transfers in this run")
        return self._storage

    def send_bytes(self, data: bytes, remote: str, *, timeout: float | None = None) -> None:
        """Write ``data`` to ``remote`` (a path under ``/golem/...``) on the provider."""
        storage = self._need_storage()
        url = storage.publish_bytes(data)
        try:
            self.execute(Script().transfer(url, f"container:{remote}"), timeout=timeout)
        finally:
            storage.release(url)

    def send_file(self, local: str | Path, remote: str, *, timeout: float | None = None) -> None:
        storage = self._need_storage()
        url = storage.publish_file(Path(local))
        try:
            self.execute(Script().transfer(url, f"container:{remote}"), timeout=timeout)
        finally:
            storage.release(url)

    def send_json(self, obj: Any, remote: str, *, timeout: float | None = None) -> None:
        self.send_bytes(json.dumps(obj).encode(), remote, timeout=timeout)

    def download_bytes(self, remote: str, *, timeout: float | None = None) -> bytes:
        return self._fetch(remote, timeout, Path.read_bytes)

    def download_file(
        self, remote: str, local: str | Path, *, timeout: float | None = None
    ) -> Path:
        """Fetch ``remote`` into ``local``, moved from the storage (never held in memory)."""
        target = Path(local)
        self._fetch(remote, timeout, lambda arrived: shutil.move(arrived, target))
        return target

    def _fetch(self, remote: str, timeout: float | None, take: Callable[[Path], _T]) -> _T:
        storage = self._need_storage()
        slot = storage.upload_slot()
        try:
            self.execute(Script().transfer(f"container:{remote}", slot.url), timeout=timeout)
            if not slot.path.exists():
                raise StorageError(f"the provider reported {remote} sent, but nothing arrived")
            return take(slot.path)
        finally:
            storage.release(slot.url)

    def download_json(self, remote: str, *, timeout: float | None = None) -> Any:
        return json.loads(self.download_bytes(remote, timeout=timeout))
