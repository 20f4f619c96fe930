"""The provider's activities: create and destroy them, run an exe-unit for each, keep yagna told.

yagna tells a provider of activities on ``/activity-api/v1/events`` (CreateActivity when a
requestor asks for one, DestroyActivity when it, or yagna itself, ends one); the provider answers
with the activity's state, and keeps it alive with a usage report at least every 5 s — both only
possible over the native bus (``/local/activity/SetActivityState``, ``SetActivityUsage``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from golem_actors.localnet import gsb as gsblib
from golem_actors.localnet.provider.books import AgreementBook
from golem_actors.localnet.provider.shared import POLL, Context, ExeUnitFactory, Ledger
from golem_actors.yagna import YagnaClient
from golem_actors.yagna.models import ActivityEvent

__all__ = ["Activities"]

log = logging.getLogger(__name__)


class Activities:
    """Activity events in, exe-units started and stopped, state and usage out on the bus."""

    def __init__(
        self,
        ctx: Context,
        ledger: Ledger,
        gsb: gsblib.GsbClient,
        exeunit_factory: ExeUnitFactory | None,
    ) -> None:
        self._ctx = ctx
        self._ledger = ledger
        self._gsb = gsb
        self._exeunit_factory = exeunit_factory

    def run(self) -> None:
        """The loop: follow the activity events until the provider stops."""
        self._ctx.follow(self._events, self._on_event)

    @staticmethod
    def _events(yagna: YagnaClient, after: dt.datetime) -> list[ActivityEvent]:
        return yagna.activity.provider_events(after, timeout=POLL)

    def _on_event(self, event: ActivityEvent) -> None:
        if event.kind == "CreateActivity":
            self.create(event.activity_id, event.agreement_id or "")
        elif event.kind == "DestroyActivity":
            book = self._ledger.book(self._ledger.agreement_of(event.activity_id))
            self.stop(event.activity_id, book, time.monotonic(), set_state=True)

    def create(self, activity_id: str, agreement_id: str) -> None:
        book = self._ledger.book(agreement_id)
        agreement = self._ledger.agreement(agreement_id)
        if book is None or agreement is None:
            self._set_state(
                activity_id, "Terminated", reason="no such agreement with this provider"
            )
            return
        self._ctx.crash_if("activity")
        book.start_activity(activity_id, time.monotonic())
        self._ledger.link_activity(activity_id, agreement_id)
        if self._exeunit_factory is not None:
            exeunit = self._exeunit_factory(
                activity_id, agreement, self._gsb, self._ctx.faults.read
            )
            exeunit.start()
            self._ledger.add_exeunit(activity_id, exeunit)
        self._set_state(activity_id, "Initialized")
        self._report(activity_id, [0.0, 0.0])
        self._ctx.status.write()

    def stop(
        self, activity_id: str, book: AgreementBook | None, now: float, *, set_state: bool
    ) -> None:
        """End an activity: its meter stops (with the exe-unit's last cpu figure), then yagna
        hears Terminated, then the exe-unit goes."""
        exeunit = self._ledger.pop_exeunit(activity_id)
        if book is not None:
            meter = book.activities.get(activity_id)
            if meter is not None and exeunit is not None:
                meter.cpu_seconds = exeunit.cpu_seconds()
            book.end_activity(activity_id, now)
        if set_state:  # Terminated first: the requestor's DELETE returns on it
            self._set_state(activity_id, "Terminated")
        if exeunit is not None:
            exeunit.stop()

    def stop_agreement(self, book: AgreementBook, now: float) -> None:
        """End every activity still running under an agreement that is ending."""
        for meter in book.live_activities():
            self.stop(meter.activity_id, book, now, set_state=True)

    def stop_all(self) -> None:
        """Stop every exe-unit (the provider is shutting down; its agreements are ended)."""
        for exeunit in self._ledger.exeunits():
            exeunit.stop()

    def report_usage(self, now: float) -> None:
        """Each live activity's usage to yagna, which marks an activity Unresponsive 5 s after
        its last report and destroys it at 10 s; the meters take the exe-units' cpu seconds."""
        for _, book in self._ledger.books():
            for meter in book.live_activities():
                exeunit = self._ledger.exeunit(meter.activity_id)
                if exeunit is not None:
                    if not exeunit.alive:
                        continue  # a crashed exe-unit reports nothing; yagna must notice
                    meter.cpu_seconds = exeunit.cpu_seconds()
                self._report(meter.activity_id, meter.usage(now))

    def _set_state(self, activity_id: str, state: str, *, reason: str | None = None) -> None:
        body: dict[str, Any] = {"state": [state, None]}
        if reason:
            body["reason"] = reason
        try:
            self._gsb.call(
                "/local/activity/SetActivityState",
                {"activityId": activity_id, "state": body, "timeout": None, "credentials": None},
                timeout=10,
            )
        except gsblib.GsbError as exc:
            log.warning("%s: setting %s %s failed: %s", self._ctx.name, activity_id, state, exc)

    def _report(self, activity_id: str, usage: list[float]) -> None:
        body = {
            "activityId": activity_id,
            "usage": {"currentUsage": usage, "timestamp": int(time.time())},
            "timeout": None,
        }
        try:
            self._gsb.call("/local/activity/SetActivityUsage", body, timeout=5)
        except gsblib.GsbError as exc:
            log.warning("%s: usage report for %s failed: %s", self._ctx.name, activity_id, exc)
