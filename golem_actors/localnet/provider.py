"""A localnet provider agent: one OS process per provider node, speaking yagna like ya-provider.

It publishes an offer, answers demands (counter or reject), approves agreements, serves activity
create/destroy, reports activity usage over the native bus every second (yagna marks an activity
Unresponsive 5 s after its last report and destroys it at 10 s), bills with debit notes at the
agreed interval and an invoice when the agreement ends, and terminates an agreement whose debit
notes go unaccepted past the accept timeout. The exe-unit that runs ExeScripts plugs in per
activity (``ExeUnitFactory``).

Each event stream has its own thread and its own client (long-polls hold a connection each);
blocking calls that must not stall a stream (approve, invoice) go to a small pool.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from golem_actors.localnet import gsb as gsblib
from golem_actors.localnet.billing import AgreementBook
from golem_actors.localnet.exeunit import exeunit_factory
from golem_actors.localnet.faults import FaultFile, Faults
from golem_actors.localnet.images import ImageStore
from golem_actors.localnet.offer import (
    ACCEPT_TIMEOUT,
    DEBIT_NOTE_INTERVAL,
    PAYMENT_TIMEOUT,
    ProviderSpec,
    decide,
)
from golem_actors.localnet.runtime import RuntimeSettings
from golem_actors.yagna import ApiConfig, YagnaClient, YagnaError, YagnaNotFoundError
from golem_actors.yagna.models import (
    Agreement,
    AgreementEvent,
    AgreementTerminatedEvent,
    ProposalEvent,
)

__all__ = ["ExeUnit", "ExeUnitFactory", "ProviderAgent", "ProviderConfig", "main"]

log = logging.getLogger(__name__)

POLL = 5.0  # long-poll seconds: short enough to notice a stop promptly
USAGE_INTERVAL = 1.0  # like the real exe-unit's DEFAULT_REPORT_INTERVAL
IMAGE_TIMEOUT = 60.0  # the longest a deploy may spend fetching its image


class ExeUnit(Protocol):
    """What the agent needs of an exe-unit (``exeunit.ExeUnit`` is the real one)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def cpu_seconds(self) -> float: ...
    @property
    def alive(self) -> bool:
        """False once the exe-unit has crashed: its usage reports stop, as a dead one's would."""


ExeUnitFactory = Callable[[str, Agreement, gsblib.GsbClient, Callable[[], Faults]], ExeUnit]


@dataclass(frozen=True)
class ProviderConfig:
    """Everything a provider process needs; written to a 0600 file (it holds the app key)."""

    spec: ProviderSpec
    api_url: str
    app_key: str
    node_id: str
    gsb_url: str
    state_dir: str
    command_timeout: float = 600.0  # the longest a single ExeScript command may run
    image_dir: str | None = None  # default: <data dir>/images, shared by the network's providers

    def to_json(self) -> dict[str, Any]:
        spec = asdict(self.spec)
        for key in ("price_duration_sec", "price_cpu_sec", "start_price"):
            spec[key] = str(spec[key])
        return {**asdict(self), "spec": spec}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProviderConfig:
        spec = dict(data["spec"])
        spec["capabilities"] = tuple(spec.get("capabilities", ()))
        for key in ("price_duration_sec", "price_cpu_sec", "start_price"):
            spec[key] = Decimal(spec[key])
        return cls(**{**data, "spec": ProviderSpec(**spec)})


class ProviderAgent:
    """The provider's loops; ``run()`` blocks until ``stop()``."""

    def __init__(
        self, config: ProviderConfig, exeunit_factory: ExeUnitFactory | None = None
    ) -> None:
        self.config = config
        self.spec = config.spec
        self.state_dir = Path(config.state_dir)
        self.faults = FaultFile(self.state_dir / "faults.json")
        self._exeunit_factory = exeunit_factory
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._books: dict[str, AgreementBook] = {}  # approved, not yet invoiced
        self._agreements: dict[str, Agreement] = {}
        self._exeunits: dict[str, ExeUnit] = {}
        self._activity_agreement: dict[str, str] = {}
        self._pool = ThreadPoolExecutor(8, thread_name_prefix=f"{self.spec.name}-work")
        self.offer_id: str | None = None
        # Result long-polls hold a handler thread each (threads are only made when needed).
        self.gsb = gsblib.GsbClient(
            config.gsb_url, name=f"localnet-{self.spec.name}", max_handlers=256
        )

    # -- lifecycle --------------------------------------------------------------------------

    def client(self) -> YagnaClient:
        return YagnaClient(ApiConfig(app_key=self.config.app_key, api_url=self.config.api_url))

    def run(self) -> None:
        self.gsb.connect()
        with self.client() as yagna:
            self._drop_stale_offers(yagna)
            self.offer_id = self._subscribe(yagna)
        self._write_status("ready")
        loops = [self._market_loop, self._agreement_loop, self._activity_loop]
        loops += [self._debit_note_loop, self._ticker]
        threads = [
            threading.Thread(
                target=self._guard,
                args=(loop,),
                name=f"{self.spec.name}-{loop.__name__}",
                daemon=True,  # a loop parked in a long-poll must not delay the exit
            )
            for loop in loops
        ]
        for thread in threads:
            thread.start()
        self._stop.wait()
        self._shutdown()

    def stop(self) -> None:
        self._stop.set()

    def _submit(self, fn: Callable[..., None], *args: Any) -> None:
        """Run blocking work off the event threads; dropped once the provider is stopping."""
        if not self._stop.is_set():
            with contextlib.suppress(RuntimeError):  # the pool shut down in between
                self._pool.submit(fn, *args)

    def _guard(self, loop: Callable[[], None]) -> None:
        """A loop that dies takes the provider down loudly, never silently half-working."""
        try:
            loop()
        except Exception:
            log.exception("%s: %s failed; stopping the provider", self.spec.name, loop.__name__)
            self._stop.set()

    def _shutdown(self) -> None:
        with self.client() as yagna:
            if self.offer_id:
                try:
                    yagna.market.unsubscribe_offer(self.offer_id)
                except YagnaError as exc:
                    log.warning("%s: unsubscribing the offer failed: %s", self.spec.name, exc)
            for agreement_id in list(self._books):
                self._end_agreement(yagna, agreement_id, "Provider shutting down", terminate=True)
        self._pool.shutdown(wait=True, cancel_futures=True)
        for exeunit in list(self._exeunits.values()):
            exeunit.stop()
        self.gsb.close()
        self._write_status("stopped")

    def _write_status(self, state: str) -> None:
        status = {
            "name": self.spec.name,
            "pid": os.getpid(),
            "node_id": self.config.node_id,
            "offer_id": self.offer_id,
            "state": state,
            "agreements": len(self._books),
            "activities": len(self._exeunits),
        }
        # Several loops write it: each through its own temporary file, so that one's rename
        # never finds the other's already gone (which stopped a provider at 1,000 agreements).
        tmp = self.state_dir / f"status.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(status))
        tmp.replace(self.state_dir / "status.json")

    def _hung(self) -> bool:
        """While hung, every loop idles without touching yagna, like a frozen process."""
        if self.faults.read().hang:
            self._stop.wait(0.2)
            return True
        return False

    def _crash_if(self, point: str) -> None:
        if self.faults.read().crash_at == point:
            log.warning("%s: crashing at %s (fault injected)", self.spec.name, point)
            os._exit(137)

    def _offer(self) -> str:
        if self.offer_id is None:
            raise RuntimeError("the offer is not published yet")
        return self.offer_id

    # -- market -----------------------------------------------------------------------------

    def _drop_stale_offers(self, yagna: YagnaClient) -> None:
        """An earlier process of this provider that was killed left its offer subscribed:
        demands would still match it and wait for a counter-proposal nobody sends. Like
        ya-provider, unsubscribe every offer of this identity before publishing ours."""
        try:
            for offer in yagna.market.offers():
                if offer.offer_id:
                    yagna.market.unsubscribe_offer(offer.offer_id)
        except YagnaError as exc:
            log.warning("%s: dropping stale offers failed: %s", self.spec.name, exc)

    def _subscribe(self, yagna: YagnaClient) -> str:
        props = self.spec.offer_properties(self.config.node_id)
        return yagna.market.subscribe_offer(props, self.spec.offer_constraints())

    def _market_loop(self) -> None:
        with self.client() as yagna:
            while not self._stop.is_set():
                if self._hung():
                    continue
                try:
                    events = yagna.market.offer_events(self._offer(), timeout=POLL)
                except YagnaNotFoundError:  # the subscription expired: publish again
                    self.offer_id = self._subscribe(yagna)
                    self._write_status("ready")
                    continue
                for event in events:
                    if isinstance(event, ProposalEvent):
                        self._on_proposal(yagna, event)
                    elif isinstance(event, AgreementEvent):
                        self._submit(self._approve, event.agreement)

    def _on_proposal(self, yagna: YagnaClient, event: ProposalEvent) -> None:
        proposal = event.proposal
        if proposal.state not in {"Draft", "Initial"}:
            return
        self._crash_if("proposal")
        offer_id = self._offer()
        if self.faults.read().reject_proposals:
            decision_reason = "this provider rejects all proposals (fault injected)"
            accept = False
            props: dict[str, Any] = {}
        else:
            decision = decide(
                self.spec,
                self.config.node_id,
                proposal.properties,
                proposal.constraints,
                now_ms=time.time() * 1000,
            )
            accept, decision_reason, props = (
                decision.accept,
                decision.reason,
                dict(decision.properties),
            )
        try:
            if accept:
                yagna.market.counter_proposal_offer(
                    offer_id, proposal.proposal_id, props, self.spec.offer_constraints()
                )
            else:
                log.info("%s: rejecting proposal: %s", self.spec.name, decision_reason)
                yagna.market.reject_proposal_offer(offer_id, proposal.proposal_id, decision_reason)
        except YagnaError as exc:
            log.info("%s: answering a proposal failed: %s", self.spec.name, exc)

    def _approve(self, agreement: Agreement) -> None:
        if self._stop.is_set():
            return
        self._crash_if("agreement")
        with self.client() as yagna:
            with self._lock:
                full = len(self._books) >= self.spec.max_agreements
            if full or self.faults.read().reject_proposals:
                yagna.market.reject_agreement(agreement.agreement_id, "no capacity")
                return
            demand = agreement.demand.properties
            book = AgreementBook(
                agreement.agreement_id,
                list(
                    agreement.offer.properties.get("golem.com.pricing.model.linear.coeffs")
                    or self.spec.coefficients
                ),
                float(
                    agreement.offer.properties.get(
                        DEBIT_NOTE_INTERVAL, self.spec.debit_note_interval
                    )
                ),
                float(agreement.offer.properties.get(ACCEPT_TIMEOUT, self.spec.accept_timeout)),
                overcharge=self.faults.read().overcharge,
                approved_at=time.monotonic(),
            )
            with self._lock:
                self._books[agreement.agreement_id] = book
                self._agreements[agreement.agreement_id] = agreement
            try:
                yagna.market.approve_agreement(agreement.agreement_id, timeout=10)
            except YagnaError as exc:
                log.info("%s: approving %s failed: %s", self.spec.name, agreement.agreement_id, exc)
                with self._lock:
                    self._books.pop(agreement.agreement_id, None)
                return
            book.approved_at = time.monotonic()
            # Payable notes only when mid-agreement payments were agreed (GAP-3: a payment
            # timeout on both sides), not merely because a debit-note interval was.
            book.payable = (
                PAYMENT_TIMEOUT in demand and PAYMENT_TIMEOUT in agreement.offer.properties
            )
            self._write_status("ready")
            log.info("%s: approved agreement %s", self.spec.name, agreement.agreement_id)

    def _agreement_loop(self) -> None:
        after = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        with self.client() as yagna:
            while not self._stop.is_set():
                if self._hung():
                    continue
                for event in yagna.market.agreement_events(after=after, timeout=POLL):
                    after = max(after, event.event_date)
                    if (
                        isinstance(event, AgreementTerminatedEvent)
                        and event.agreement_id in self._books
                    ):
                        self._submit(
                            self._finish, event.agreement_id, "terminated by the requestor"
                        )

    def _finish(self, agreement_id: str, why: str, terminate: bool = False) -> None:
        with self.client() as yagna:
            self._end_agreement(yagna, agreement_id, why, terminate=terminate)

    def _end_agreement(
        self, yagna: YagnaClient, agreement_id: str, why: str, *, terminate: bool
    ) -> None:
        """Stop the agreement's activities, terminate it if we end it, and send the invoice."""
        with self._lock:
            book = self._books.pop(agreement_id, None)
        if book is None:
            return  # already ended (both sides of one daemon see each termination event)
        now = time.monotonic()
        for meter in book.live_activities():
            self._stop_activity(meter.activity_id, book, now, set_state=True)
        book.end_all(now)
        if terminate:
            try:
                yagna.market.terminate_agreement(agreement_id, why)
            except YagnaError as exc:
                log.info("%s: terminating %s: %s", self.spec.name, agreement_id, exc)
        self._crash_if("invoice")
        amount = book.invoice_amount(now)
        due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.spec.payment_timeout)
        try:
            invoice = yagna.payment.issue_invoice(agreement_id, list(book.activities), amount, due)
            yagna.payment.send_invoice(invoice.invoice_id)
            log.info("%s: invoiced %s GLM for %s (%s)", self.spec.name, amount, agreement_id, why)
        except YagnaError as exc:
            log.warning("%s: invoicing %s failed: %s", self.spec.name, agreement_id, exc)
        self._write_status("ready")

    # -- activities -------------------------------------------------------------------------

    def _activity_loop(self) -> None:
        after = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        with self.client() as yagna:
            while not self._stop.is_set():
                if self._hung():
                    continue
                for event in yagna.activity.provider_events(after, timeout=POLL):
                    after = max(after, event.event_date)
                    agreement_id = event.agreement_id or ""
                    if event.kind == "CreateActivity":
                        self._create_activity(event.activity_id, agreement_id)
                    elif event.kind == "DestroyActivity":
                        book = self._books.get(self._activity_agreement.get(event.activity_id, ""))
                        self._stop_activity(
                            event.activity_id, book, time.monotonic(), set_state=True
                        )

    def _create_activity(self, activity_id: str, agreement_id: str) -> None:
        book = self._books.get(agreement_id)
        agreement = self._agreements.get(agreement_id)
        if book is None or agreement is None:
            self._set_state(
                activity_id, "Terminated", reason="no such agreement with this provider"
            )
            return
        self._crash_if("activity")
        book.start_activity(activity_id, time.monotonic())
        self._activity_agreement[activity_id] = agreement_id
        if self._exeunit_factory is not None:
            exeunit = self._exeunit_factory(activity_id, agreement, self.gsb, self.faults.read)
            exeunit.start()
            self._exeunits[activity_id] = exeunit
        self._set_state(activity_id, "Initialized")
        self._report_usage(activity_id, [0.0, 0.0])
        self._write_status("ready")

    def _stop_activity(
        self, activity_id: str, book: AgreementBook | None, now: float, *, set_state: bool
    ) -> None:
        exeunit = self._exeunits.pop(activity_id, None)
        if book is not None:
            meter = book.activities.get(activity_id)
            if meter is not None and exeunit is not None:
                meter.cpu_seconds = exeunit.cpu_seconds()
            book.end_activity(activity_id, now)
        if set_state:  # Terminated first: the requestor's DELETE returns on it
            self._set_state(activity_id, "Terminated")
        if exeunit is not None:
            exeunit.stop()

    def _set_state(self, activity_id: str, state: str, *, reason: str | None = None) -> None:
        body: dict[str, Any] = {"state": [state, None]}
        if reason:
            body["reason"] = reason
        try:
            self.gsb.call(
                "/local/activity/SetActivityState",
                {"activityId": activity_id, "state": body, "timeout": None, "credentials": None},
                timeout=10,
            )
        except gsblib.GsbError as exc:
            log.warning("%s: setting %s %s failed: %s", self.spec.name, activity_id, state, exc)

    def _report_usage(self, activity_id: str, usage: list[float]) -> None:
        body = {
            "activityId": activity_id,
            "usage": {"currentUsage": usage, "timestamp": int(time.time())},
            "timeout": None,
        }
        try:
            self.gsb.call("/local/activity/SetActivityUsage", body, timeout=5)
        except gsblib.GsbError as exc:
            log.warning("%s: usage report for %s failed: %s", self.spec.name, activity_id, exc)

    # -- billing ----------------------------------------------------------------------------

    def _debit_note_loop(self) -> None:
        """Mark debit notes accepted, so the ticker does not end their agreements."""
        after = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        with self.client() as yagna:
            while not self._stop.is_set():
                if self._hung():
                    continue
                for event in yagna.payment.debit_note_events(after=after, timeout=POLL):
                    after = max(after, event.event_date)
                    if event.event_type == "DebitNoteAcceptedEvent":
                        for book in list(self._books.values()):
                            book.debit_note_accepted(event.debit_note_id)

    def _ticker(self) -> None:
        """Once a second: usage reports, debit notes due, overdue notes, timed terminations."""
        with self.client() as yagna:
            next_tick = time.monotonic()
            while not self._stop.wait(max(0.0, next_tick - time.monotonic())):
                next_tick += USAGE_INTERVAL
                if self.faults.read().hang:
                    continue
                self._tick(yagna, time.monotonic())

    def _tick(self, yagna: YagnaClient, now: float) -> None:
        faults = self.faults.read()
        for agreement_id, book in list(self._books.items()):
            book.overcharge = faults.overcharge
            for meter in book.live_activities():
                exeunit = self._exeunits.get(meter.activity_id)
                if exeunit is not None:
                    if not exeunit.alive:
                        continue  # a crashed exe-unit reports nothing; yagna must notice
                    meter.cpu_seconds = exeunit.cpu_seconds()
                self._report_usage(meter.activity_id, meter.usage(now))
            for due in book.debit_notes_due(now):
                self._send_debit_note(yagna, book, due.activity_id, due.amount, due.usage)
            overdue = book.overdue(now)
            if overdue is not None:
                why = f"Requestor did not accept debit note {overdue} in time"
                self._submit(self._finish, agreement_id, why, True)  # noqa: FBT003
            elif (
                faults.terminate_after is not None
                and now - book.approved_at >= faults.terminate_after
            ):
                why = "Provider ends the agreement (fault injected)"
                self._submit(self._finish, agreement_id, why, True)  # noqa: FBT003

    def _send_debit_note(
        self,
        yagna: YagnaClient,
        book: AgreementBook,
        activity_id: str,
        amount: Decimal,
        usage: list[float],
    ) -> None:
        self._crash_if("debit_note")
        due = None
        if book.payable:
            due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.spec.payment_timeout)
        try:
            note = yagna.payment.issue_debit_note(
                book.agreement_id,
                activity_id,
                amount,
                usage_counter_vector=usage,
                payment_due_date=due,
            )
            book.debit_note_sent(note.debit_note_id, time.monotonic())
            yagna.payment.send_debit_note(note.debit_note_id)
        except YagnaError as exc:
            log.info("%s: debit note for %s failed: %s", self.spec.name, activity_id, exc)


def sandboxed_exeunits(config: ProviderConfig) -> ExeUnitFactory:
    """The real exe-units: bubblewrap sandboxes under ``<state_dir>/activities/<id>``, images
    from the network's shared store. Volumes left by an earlier run (killed) are removed."""
    state_dir = Path(config.state_dir)
    activities = state_dir / "activities"
    shutil.rmtree(activities, ignore_errors=True)
    images = ImageStore(Path(config.image_dir or state_dir.parent.parent / "images"))
    settings = RuntimeSettings(
        activities_dir=activities,
        resolve_image=lambda package: images.rootfs(package, timeout=IMAGE_TIMEOUT),
        command_timeout=config.command_timeout,
    )
    return exeunit_factory(settings)


def main(argv: list[str] | None = None) -> int:
    """``python -m golem_actors.localnet.provider CONFIG``: run until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="golem_actors.localnet.provider")
    parser.add_argument("config", type=Path, help="the provider's JSON config file")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = ProviderConfig.from_json(json.loads(args.config.read_text()))
    agent = ProviderAgent(config, sandboxed_exeunits(config))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: agent.stop())
    agent.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
