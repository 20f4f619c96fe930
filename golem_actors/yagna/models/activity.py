"""Activity models: state, usage, ExeScript results and provider-side activity events."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from golem_actors.yagna.models._base import Model, ModelError, parse_timestamp

__all__ = [
    "ActivityEvent",
    "ActivityState",
    "ActivityUsage",
    "CommandResult",
    "CreatedActivity",
    "RuntimeEvent",
]

#: The kinds of a batch's stream events (yagna's ``RuntimeEventKind``).
RUNTIME_EVENT_KINDS = ("started", "stdout", "stderr", "finished")


@dataclass(frozen=True)
class CreatedActivity(Model):
    activity_id: str
    credentials: dict[str, Any] | None = None


@dataclass(frozen=True)
class ActivityState(Model):
    """``state`` is the pair ``(current, next)``; ``next`` is set while a transition runs."""

    state: tuple[str, str | None]
    reason: str | None = None
    error_message: str | None = None

    @property
    def current(self) -> str:
        return self.state[0]

    @property
    def next(self) -> str | None:
        return self.state[1]

    @property
    def alive(self) -> bool:
        return self.current not in ("Terminated", "Unresponsive")


@dataclass(frozen=True)
class ActivityUsage(Model):
    """``timestamp`` is yagna's own time of the last usage report, in Unix seconds."""

    timestamp: int
    current_usage: tuple[float, ...] | None = None


@dataclass(frozen=True)
class CommandResult(Model):
    """One command's result in a batch, as ``GET /activity/{id}/exec/{batch}`` returns it."""

    index: int
    event_date: dt.datetime
    result: str  # "Ok" or "Error"
    is_batch_finished: bool
    stdout: str | tuple[int, ...] | None = None  # a list of bytes with ``bin`` capture
    stderr: str | tuple[int, ...] | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.result == "Ok"


@dataclass(frozen=True)
class ActivityEvent(Model):
    """A provider-side event: the requestor asked to create or destroy an activity."""

    activity_id: str
    event_date: dt.datetime
    event_type: dict[str, Any]
    agreement_id: str | None = None

    @property
    def kind(self) -> str:
        """``CreateActivity``, ``DestroyActivity`` or whatever else yagna sends."""
        if isinstance(self.event_type, dict) and len(self.event_type) == 1:
            return next(iter(self.event_type))
        raise ModelError(f"ActivityEvent.eventType: unexpected shape {self.event_type!r}")


@dataclass(frozen=True)
class RuntimeEvent:
    """One event of a batch's results stream (``Accept: text/event-stream``).

    A command ``started``, printed a chunk of ``stdout``/``stderr`` (``output``: text, or bytes
    with ``bin`` capture; a chunk, not a line), or ``finished`` with a ``return_code`` (0: ok)
    and a ``message``. The wire names are snake_case here, unlike the rest of the API.
    """

    batch_id: str
    index: int
    timestamp: dt.datetime
    kind: str
    output: str | bytes | None = None
    return_code: int | None = None
    message: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> RuntimeEvent:
        """Parse one event; ``ModelError`` names what is wrong."""
        if not isinstance(data, dict):
            raise ModelError(f"RuntimeEvent: expected a JSON object, got {type(data).__name__}")
        index, kind_body = data.get("index"), data.get("kind")
        if type(index) is not int or index < 0:
            raise ModelError(f"RuntimeEvent.index: expected an index >= 0, got {index!r}")
        if not isinstance(kind_body, dict) or len(kind_body) != 1:
            raise ModelError(f"RuntimeEvent.kind: expected one kind, got {kind_body!r}")
        kind, body = next(iter(kind_body.items()))
        if kind not in RUNTIME_EVENT_KINDS:
            raise ModelError(f"RuntimeEvent.kind: unknown kind {kind!r}")
        try:
            stamp = parse_timestamp(str(data.get("timestamp")))
        except ValueError:
            raise ModelError(f"RuntimeEvent.timestamp: {data.get('timestamp')!r}") from None
        event = cls(str(data.get("batch_id", "")), index, stamp, kind)
        if kind in ("stdout", "stderr"):
            return replace(event, output=_chunk(body, f"RuntimeEvent.kind.{kind}"))
        if kind == "finished":
            if not isinstance(body, dict) or type(body.get("return_code")) is not int:
                raise ModelError(f"RuntimeEvent.kind.finished: no return_code in {body!r}")
            message = body.get("message")
            return replace(
                event,
                return_code=body["return_code"],
                message=message if isinstance(message, str) else None,
            )
        return event


def _chunk(body: Any, where: str) -> str | bytes:
    """A chunk of output: a string, or (``bin`` capture) serde's list of byte values."""
    if isinstance(body, str):
        return body
    if isinstance(body, list) and all(type(b) is int and 0 <= b <= 255 for b in body):  # noqa: PLR2004
        return bytes(body)
    raise ModelError(f"{where}: expected text or a list of bytes, got {body!r:.80}")
