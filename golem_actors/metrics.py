"""Every Prometheus metric of a run: the counted ones defined here, the read ones in one collector.

Three feeds, so that nothing but one histogram observation sits on an actor's hot path:

- the run's events (one subscriber, ``on_event``) drive the market, activity, payment and
  supervision counters and histograms;
- yagna calls (a ``Transport`` observer, ``on_call``) drive the API counters;
- a scrape-time collector (``metrics_scrape``) reads what is cheaper to read than to count:
  instances by state, live actors, mailbox depth, the runtime's plain-int actor counters, the
  budget.

Names follow Prometheus practice: one namespace (``golem`` by default), base units, ``_total``
counters, ``_seconds`` histograms. Labels are closed sets (service class, state, actor role,
reason, API, outcome); provider, agreement and activity ids never become labels: they are in the
logs, the events and ``/status``. Each ``Metrics`` has its own ``CollectorRegistry``, so tests and
several sessions in one process never collide.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform
import re
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.process_collector import ProcessCollector

from golem_actors import events as ev
from golem_actors.metrics_scrape import ScrapeCollector
from golem_actors.policy.lifecycle import ServiceState
from golem_actors.policy.supervision import ExitReason
from golem_actors.yagna.transport import CallRecord

if TYPE_CHECKING:
    from golem_actors.actors.runtime import Runtime
    from golem_actors.golem import Golem

__all__ = ["API_NAMES", "DEFAULT_NAMESPACE", "Metrics"]

DEFAULT_NAMESPACE = "golem"
#: The ``api`` label's values; yagna's root endpoints (``/me``, ``/version``) count as identity.
API_NAMES = ("market", "activity", "payment", "net", "identity", "gsb")
_API_ALIASES = {"root": "identity"}
_API_OUTCOMES = ("ok", "error", "failed")
_BATCH_OUTCOMES = ("ok", "error", "timeout", "gone")
_TASK_FAILURES = ("task", "provider", "timeout", "cancelled")
_NAMESPACE_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

# Buckets in seconds, each sized to what it measures.
_FAST = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0)
_API = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_NEGOTIATION = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_BATCH = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_BACKOFF = (0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
_START = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def _namespace(value: str) -> str:
    name = value.rstrip("_")
    if not _NAMESPACE_RE.fullmatch(name):
        raise ValueError(
            f"metrics namespace must be letters, digits and underscores, not starting with a "
            f"digit (e.g. 'golem'), got {value!r}"
        )
    return name


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    """The metrics of one session; ``bind(golem)`` feeds them, ``unbind()`` stops the feeds."""

    def __init__(
        self, namespace: str = DEFAULT_NAMESPACE, *, registry: CollectorRegistry | None = None
    ) -> None:
        ns = self.namespace = _namespace(namespace)
        reg = self.registry = registry or CollectorRegistry(auto_describe=True)

        def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
            return Counter(name, doc, labels, namespace=ns, registry=reg)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, namespace=ns, registry=reg)

        def histogram(
            name: str, doc: str, buckets: Sequence[float], labels: Sequence[str] = ()
        ) -> Histogram:
            return Histogram(name, doc, labels, namespace=ns, registry=reg, buckets=buckets)

        build = Info(
            "build", "Versions of golem-actors and what it runs on", namespace=ns, registry=reg
        )
        build.info(
            {
                "version": _version("golem-actors"),
                "pykka_version": _version("pykka"),
                "python_version": platform.python_version(),
            }
        )
        ProcessCollector(registry=reg)  # process_* (CPU, memory, fds) of this requestor

        # -- actors (the rest is read at scrape time) --------------------------------------------
        self.message_seconds = histogram(
            "actor_message_processing_seconds",
            "Time an actor spent on one message",
            _FAST,
            ["actor"],
        )
        # -- supervision --------------------------------------------------------------------------
        self.restarts = counter(
            "supervisor_restarts",
            "Instance restarts by service and exit reason",
            ["service", "reason"],
        )
        self.escalations = counter(
            "supervisor_escalations",
            "Clusters stopped because restarts exceeded their intensity",
            ["service"],
        )
        self.backoff = histogram(
            "supervisor_backoff_seconds", "Delay applied before a restart", _BACKOFF, ["service"]
        )
        self.instance_start = histogram(
            "service_instance_start_seconds",
            "From an instance looking for a provider to running",
            _START,
            ["service"],
        )
        # -- market -------------------------------------------------------------------------------
        self.demands = counter("market_demands_published", "Demand subscriptions published")
        self.offers = counter("market_offers_received", "Initial offers received from providers")
        self.proposals = counter(
            "market_proposals",
            "Proposals handled, by result: countered by us, or rejected (by either side)",
            ["result"],
        )
        self.agreements_created = counter("agreements_created", "Agreements created")
        self.agreements = counter(
            "agreement_negotiations",
            "Agreement negotiations by result: approved, or rejected (not created, confirmed or "
            "approved)",
            ["result"],
        )
        self.agreements_terminated = counter(
            "agreements_terminated", "Agreements terminated, by who ended them", ["by"]
        )
        self.agreements_active = gauge("agreements_active", "Approved, not terminated agreements")
        self.negotiation = histogram(
            "agreement_negotiation_seconds",
            "From creating an agreement to reading it approved",
            _NEGOTIATION,
        )
        # -- activities ---------------------------------------------------------------------------
        self.activities_created = counter("activities_created", "Activities created")
        self.activities_active = gauge("activities_active", "Activities created, not destroyed")
        self.batches_started = counter("activity_exec_batches_started", "ExeScript batches sent")
        self.batches = counter(
            "activity_exec_batches", "Finished ExeScript batches, by outcome", ["outcome"]
        )
        self.batch_seconds = histogram(
            "activity_exec_batch_seconds", "ExeScript batch duration, sent to finished", _BATCH
        )
        # -- tasks ------------------------------------------------------------------------------
        self.task_attempts = counter(
            "task_attempts_started",
            "Task attempts given to a provider (retries and speculative copies included)",
        )
        self.task_attempt_failures = counter(
            "task_attempts_failed",
            "Failed task attempts, by kind (task, provider, timeout, cancelled)",
            ["kind"],
        )
        self.tasks = counter("tasks_finished", "Tasks finished, by result (ok, failed)", ["result"])
        self.task_seconds = histogram("task_seconds", "Task duration, to its result", _BATCH)
        # -- payments -----------------------------------------------------------------------------
        self.debit_notes = {
            kind: counter(f"debit_notes_{kind}", f"Debit notes {kind}")
            for kind in ("received", "accepted", "refused")
        }
        self.invoices = {
            kind: counter(f"invoices_{kind}", f"Invoices {kind}")
            for kind in ("received", "accepted", "refused")
        }
        self.invoices_accepted_glm = counter(
            "invoices_accepted_glm", "GLM accepted in invoices (the unit is the token)"
        )
        self.invoices_outstanding = gauge(
            "invoices_outstanding", "Terminated agreements whose invoice is not accepted yet"
        )
        # -- yagna API ----------------------------------------------------------------------------
        self.api_requests = counter(
            "yagna_api_requests",
            "yagna REST calls by API and outcome (ok; error: an error status; failed: no answer)",
            ["api", "outcome"],
        )
        self.api_seconds = histogram(
            "yagna_api_request_duration_seconds",
            "yagna REST call duration, long-polls included",
            _API,
            ["api"],
        )
        self._zeros()

        self._lock = threading.Lock()
        self._services: set[str] = set()
        self._spawned: dict[tuple[str, str], float] = {}
        self._approved: set[str] = set()
        self._activities: set[str] = set()
        self._unpaid: set[str] = set()  # terminated agreements, invoice not accepted yet
        self._paid: set[str] = set()
        self._role_hist: dict[str, Any] = {}
        self._api_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._golem: Golem | None = None
        self._rt: Runtime | None = None
        self._handlers = self._event_handlers()
        reg.register(ScrapeCollector(self))

    def _zeros(self) -> None:
        """Export the known series at 0 from the start ("avoid missing metrics")."""
        for result in ("countered", "rejected"):
            self.proposals.labels(result)
        for result in ("approved", "rejected"):
            self.agreements.labels(result)
        for by in ("requestor", "provider"):
            self.agreements_terminated.labels(by)
        for outcome in _BATCH_OUTCOMES:
            self.batches.labels(outcome)
        for result in ("ok", "failed"):
            self.tasks.labels(result)
        for kind in _TASK_FAILURES:
            self.task_attempt_failures.labels(kind)
        for api in API_NAMES:
            self.api_seconds.labels(api)
            for outcome in _API_OUTCOMES:
                self.api_requests.labels(api, outcome)

    def _event_handlers(self) -> dict[type[ev.Event], Callable[[Any], None]]:
        return {
            ev.DemandPublished: lambda _: self.demands.inc(),
            ev.OfferReceived: lambda _: self.offers.inc(),
            ev.ProposalCountered: lambda _: self.proposals.labels("countered").inc(),
            ev.ProposalRejected: lambda _: self.proposals.labels("rejected").inc(),
            ev.AgreementCreated: lambda _: self.agreements_created.inc(),
            ev.AgreementRejected: lambda _: self.agreements.labels("rejected").inc(),
            ev.AgreementApproved: self._on_approved,
            ev.AgreementTerminated: self._on_terminated,
            ev.ActivityCreated: self._on_activity,
            ev.ActivityDestroyed: self._on_activity_gone,
            ev.BatchStarted: lambda _: self.batches_started.inc(),
            ev.BatchFinished: self._on_batch,
            ev.DebitNoteReceived: lambda _: self.debit_notes["received"].inc(),
            ev.DebitNoteAccepted: lambda _: self.debit_notes["accepted"].inc(),
            ev.DebitNoteRefused: lambda _: self.debit_notes["refused"].inc(),
            ev.InvoiceReceived: lambda _: self.invoices["received"].inc(),
            ev.InvoiceAccepted: self._on_invoice_accepted,
            ev.InvoiceRefused: lambda _: self.invoices["refused"].inc(),
            ev.TaskStarted: lambda _: self.task_attempts.inc(),
            ev.TaskAttemptFailed: lambda e: self.task_attempt_failures.labels(e.kind).inc(),
            ev.TaskFinished: self._on_task,
            ev.InstanceSpawned: self._on_spawned,
            ev.InstanceStateChanged: self._on_state,
            ev.InstanceRestarting: self._on_restarting,
            ev.SupervisorEscalated: self._on_escalated,
        }

    # -- wiring -------------------------------------------------------------------------------

    def bind(self, golem: Golem) -> None:
        """Feed these metrics from a started session (its events, yagna calls and actors)."""
        rt = golem.rt
        if rt is None:
            raise ValueError("start the Golem session before binding metrics to it")
        self.unbind()
        self._golem, self._rt = golem, rt
        rt.events.subscribe(self.on_event)
        rt.client.transport.observers.append(self.on_call)
        rt.stats.observers.append(self.on_message)
        for cluster in golem.clusters:
            self._service(cluster.name)

    def unbind(self) -> None:
        rt, self._rt = self._rt, None
        if rt is not None:
            rt.events.unsubscribe(self.on_event)
            with contextlib.suppress(ValueError):
                rt.client.transport.observers.remove(self.on_call)
            with contextlib.suppress(ValueError):
                rt.stats.observers.remove(self.on_message)

    @property
    def golem(self) -> Golem | None:
        return self._golem

    @property
    def runtime(self) -> Runtime | None:
        """The bound session's runtime while it runs (None once it stopped)."""
        rt = self._rt
        return rt if rt is not None and self._golem is not None and self._golem.rt is rt else None

    # -- feeds ----------------------------------------------------------------------------------

    def on_message(self, role: str, seconds: float) -> None:
        """One actor message handled: called from that actor's thread, so kept to one observe."""
        child = self._role_hist.get(role)
        if child is None:
            child = self._role_hist[role] = self.message_seconds.labels(role)
        child.observe(seconds)

    def on_call(self, record: CallRecord) -> None:
        api = _API_ALIASES.get(record.api, record.api)
        children = self._api_children.get((api, record.outcome))
        if children is None:
            children = (self.api_requests.labels(api, record.outcome), self.api_seconds.labels(api))
            self._api_children[api, record.outcome] = children
        children[0].inc()
        children[1].observe(record.duration)

    def on_event(self, event: ev.Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    # -- event handlers -------------------------------------------------------------------------

    def _service(self, service: str) -> None:
        """Export zeros for a service's series as soon as it is known ("avoid missing metrics")."""
        if service in self._services:
            return
        self._services.add(service)
        for reason in ExitReason:
            self.restarts.labels(service, reason.value)
        self.escalations.labels(service)
        self.backoff.labels(service)
        self.instance_start.labels(service)

    def _on_approved(self, event: ev.AgreementApproved) -> None:
        self.agreements.labels("approved").inc()
        self.negotiation.observe(event.negotiation_seconds)
        with self._lock:
            self._approved.add(event.agreement_id)
            self.agreements_active.set(len(self._approved))

    def _on_terminated(self, event: ev.AgreementTerminated) -> None:
        self.agreements_terminated.labels("provider" if event.by_provider else "requestor").inc()
        with self._lock:
            if event.agreement_id in self._approved:
                self._approved.discard(event.agreement_id)
                if event.agreement_id not in self._paid:
                    self._unpaid.add(event.agreement_id)
            self.agreements_active.set(len(self._approved))
            self.invoices_outstanding.set(len(self._unpaid))

    def _on_invoice_accepted(self, event: ev.InvoiceAccepted) -> None:
        self.invoices["accepted"].inc()
        self.invoices_accepted_glm.inc(float(event.amount))
        with self._lock:
            self._paid.add(event.agreement_id)
            self._unpaid.discard(event.agreement_id)
            self.invoices_outstanding.set(len(self._unpaid))

    def _on_activity(self, event: ev.ActivityCreated) -> None:
        self.activities_created.inc()
        with self._lock:
            self._activities.add(event.activity_id)
            self.activities_active.set(len(self._activities))

    def _on_activity_gone(self, event: ev.ActivityDestroyed) -> None:
        with self._lock:
            self._activities.discard(event.activity_id)
            self.activities_active.set(len(self._activities))

    def _on_batch(self, event: ev.BatchFinished) -> None:
        self.batches.labels(event.outcome).inc()
        self.batch_seconds.observe(event.seconds)

    def _on_task(self, event: ev.TaskFinished) -> None:
        result = "ok" if event.ok else "cancelled" if event.cancelled else "failed"
        self.tasks.labels(result).inc()
        self.task_seconds.observe(event.seconds)

    def _on_spawned(self, event: ev.InstanceSpawned) -> None:
        self._service(event.service)
        with self._lock:
            self._spawned[event.service, event.instance] = event.at

    def _on_state(self, event: ev.InstanceStateChanged) -> None:
        if event.new != ServiceState.RUNNING.value:
            return
        with self._lock:
            spawned = self._spawned.pop((event.service, event.instance), None)
        if spawned is not None:
            self.instance_start.labels(event.service).observe(max(0.0, event.at - spawned))

    def _on_restarting(self, event: ev.InstanceRestarting) -> None:
        self._service(event.service)
        self.restarts.labels(event.service, event.reason).inc()
        self.backoff.labels(event.service).observe(event.delay_seconds)

    def _on_escalated(self, event: ev.SupervisorEscalated) -> None:
        self._service(event.service)
        self.escalations.labels(event.service).inc()
