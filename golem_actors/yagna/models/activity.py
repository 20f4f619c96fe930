"""Activity models: state, usage, ExeScript results and provider-side activity events."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from golem_actors.yagna.models._base import Model, ModelError

__all__ = [
    "ActivityEvent",
    "ActivityState",
    "ActivityUsage",
    "CommandResult",
    "CreatedActivity",
]


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
