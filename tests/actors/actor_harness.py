"""A test kit for one actor alone: a scripted yagna, a manual clock, and inboxes that record.

Each actor test builds a ``Rig`` (``MockYagna`` + ``ManualScheduler`` + a ``Runtime`` over them,
every event recorded), starts the actor under test with ``Inbox`` actors standing in for its
parent and peers, tells it messages, and checks what reached yagna (``rig.calls``) and which
messages came out (``Inbox.box``). Timers fire only when the test moves the clock
(``rig.advance``), so backoffs, deadlines and retries take no wall time; every other wait is a
bounded condition wait.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pykka
from pykka.messages import ProxyGetAttr

from golem_actors.actors.runtime import Runtime
from golem_actors.actors.scheduler import ManualScheduler
from golem_actors.events import Event
from golem_actors.yagna.testing import MockRequest, MockResponse, MockYagna
from tests.waiting import wait_for

__all__ = [
    "AGREEMENTS",
    "WAIT_S",
    "Inbox",
    "LongPoll",
    "Mailbox",
    "Rig",
    "agreement_json",
    "agreement_terminated",
    "rig_running",
    "script_agreement",
    "settle",
    "timestamp",
    "until",
]

T = TypeVar("T")
E = TypeVar("E", bound=Event)

WAIT_S = 5.0  # the bound on every wait here: these tests answer in milliseconds or not at all
_POLL_CAP_S = 5.0  # a scripted long-poll holds an I/O worker this long at most
AGREEMENTS = "/market-api/v1/agreements"


def until(what: str, probe: Callable[[], T | None]) -> T:
    """``tests.waiting.wait_for`` with this kit's bound."""
    return wait_for(what, probe, timeout=WAIT_S)


def timestamp(at: dt.datetime | None = None) -> str:
    """A yagna timestamp (UTC, ``Z``)."""
    return (at or dt.datetime.now(dt.UTC)).isoformat().replace("+00:00", "Z")


class Mailbox:
    """Messages in arrival order, with bounded waits for the ones a test expects."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: list[Any] = []

    def put(self, message: Any) -> None:
        with self._cond:
            self._items.append(message)
            self._cond.notify_all()

    def of(self, kind: type[T]) -> list[T]:
        with self._cond:
            return [m for m in self._items if isinstance(m, kind)]

    def wait(
        self, kind: type[T], where: Callable[[T], bool] | None = None, *, count: int = 1
    ) -> list[T]:
        """The first ``count`` messages of ``kind`` (matching ``where``), once they arrived."""

        def matching() -> list[T]:
            return [m for m in self._items if isinstance(m, kind) and (where is None or where(m))]

        with self._cond:
            if not self._cond.wait_for(lambda: len(matching()) >= count, WAIT_S):
                seen = [type(m).__name__ for m in self._items]
                raise AssertionError(f"no {count} x {kind.__name__} within {WAIT_S} s; got {seen}")
            return matching()[:count]

    def one(self, kind: type[T], where: Callable[[T], bool] | None = None) -> T:
        return self.wait(kind, where)[0]


class Inbox(pykka.ThreadingActor):
    """Stands in for a parent or a peer: records every message.

    ``answer`` may reply to some messages (a market granting a proposal, say); it runs in this
    actor's thread after the message is recorded.
    """

    use_daemon_thread = True

    def __init__(self, box: Mailbox, answer: Callable[[Any], None] | None = None) -> None:
        super().__init__()
        self.box = box
        self._answer = answer

    @classmethod
    def open(
        cls, answer: Callable[[Any], None] | None = None
    ) -> tuple[pykka.ActorRef[Any], Mailbox]:
        box = Mailbox()
        return cls.start(box, answer), box

    def on_receive(self, message: Any) -> Any:
        self.box.put(message)
        if self._answer is not None:
            self._answer(message)
        return None


def settle(ref: pykka.ActorRef[Any]) -> None:
    """Wait until ``ref`` handled every message told to it before this call.

    pykka answers an attribute read itself, in the actor's turn, without the actor's own
    dispatch seeing it: a barrier that works on any actor and changes nothing.
    """
    ref.ask(ProxyGetAttr(attr_path=("actor_urn",)), timeout=WAIT_S)


class LongPoll:
    """A yagna long-poll (demand or agreement events) the test feeds: each ``push`` answers one
    poll; a poll with nothing to say waits (bounded), as yagna's does, instead of spinning."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._batches: list[Any] = []
        self._closed = False
        self._taken_by = 0  # the number of the poll that took the last batch
        self.polls = 0

    def push(self, *items: Any) -> None:
        with self._cond:
            self._batches.append(list(items))
            self._cond.notify_all()

    def fail(self, status: int, message: str) -> None:
        """The next poll answers ``status`` (e.g. 404: the subscription expired)."""
        with self._cond:
            self._batches.append(MockResponse(status, {"message": message}))
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def handled(self) -> bool:
        """Every batch was taken, and the poller came back for more: it handled them."""
        with self._cond:
            return not self._batches and self.polls > self._taken_by

    def __call__(self, _: MockRequest) -> MockResponse:
        with self._cond:
            self.polls += 1
            self._cond.wait_for(lambda: self._batches or self._closed, _POLL_CAP_S)
            if not self._batches:
                return MockResponse(200, [])
            batch = self._batches.pop(0)
            self._taken_by = self.polls
        return batch if isinstance(batch, MockResponse) else MockResponse(200, batch)


class Rig:
    """One runtime over a scripted yagna and a manual clock, with every event recorded."""

    def __init__(self) -> None:
        self.yagna = MockYagna()
        self.clock = ManualScheduler(start_at=1000.0)
        client = self.yagna.client()
        self.rt = Runtime(client.config, client=client, scheduler=self.clock)
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self._polls: list[LongPoll] = []
        self.rt.events.subscribe(self._record)

    def _record(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    # -- scripting yagna ----------------------------------------------------------------------

    def route(self, method: str, path: str, **answer: Any) -> None:
        """Answer ``method path`` (a regex); routes added later are tried first, so a test can
        override a default answer."""
        self.yagna.add(method, path, **answer)
        self.yagna.routes.insert(0, self.yagna.routes.pop())

    def long_poll(self, path: str) -> LongPoll:
        poll = LongPoll()
        self._polls.append(poll)
        self.route("GET", path, handler=poll)
        return poll

    # -- what happened ------------------------------------------------------------------------

    def calls(self, method: str, path: str) -> list[MockRequest]:
        """The calls made so far to ``method path`` (a regex, full match)."""
        pattern = re.compile(path)
        return [
            c for c in list(self.yagna.calls) if c.method == method and pattern.fullmatch(c.path)
        ]

    def wait_calls(self, method: str, path: str, count: int = 1) -> list[MockRequest]:
        return until(
            f"{count} x {method} {path}",
            lambda: calls if len(calls := self.calls(method, path)) >= count else None,
        )

    def events(self, kind: type[E]) -> list[E]:
        with self._lock:
            return [e for e in self._events if isinstance(e, kind)]

    def wait_event(self, kind: type[E], where: Callable[[E], bool] | None = None) -> E:
        return until(
            f"a {kind.__name__} event",
            lambda: next((e for e in self.events(kind) if where is None or where(e)), None),
        )

    # -- time ---------------------------------------------------------------------------------

    def wait_timer(self, ref: pykka.ActorRef[Any], key: str) -> None:
        """Wait until ``ref`` armed its timer ``key`` (so advancing the clock fires it)."""
        until(f"timer {key!r}", lambda: self.clock.is_active(ref, key))

    def advance(self, seconds: float) -> int:
        return self.clock.advance(seconds)

    def close(self) -> None:
        for poll in self._polls:
            poll.close()
        self.rt.close()
        pykka.ActorRegistry.stop_all(timeout=WAIT_S)


@contextmanager
def rig_running() -> Iterator[Rig]:
    rig = Rig()
    try:
        yield rig
    finally:
        rig.close()


# -- a scripted agreement ---------------------------------------------------------------------


def agreement_json(provider: str, state: str = "Approved") -> dict[str, Any]:
    """Agreement ``ag-1`` with ``provider``, as ``GET /agreements/ag-1`` answers it."""
    return {
        "agreementId": "ag-1",
        "demand": {"properties": {}, "constraints": "", "requestorId": "0xus"},
        "offer": {"properties": {}, "constraints": "", "providerId": provider},
        "validTo": timestamp(),
        "state": state,
    }


def script_agreement(rig: Rig, provider: str) -> None:
    """Every proposal makes agreement ``ag-1``, which the provider approves; it ends on request."""
    rig.route("POST", AGREEMENTS, status=201, json="ag-1")
    rig.route("POST", f"{AGREEMENTS}/ag-1/(confirm|wait|terminate|cancel)", status=204)
    rig.route("GET", f"{AGREEMENTS}/ag-1", json=agreement_json(provider))


def agreement_terminated(agreement_id: str, message: str) -> dict[str, Any]:
    """The provider's termination as ``GET /agreementEvents`` announces it."""
    return {
        "eventType": "AgreementTerminatedEvent",
        "eventDate": timestamp(),
        "agreementId": agreement_id,
        "terminator": "Provider",
        "reason": {"message": message},
    }
