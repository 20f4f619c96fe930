"""Activity API (``/activity-api/v1``): create, exec, results, state, usage, destroy, events."""

from __future__ import annotations

import datetime as dt
import json as jsonlib
from collections.abc import Callable, Sequence
from typing import Any

from golem_actors.yagna.errors import (
    YagnaConnectionError,
    YagnaError,
    YagnaResponseError,
    YagnaTimeoutError,
)
from golem_actors.yagna.models import (
    ActivityEvent,
    ActivityState,
    ActivityUsage,
    CommandResult,
    CreatedActivity,
    RuntimeEvent,
    format_timestamp,
)
from golem_actors.yagna.sse import iter_messages
from golem_actors.yagna.transport import Cancel, Transport, check_max_events

__all__ = ["ActivityApi"]

_API = "activity"


class ActivityApi:
    """Requestor control and state endpoints, plus the provider's event feed and state PUT."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._t.request(_API, method, path, **kwargs)

    # -- requestor ---------------------------------------------------------------------------

    def create_activity(self, agreement_id: str, *, timeout: float = 30.0) -> CreatedActivity:
        """Create an activity; blocks until the provider marks it Initialized (or 408)."""
        data = self._call(
            "POST", "/activity", json={"agreementId": agreement_id}, poll_timeout=timeout
        )
        if isinstance(data, str):  # older daemons answer a bare id
            return CreatedActivity(activity_id=data)
        return CreatedActivity.from_json(data)

    def exec(self, activity_id: str, script: Sequence[dict[str, Any]]) -> str:
        """Send an ExeScript batch; returns the batch id. yagna validates the script itself."""
        body = {"text": jsonlib.dumps(list(script))}
        result: str = self._call("POST", f"/activity/{activity_id}/exec", json=body)
        return result

    def batch_results(
        self,
        activity_id: str,
        batch_id: str,
        *,
        timeout: float | None = 20.0,
        command_index: int | None = None,
    ) -> list[CommandResult]:
        """Results so far; waits up to ``timeout`` for the batch (or command) to finish.

        Without ``command_index`` an expired wait returns the partial list; with one it raises
        ``YagnaTimeoutError`` (yagna's 408).
        """
        data = self._call(
            "GET",
            f"/activity/{activity_id}/exec/{batch_id}",
            params={"commandIndex": command_index},
            poll_timeout=timeout,
        )
        return [CommandResult.from_json(r) for r in data or []]

    def follow_batch(
        self,
        activity_id: str,
        batch_id: str,
        on_event: Callable[[RuntimeEvent], object],
        *,
        commands: int,
        timeout: float,
        cancel: Cancel | None = None,
    ) -> bool:
        """Hand the batch's stream events to ``on_event`` as they come, until the batch ends.

        True once the end was seen (the last of ``commands`` finished, or one failed); False if
        ``cancel`` was set first. yagna only streams what happens after the stream is opened
        (localnet's exe-unit replays from the start), so early events may be missing: the
        polled results stay the authority. Raises ``YagnaError`` when the stream cannot be
        opened, breaks, or stays silent for ``timeout`` seconds.
        """
        path = f"/activity/{activity_id}/exec/{batch_id}"
        try:
            with self._t.stream(_API, path, read_timeout=timeout, cancel=cancel) as lines:
                for message in iter_messages(lines):
                    if cancel is not None and cancel.is_set():
                        return False
                    if message.event not in ("runtime", "message"):
                        continue
                    try:
                        event = RuntimeEvent.from_json(jsonlib.loads(message.data))
                    except ValueError as exc:  # bad JSON or a ModelError
                        raise YagnaResponseError(
                            f"a malformed stream event: {exc}", method="GET", path=path
                        ) from None
                    on_event(event)
                    if event.kind == "finished" and (
                        event.return_code != 0 or event.index >= commands - 1
                    ):
                        return True
        except YagnaError:
            if cancel is not None and cancel.is_set():
                return False
            raise
        if cancel is not None and cancel.is_set():
            return False
        raise YagnaConnectionError(
            "the results stream ended before the batch did", method="GET", path=path
        )

    def get_state(self, activity_id: str) -> ActivityState:
        return ActivityState.from_json(self._call("GET", f"/activity/{activity_id}/state"))

    def get_usage(self, activity_id: str) -> ActivityUsage:
        return ActivityUsage.from_json(self._call("GET", f"/activity/{activity_id}/usage"))

    def get_agreement_id(self, activity_id: str) -> str:
        result: str = self._call("GET", f"/activity/{activity_id}/agreement")
        return result

    def destroy_activity(self, activity_id: str, *, timeout: float = 30.0) -> None:
        """Destroy; blocks until the provider marks it Terminated. Repeating it is harmless."""
        self._call("DELETE", f"/activity/{activity_id}", poll_timeout=timeout)

    def activities(self, agreement_id: str) -> list[str]:
        result: list[str] = self._call("GET", "/activity", params={"agreementId": agreement_id})
        return result

    # -- provider ----------------------------------------------------------------------------

    def provider_events(
        self, after: dt.datetime, *, timeout: float = 20.0, max_events: int = 100
    ) -> list[ActivityEvent]:
        """CreateActivity / DestroyActivity events newer than ``after`` (strictly).

        yagna answers an empty poll with 408; that is no events, not an error.
        """
        try:
            data = self._call(
                "GET",
                "/events",
                params={
                    "afterTimestamp": format_timestamp(after),
                    "maxEvents": check_max_events(max_events),
                },
                poll_timeout=timeout,
            )
        except YagnaTimeoutError as exc:
            if exc.status == 408:  # noqa: PLR2004
                return []
            raise
        return [ActivityEvent.from_json(e) for e in data or []]

    def set_state(
        self,
        activity_id: str,
        state: str,
        next_state: str | None = None,
        *,
        reason: str | None = None,
        error_message: str | None = None,
    ) -> None:
        """Provider side: set the activity's state (``Initialized``, ``Terminated``...)."""
        body: dict[str, Any] = {"state": [state, next_state]}
        if reason is not None:
            body["reason"] = reason
        if error_message is not None:
            body["errorMessage"] = error_message
        self._call("PUT", f"/activity/{activity_id}/state", json=body)
