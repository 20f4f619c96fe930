"""The metrics exposition, parsed back with prometheus-client's own parser: names, types, labels,
and that no id ever becomes a label value."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from concurrent.futures import Future
from decimal import Decimal
from typing import Any, cast

import pykka
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from golem_actors import events as ev
from golem_actors.actors.base import RuntimeActor, handles
from golem_actors.actors.runtime import Runtime
from golem_actors.actors.supervisor import ClusterState
from golem_actors.golem import Cluster, Golem
from golem_actors.metrics import Metrics
from golem_actors.payments.decisions import Totals
from golem_actors.policy.lifecycle import ServiceState
from golem_actors.service import ServiceHandle
from golem_actors.yagna import ApiConfig
from golem_actors.yagna.transport import CallRecord

NODE = "0x" + "ab12" * 10
OTHER_NODE = "0x" + "cd34" * 10
AGREEMENT = "f" * 64
ACTIVITY = "e" * 32
UUID = "2f1e1c0a-5f43-4d8e-9b1a-0c6a0e6f2a11"

ID_LIKE = re.compile(
    r"0x[0-9a-fA-F]{8,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{32,}"
)

#: Every metric family the runtime exports, with its type (process_* come from the client).
EXPECTED = {
    "golem_build_info": "gauge",  # an Info, exposed as a gauge of 1
    "golem_actors": "gauge",
    "golem_actor_mailbox_messages": "gauge",
    "golem_actor_messages": "counter",
    "golem_actor_failures": "counter",
    "golem_actor_unhandled_messages": "counter",
    "golem_actor_message_processing_seconds": "histogram",
    "golem_io_dead_letters": "counter",
    "golem_service_instances": "gauge",
    "golem_service_instance_start_seconds": "histogram",
    "golem_supervisor_restarts": "counter",
    "golem_supervisor_escalations": "counter",
    "golem_supervisor_backoff_seconds": "histogram",
    "golem_market_demands_published": "counter",
    "golem_market_offers_received": "counter",
    "golem_market_proposals": "counter",
    "golem_agreements_created": "counter",
    "golem_agreement_negotiations": "counter",
    "golem_agreements_terminated": "counter",
    "golem_agreements_active": "gauge",
    "golem_agreement_negotiation_seconds": "histogram",
    "golem_activities_created": "counter",
    "golem_activities_active": "gauge",
    "golem_activity_exec_batches_started": "counter",
    "golem_activity_exec_batches": "counter",
    "golem_activity_exec_batch_seconds": "histogram",
    "golem_task_attempts_started": "counter",
    "golem_task_attempts_failed": "counter",
    "golem_tasks_finished": "counter",
    "golem_task_seconds": "histogram",
    "golem_debit_notes_received": "counter",
    "golem_debit_notes_accepted": "counter",
    "golem_debit_notes_refused": "counter",
    "golem_invoices_received": "counter",
    "golem_invoices_accepted": "counter",
    "golem_invoices_refused": "counter",
    "golem_invoices_accepted_glm": "counter",
    "golem_invoices_outstanding": "gauge",
    "golem_yagna_api_requests": "counter",
    "golem_yagna_api_request_duration_seconds": "histogram",
    "golem_budget_glm": "gauge",
    "golem_budget_left_glm": "gauge",
    "golem_payments_committed_glm": "gauge",
}

FORBIDDEN_LABELS = {"provider", "provider_id", "agreement", "agreement_id", "activity", "id"}


@contextlib.contextmanager
def bound_metrics() -> Iterator[tuple[Metrics, Runtime, ServiceHandle]]:
    """Metrics bound to a stand-in session: a real Runtime (no yagna call is made), one cluster."""
    rt = Runtime(ApiConfig(app_key="k" * 16, api_url="http://127.0.0.1:9"))
    handle = ServiceHandle("Heartbeat", "heartbeat-0")
    cluster = Cluster("Heartbeat", [handle], cast("pykka.ActorRef[Any]", None), ClusterState())
    golem = cast("Golem", _StandIn(rt, [cluster]))
    metrics = Metrics()
    metrics.bind(golem)
    try:
        yield metrics, rt, handle
    finally:
        metrics.unbind()
        rt.close()


@pytest.fixture
def session() -> Iterator[tuple[Metrics, Runtime, ServiceHandle]]:
    with bound_metrics() as bound:
        yield bound


class _StandIn:
    def __init__(self, rt: Runtime, clusters: list[Cluster]) -> None:
        self.rt = rt
        self.clusters = clusters

    def totals(self) -> Totals:
        return Totals(Decimal(5), Decimal("0.25"), Decimal("0.5"), Decimal("0.75"), Decimal("4.25"))


class Echo(RuntimeActor):
    role = "echo"

    @handles(str)
    def on_text(self, text: str) -> str:
        return text.upper()


def feed(rt: Runtime) -> None:
    """One of every event, with real-looking ids, and one yagna call per outcome."""
    for event in (
        ev.DemandPublished(demand_id=UUID, key="Heartbeat:123"),
        ev.OfferReceived(provider_id=NODE, provider_name="provider-0", score=1.0),
        ev.OfferReceived(provider_id=OTHER_NODE, provider_name="provider-1", score=None),
        ev.ProposalCountered(provider_id=NODE, proposal_id=UUID),
        ev.ProposalRejected(provider_id=OTHER_NODE, reason=f"{OTHER_NODE} is too expensive"),
        ev.InstanceSpawned(service="Heartbeat", instance="heartbeat-0"),
        ev.AgreementCreated(agreement_id=AGREEMENT, provider_id=NODE),
        ev.AgreementApproved(
            agreement_id=AGREEMENT,
            provider_id=NODE,
            provider_name="provider-0",
            negotiation_seconds=0.4,
        ),
        ev.AgreementRejected(agreement_id=None, provider_id=OTHER_NODE, reason="no"),
        ev.ActivityCreated(activity_id=ACTIVITY, agreement_id=AGREEMENT),
        ev.InstanceStateChanged(
            service="Heartbeat",
            instance="heartbeat-0",
            old="pending",
            new="starting",
            provider_id=NODE,
        ),
        ev.InstanceStateChanged(
            service="Heartbeat",
            instance="heartbeat-0",
            old="starting",
            new="running",
            provider_id=NODE,
        ),
        ev.BatchStarted(activity_id=ACTIVITY),
        ev.BatchFinished(activity_id=ACTIVITY, ok=True, seconds=0.2, outcome="ok"),
        ev.DebitNoteReceived(
            debit_note_id=UUID, agreement_id=AGREEMENT, activity_id=ACTIVITY, amount=Decimal("0.1")
        ),
        ev.DebitNoteAccepted(debit_note_id=UUID, agreement_id=AGREEMENT, amount=Decimal("0.1")),
        ev.DebitNoteRefused(debit_note_id=UUID, agreement_id=AGREEMENT, reason="late"),
        ev.InstanceRestarting(
            service="Heartbeat",
            instance="heartbeat-0",
            reason="run_failed",
            delay_seconds=0.5,
            restarts=1,
        ),
        ev.ActivityDestroyed(activity_id=ACTIVITY, agreement_id=AGREEMENT),
        ev.AgreementTerminated(
            agreement_id=AGREEMENT, provider_id=NODE, by_provider=False, reason="x"
        ),
        ev.InvoiceReceived(invoice_id=UUID, agreement_id=AGREEMENT, amount=Decimal("0.5")),
        ev.InvoiceAccepted(invoice_id=UUID, agreement_id=AGREEMENT, amount=Decimal("0.5")),
        ev.InvoiceRefused(invoice_id=UUID, agreement_id="other", reason="too much"),
        ev.SupervisorEscalated(service="Heartbeat", reason="too many restarts"),
        ev.TaskStarted(task_id=UUID, attempt=1, provider_id=NODE, provider_name="provider-0"),
        ev.TaskAttemptFailed(
            task_id=UUID, provider_id=NODE, kind="provider", error=NODE, retried=True
        ),
        ev.TaskFinished(task_id=UUID, ok=True, attempts=2, provider_id=OTHER_NODE, seconds=1.5),
    ):
        rt.emit(event)
    path = f"/agreements/{AGREEMENT}/events"
    for api, outcome in (("market", "ok"), ("payment", "error"), ("root", "failed")):
        status = {"ok": 200, "error": 500, "failed": None}[outcome]
        record = CallRecord(api, "GET", path, status, outcome, 0.01, 1)
        for observer in rt.client.transport.observers:
            observer(record)


def families(metrics: Metrics) -> dict[str, Any]:
    text = generate_latest(metrics.registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_every_metric_is_exported_with_its_type(session) -> None:
    metrics, rt, _ = session
    feed(rt)
    found = families(metrics)
    for name, kind in EXPECTED.items():
        assert name in found, f"{name} is missing"
        assert found[name].type == kind, f"{name} is a {found[name].type}, not a {kind}"
    ours = {n for n in found if not _created_of_another(n, found) and not n.startswith("process_")}
    assert ours == set(EXPECTED), ours ^ set(EXPECTED)
    assert "process_resident_memory_bytes" in found


def _created_of_another(name: str, found: dict[str, Any]) -> bool:
    """prometheus-client's ``x_created`` companion series of counter or histogram ``x``."""
    return name.endswith("_created") and name.removesuffix("_created") in found


def test_names_follow_prometheus_conventions(session) -> None:
    metrics, rt, _ = session
    feed(rt)
    found = families(metrics)
    for family in found.values():
        if family.name.startswith("process_") or _created_of_another(family.name, found):
            continue
        assert family.name.startswith("golem_"), family.name
        samples: list[Sample] = family.samples
        if family.type == "counter":
            assert all(s.name == f"{family.name}_total" for s in samples), family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
        assert not re.search(r"_(ms|milliseconds|minutes|hours)\b", family.name), family.name


def test_no_label_is_an_id(session) -> None:
    metrics, rt, _ = session
    feed(rt)
    found = families(metrics)
    values: set[str] = set()
    for family in found.values():
        for sample in family.samples:
            assert not FORBIDDEN_LABELS & set(sample.labels), (sample.name, sample.labels)
            values.update(sample.labels.values())
    ids = [v for v in values if ID_LIKE.search(v)]
    assert ids == []
    # The check itself can fail: the ids fed in do match the pattern.
    assert all(ID_LIKE.search(x) for x in (NODE, UUID, AGREEMENT, ACTIVITY))
    assert all(len(family.samples) < 200 for family in found.values())  # bounded cardinality


def test_events_calls_and_actors_drive_the_values(session) -> None:
    metrics, rt, handle = session
    echo = Echo.start(rt)
    try:
        assert echo.ask("hi", timeout=10) == "HI"
        feed(rt)
        handle.update(state=ServiceState.RUNNING)
        assert value(metrics, "golem_market_offers_received_total") == 2
        assert value(metrics, "golem_market_proposals_total", result="countered") == 1
        assert value(metrics, "golem_market_proposals_total", result="rejected") == 1
        assert value(metrics, "golem_agreement_negotiations_total", result="approved") == 1
        assert value(metrics, "golem_agreement_negotiations_total", result="rejected") == 1
        assert value(metrics, "golem_agreements_terminated_total", by="requestor") == 1
        assert value(metrics, "golem_agreements_active") == 0
        assert value(metrics, "golem_agreement_negotiation_seconds_count") == 1
        assert value(metrics, "golem_activities_active") == 0
        assert value(metrics, "golem_activity_exec_batches_total", outcome="ok") == 1
        assert value(metrics, "golem_activity_exec_batches_total", outcome="timeout") == 0
        assert value(metrics, "golem_debit_notes_accepted_total") == 1
        assert value(metrics, "golem_task_attempts_started_total") == 1
        assert value(metrics, "golem_task_attempts_failed_total", kind="provider") == 1
        assert value(metrics, "golem_task_attempts_failed_total", kind="timeout") == 0
        assert value(metrics, "golem_tasks_finished_total", result="ok") == 1
        assert value(metrics, "golem_task_seconds_sum") == 1.5
        assert value(metrics, "golem_invoices_accepted_glm_total") == 0.5
        assert value(metrics, "golem_invoices_outstanding") == 0
        assert value(metrics, "golem_invoices_refused_total") == 1
        labels = {"service": "Heartbeat", "reason": "run_failed"}
        assert value(metrics, "golem_supervisor_restarts_total", **labels) == 1
        assert (
            value(metrics, "golem_supervisor_restarts_total", **{**labels, "reason": "crash"}) == 0
        )
        assert value(metrics, "golem_supervisor_escalations_total", service="Heartbeat") == 1
        assert value(metrics, "golem_supervisor_backoff_seconds_sum", service="Heartbeat") == 0.5
        start = value(metrics, "golem_service_instance_start_seconds_count", service="Heartbeat")
        assert start == 1
        running = {"service": "Heartbeat", "state": "running"}
        assert value(metrics, "golem_service_instances", **running) == 1
        assert value(metrics, "golem_service_instances", **{**running, "state": "failed"}) == 0
        assert value(metrics, "golem_yagna_api_requests_total", api="market", outcome="ok") == 1
        assert (
            value(metrics, "golem_yagna_api_requests_total", api="identity", outcome="failed") == 1
        )
        assert value(metrics, "golem_yagna_api_request_duration_seconds_count", api="payment") == 1
        assert value(metrics, "golem_budget_left_glm") == 4.25
        assert value(metrics, "golem_actors", actor="echo") == 1
        assert value(metrics, "golem_actor_messages_total", actor="echo") == 1
        assert value(metrics, "golem_actor_message_processing_seconds_count", actor="echo") == 1
        assert value(metrics, "golem_actor_failures_total", actor="echo", phase="message") == 0
        assert value(metrics, "golem_actor_mailbox_messages", actor="echo") == 0
    finally:
        echo.stop(timeout=10)
    assert value(metrics, "golem_actors", actor="echo") == 0


def test_a_busy_actor_shows_its_mailbox(session) -> None:
    metrics, rt, _ = session
    gate = Future[None]()

    class Slow(RuntimeActor):
        role = "slow"

        @handles(int)
        def on_int(self, _: int) -> None:
            gate.result(timeout=10)

    slow = Slow.start(rt)
    try:
        for i in range(5):
            slow.tell(i)
        # One message is being handled, four wait (bounded: the gate opens in finally).
        assert _eventually(
            lambda: value(metrics, "golem_actor_mailbox_messages", actor="slow") == 4
        )
    finally:
        gate.set_result(None)
        slow.stop(timeout=10)


def _eventually(probe: Any) -> bool:
    from tests.waiting import wait_for  # noqa: PLC0415

    return bool(wait_for("the probe", probe, timeout=10))


def test_namespace_is_configurable_and_sessions_do_not_collide() -> None:
    first, second = Metrics("acme"), Metrics("acme_")  # a trailing "_" is accepted
    first.offers.inc()
    assert first.registry.get_sample_value("acme_market_offers_received_total") == 1
    assert second.registry.get_sample_value("acme_market_offers_received_total") == 0
    for bad in ("", "9lives", "golem-actors", "a b"):
        with pytest.raises(ValueError, match="metrics namespace"):
            Metrics(bad)


def test_binding_needs_a_started_session() -> None:
    with pytest.raises(ValueError, match="start the Golem session"):
        Metrics().bind(Golem(config=ApiConfig(app_key="k", api_url="http://127.0.0.1:9")))


def test_unbound_metrics_still_scrape() -> None:
    found = families(Metrics())
    assert found["golem_service_instances"].samples == []
    assert found["golem_market_offers_received"].samples[0].value == 0
