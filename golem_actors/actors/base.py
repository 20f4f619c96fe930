"""The base of every runtime actor: typed message dispatch, timers, I/O, and death reports.

pykka reports only some deaths through ``on_failure`` (never a failing ``on_start``), and cannot
restart an actor. So every actor here tells its parent ``ChildDied`` whatever the phase, and the
parent (a supervisor or an owner) decides what happens next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import pykka

from golem_actors.actors.io import IoResult
from golem_actors.actors.runtime import Runtime
from golem_actors.actors.scheduler import Tick

__all__ = ["ChildDied", "RuntimeActor", "handles"]

log = logging.getLogger(__name__)

_Handler = TypeVar("_Handler", bound=Callable[..., object])


@dataclass(frozen=True)
class ChildDied:
    """Told to the parent when an actor dies of an exception, in any phase."""

    ref: pykka.ActorRef[Any]
    role: str
    phase: str  # "start", "message" or "stop"
    error: BaseException


def handles(*types: type) -> Callable[[_Handler], _Handler]:
    """Mark a method as the handler of the given message types (its signature is kept)."""

    def mark(method: _Handler) -> _Handler:
        method._handles = types  # type: ignore[attr-defined]  # noqa: SLF001
        return method

    return mark


class RuntimeActor(pykka.ThreadingActor):
    """Dispatches messages by type to ``@handles`` methods; owns its timers and I/O calls."""

    role: ClassVar[str] = "actor"
    _dispatch: ClassVar[dict[type, Callable[..., Any]]] = {}
    #: A safety net only: every run stops its actors (``Runtime.stop_actors``); a bug that leaks
    #: one must still never keep the interpreter from exiting.
    use_daemon_thread = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dispatch: dict[type, Callable[..., Any]] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                for message_type in getattr(value, "_handles", ()):
                    dispatch[message_type] = value
        cls._dispatch = dispatch

    def __init__(self, rt: Runtime, parent: pykka.ActorRef[Any] | None = None) -> None:
        super().__init__()
        self.rt = rt
        self.parent = parent

    # -- hooks for subclasses ---------------------------------------------------------------

    def started(self) -> None:
        """Runs in the actor's thread before its first message."""

    def stopping(self) -> None:
        """Runs in the actor's thread when it stops (after its last message)."""

    # -- pykka hooks ------------------------------------------------------------------------

    def on_start(self) -> None:
        self.rt.track(self.actor_ref)
        self.rt.actor_started(self.role)
        try:
            self.started()
        except Exception as exc:
            self._report("start", exc)
            self.rt.actor_stopped(self.role)
            self.rt.untrack(self.actor_ref)
            raise

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Tick):
            if not self.rt.scheduler.is_current(self.actor_ref, message):
                return None  # a cancelled or superseded timer
            message = message.payload
        handler = self._dispatch.get(type(message))
        if handler is None:
            self.rt.unhandled(self.role, message)
            return None
        with self.rt.timed_message(self.role):
            return handler(self, message)

    def on_failure(
        self,
        exception_type: type[BaseException] | None,  # noqa: ARG002 - pykka's signature
        exception_value: BaseException | None,
        traceback: TracebackType | None,  # noqa: ARG002
    ) -> None:
        self.rt.scheduler.cancel_all(self.actor_ref)
        self.rt.actor_stopped(self.role)
        self.rt.untrack(self.actor_ref)
        if exception_value is not None:
            self._report("message", exception_value)

    def on_stop(self) -> None:
        self.rt.scheduler.cancel_all(self.actor_ref)
        self.rt.actor_stopped(self.role)
        self.rt.untrack(self.actor_ref)
        try:
            self.stopping()
        except Exception as exc:
            self._report("stop", exc)
            raise

    # -- helpers ----------------------------------------------------------------------------

    def after(
        self, delay_s: float, message: Any, *, key: str, period_s: float | None = None
    ) -> None:
        """Tell ``message`` to self after ``delay_s`` (and every ``period_s``), keyed."""
        self.rt.scheduler.schedule(self.actor_ref, message, delay_s, key=key, period_s=period_s)

    def cancel_timer(self, key: str) -> None:
        self.rt.scheduler.cancel(self.actor_ref, key)

    def io(self, tag: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run a blocking call elsewhere; its ``IoResult(tag, ...)`` comes back as a message."""
        self.rt.io.call(self.actor_ref, tag, fn, *args, **kwargs)

    def tell_parent(self, message: Any) -> None:
        if self.parent is not None:
            self.tell_if_alive(self.parent, message)

    def tell_if_alive(self, ref: pykka.ActorRef[Any], message: Any) -> bool:
        """Tell ``ref`` unless it already stopped (its own exit report is then on its way)."""
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            log.debug("%s: %s gone, dropped %s", self.role, ref, type(message).__name__)
            return False
        return True

    def _report(self, phase: str, error: BaseException) -> None:
        self.rt.actor_failed(self.role, phase)
        log.error("%s actor died in %s: %r", self.role, phase, error, exc_info=error)
        self.tell_parent(ChildDied(self.actor_ref, self.role, phase, error))

    @handles(IoResult)
    def _on_io(self, result: IoResult) -> None:
        handler = getattr(
            self, f"io_{result.tag[0] if isinstance(result.tag, tuple) else result.tag}", None
        )
        if handler is None:
            self.rt.unhandled(self.role, result)
            return
        handler(result)
