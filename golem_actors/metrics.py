"""Prometheus metrics of a run, built at scrape time from the runtime's own state.

Nothing here sits on a hot path: a scrape reads the instance handles, the actor counters and the
payment totals and turns them into metric families. Labels are bounded sets (service class,
state, actor role, reason); provider, agreement and activity ids never become labels.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from golem_actors.policy.lifecycle import ServiceState

if TYPE_CHECKING:
    from golem_actors.golem import Golem

__all__ = ["RunCollector"]


class RunCollector(Collector):
    """Instances by state, restarts, live actors, and money, for one ``Golem`` session."""

    def __init__(self, golem: Golem, namespace: str = "golem") -> None:
        self.golem = golem
        self.ns = namespace

    def collect(self) -> Iterator[Metric]:
        ns = self.ns
        instances = GaugeMetricFamily(
            f"{ns}_service_instances",
            "Service instances by service and state",
            labels=["service", "state"],
        )
        restarts = CounterMetricFamily(
            f"{ns}_service_restarts",
            "Restarts of service instances, by service",
            labels=["service"],
        )
        for cluster in self.golem.clusters:
            counts = dict.fromkeys(ServiceState, 0)
            total_restarts = 0
            for snap in cluster.snapshots():
                counts[snap.state] += 1
                total_restarts += snap.restarts
            for state, count in counts.items():
                instances.add_metric([cluster.name, state.value], count)
            restarts.add_metric([cluster.name], total_restarts)
        yield instances
        yield restarts
        rt = self.golem.rt
        if rt is not None:
            live = GaugeMetricFamily(f"{ns}_actors", "Live actors by role", labels=["actor"])
            for role, count in sorted(rt.stats.live.items()):
                live.add_metric([role], count)
            yield live
        totals = self.golem.totals()
        if totals is not None:
            yield GaugeMetricFamily(
                f"{ns}_budget_glm", "The allocation's total amount", value=float(totals.budget)
            )
            yield GaugeMetricFamily(
                f"{ns}_budget_left_glm",
                "Budget not committed to accepted debit notes or invoices",
                value=float(totals.remaining),
            )
            spent = CounterMetricFamily(
                f"{ns}_payments_accepted_glm", "GLM committed by accepted documents"
            )
            spent.add_metric([], float(totals.committed))
            yield spent
