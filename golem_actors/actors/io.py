"""Blocking yagna calls, off the actors' threads.

An actor never blocks on I/O (a busy actor must still answer ``status`` and ``stop`` at once, see
``shared/notes/pykka-scale.md``): it hands the call here with a tag, and the outcome comes back
to it as an ``IoResult`` message. Long-polls hold a worker for their whole wait, so the pool is
sized for the number of concurrent polls, and its threads are created lazily.

The workers are daemon threads, unlike ``ThreadPoolExecutor``'s, which the interpreter joins at
exit: a process whose session had stopped still waited for every long-poll in flight to time out
(15-20 s after a clean ``Golem.stop()``). By then the session has settled what it decided; a call
cut short at exit is no worse than a crash, which the journal covers.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pykka

__all__ = ["Io", "IoResult"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class IoResult:
    """The outcome of one call: ``value`` or ``error``; ``tag`` says which call it answers."""

    tag: Any
    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value

    def tag_as(self, kind: type[T]) -> T:
        """What a ``(name, payload)`` tag carries, checked to be the ``kind`` its caller sent."""
        payload = self.tag[1]
        if not isinstance(payload, kind):
            raise TypeError(f"{self.tag!r} carries a {type(payload).__name__}, not {kind.__name__}")
        return payload

    def value_as(self, kind: type[T]) -> T:
        """The value of a call that succeeded, checked to be the ``kind`` its caller returns.

        One message type carries every call's outcome, so ``value`` is untyped; a handler that
        names the type it expects reads a typed value instead of ``Any``.
        """
        value = self.unwrap()
        if not isinstance(value, kind):
            raise TypeError(f"{self.tag!r} answered a {type(value).__name__}, not {kind.__name__}")
        return value


class _DaemonPool:
    """Daemon workers fed from one queue, grown one at a time when none is idle, up to
    ``max_workers`` (``ThreadPoolExecutor``'s policy, without its join at exit)."""

    def __init__(self, max_workers: int, name: str) -> None:
        self._work: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._max = max_workers
        self._name = name
        self._threads = 0
        self._shut = False

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        with self._lock:
            if self._shut:
                raise RuntimeError("the pool is shut down")
            self._work.put((fn, args))
            if self._idle.acquire(blocking=False):
                return  # an idle worker takes it
            if self._threads < self._max:
                self._threads += 1
                name = f"{self._name}_{self._threads}"
                threading.Thread(target=self._worker, name=name, daemon=True).start()

    def shutdown(self) -> None:
        """Drop the calls not started yet; idle workers end, busy ones after their call."""
        with self._lock:
            self._shut = True
            while True:
                try:
                    self._work.get_nowait()
                except queue.Empty:
                    break
            for _ in range(self._threads):
                self._work.put(None)

    def _worker(self) -> None:
        while (item := self._work.get()) is not None:
            fn, args = item
            try:
                fn(*args)  # Io's wrappers catch every Exception; this is for the rest
            except BaseException:
                log.exception("an io worker's call raised")
            self._idle.release()


class Io:
    """A lazily grown thread pool whose results are told back to the asking actor."""

    def __init__(self, max_workers: int = 2048, *, name: str = "golem-io") -> None:
        self._pool = _DaemonPool(max_workers, name)
        self._ids = itertools.count()
        self._closed = threading.Event()
        self.dead_letters = 0

    def call(
        self,
        reply_to: pykka.ActorRef[Any],
        tag: Any,
        fn: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> None:
        """Run ``fn(*args, **kwargs)`` on a worker; tell ``IoResult(tag, ...)`` to ``reply_to``."""
        if self._closed.is_set():
            return
        try:
            self._pool.submit(self._run, reply_to, tag, fn, args, kwargs)
        except RuntimeError:  # shut down between the check and the submit
            return

    def run(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` on a worker with no reply (user code, fire-and-forget cleanups)."""
        if self._closed.is_set():
            return
        try:
            self._pool.submit(self._run_quietly, fn, args)
        except RuntimeError:
            return

    def next_id(self) -> int:
        return next(self._ids)

    def close(self) -> None:
        """Stop taking work; running calls finish on their own (each has its own timeout)."""
        self._closed.set()
        self._pool.shutdown()

    def _run(
        self,
        reply_to: pykka.ActorRef[Any],
        tag: Any,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        try:
            result = IoResult(tag, value=fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the actor
            result = IoResult(tag, error=exc)
        try:
            reply_to.tell(result)
        except pykka.ActorDeadError:
            self.dead_letters += 1

    @staticmethod
    def _run_quietly(fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("background call %s failed", getattr(fn, "__qualname__", fn))
