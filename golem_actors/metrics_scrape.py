"""The metrics read, not counted: built fresh on every Prometheus scrape from the bound session.

Instances by state, live actors and their mailbox depth, the runtime's plain-int actor counters and
the budget are cheaper to read when asked than to keep up to date on every change, and reading
them keeps the actors' hot paths free of metric calls. ``metrics.Metrics`` registers one of these in
its registry; it only needs the namespace and the session the metrics are bound to.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from golem_actors.policy.lifecycle import ServiceState

if TYPE_CHECKING:
    from golem_actors.actors.runtime import Runtime
    from golem_actors.golem import Golem

__all__ = ["BoundMetrics", "ScrapeCollector"]

_PHASES = ("start", "message", "stop")


class BoundMetrics(Protocol):
    """What the collector reads of ``metrics.Metrics`` (a protocol: no import back into it)."""

    @property
    def namespace(self) -> str: ...

    @property
    def golem(self) -> Golem | None: ...

    @property
    def runtime(self) -> Runtime | None: ...


class ScrapeCollector(Collector):
    """What is read, not counted: built fresh on every scrape from the bound session."""

    def __init__(self, metrics: BoundMetrics) -> None:
        self.metrics = metrics
        self.ns = metrics.namespace

    def describe(self) -> Iterator[Metric]:
        return iter(())  # families depend on the session: never checked at registration

    def collect(self) -> Iterator[Metric]:
        yield from self._instances()
        yield from self._actors()
        yield from self._budget()

    def _instances(self) -> Iterator[Metric]:
        ns, golem = self.ns, self.metrics.golem
        instances = GaugeMetricFamily(
            f"{ns}_service_instances",
            "Service instances by service and state",
            labels=["service", "state"],
        )
        for cluster in golem.clusters if golem is not None else ():
            counts = dict.fromkeys(ServiceState, 0)
            for snap in cluster.snapshots():
                counts[snap.state] += 1
            for state, count in counts.items():
                instances.add_metric([cluster.name, state.value], count)
        yield instances

    def _actors(self) -> Iterator[Metric]:
        ns, rt = self.ns, self.metrics.runtime
        live = GaugeMetricFamily(f"{ns}_actors", "Live actors by role", labels=["actor"])
        mailbox = GaugeMetricFamily(
            f"{ns}_actor_mailbox_messages", "Messages waiting in actors' inboxes", labels=["actor"]
        )
        messages = CounterMetricFamily(
            f"{ns}_actor_messages", "Messages handled by actors", labels=["actor"]
        )
        failures = CounterMetricFamily(
            f"{ns}_actor_failures",
            "Actors that died of an exception, by phase (start, message, stop)",
            labels=["actor", "phase"],
        )
        unhandled = CounterMetricFamily(
            f"{ns}_actor_unhandled_messages", "Messages no handler took", labels=["actor"]
        )
        dead = CounterMetricFamily(
            f"{ns}_io_dead_letters", "yagna call results whose actor had already stopped"
        )
        if rt is not None:
            dead.add_metric([], rt.io.dead_letters)
            stats = rt.stats
            depth: dict[str, int] = {}
            for ref in rt.actor_refs():
                role = str(getattr(ref.actor_class, "role", "actor"))
                inbox = ref.actor_inbox
                size = inbox.qsize() if isinstance(inbox, queue.Queue) else 0
                depth[role] = depth.get(role, 0) + size
            roles = sorted(set(stats.live) | set(stats.messages) | set(depth))
            for role in roles:
                live.add_metric([role], stats.live.get(role, 0))
                mailbox.add_metric([role], depth.get(role, 0))
                messages.add_metric([role], stats.messages.get(role, 0))
                unhandled.add_metric([role], stats.unhandled.get(role, 0))
                for phase in _PHASES:
                    failures.add_metric([role, phase], stats.failures.get((role, phase), 0))
        yield from (live, mailbox, messages, failures, unhandled, dead)

    def _budget(self) -> Iterator[Metric]:
        ns, golem = self.ns, self.metrics.golem
        totals = golem.totals() if golem is not None else None
        budget = GaugeMetricFamily(f"{ns}_budget_glm", "The allocation's total amount (GLM)")
        left = GaugeMetricFamily(
            f"{ns}_budget_left_glm", "Budget not committed by accepted debit notes or invoices"
        )
        committed = GaugeMetricFamily(
            f"{ns}_payments_committed_glm",
            "GLM committed: per agreement its accepted invoice, or before one its accepted notes",
        )
        if totals is not None:
            budget.add_metric([], float(totals.budget))
            left.add_metric([], float(totals.remaining))
            committed.add_metric([], float(totals.committed))
        yield from (budget, left, committed)
