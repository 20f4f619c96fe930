"""The end-of-run summary: per provider agreements, uptime, tasks, restarts and cost; then totals.

A consumer of the run's events like the metrics, so what it prints matches what Prometheus saw.
Provider ids are fine here (a table read by a person, not a label set). Tasks are counted on the
provider of their last attempt (``TaskFinished``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from decimal import Decimal

from golem_actors import events as ev
from golem_actors.events import EventBus
from golem_actors.payments.decisions import Totals
from golem_actors.provider_costs import ProviderCosts

__all__ = ["ProviderRow", "RunSummary"]

_UP = ("running", "unresponsive")  # states in which an instance holds its provider


@dataclass
class ProviderRow:
    provider_id: str
    name: str
    agreements: int = 0
    uptime_s: float = 0.0
    tasks: int = 0
    tasks_failed: int = 0
    restarts: int = 0
    cost: Decimal = Decimal(0)


class RunSummary:
    """Collects what the summary needs from events; ``render(totals)`` makes the table."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, ProviderRow] = {}
        self._costs = ProviderCosts()  # agreement -> provider, names, what each cost
        self._instance_provider: dict[tuple[str, str], str] = {}
        self._up_since: dict[tuple[str, str], tuple[str, float]] = {}
        self._terminated: set[str] = set()
        self._refused = 0
        self._bus: EventBus | None = None

    def attach(self, bus: EventBus) -> None:
        self._bus = bus
        bus.subscribe(self.on_event)

    def detach(self) -> None:
        if self._bus is not None:
            self._bus.unsubscribe(self.on_event)
            self._bus = None

    # -- events -------------------------------------------------------------------------------

    def on_event(self, event: ev.Event) -> None:
        with self._lock:
            self._costs.apply(event)
            if isinstance(event, ev.AgreementApproved):
                self._row(event.provider_id).agreements += 1
            elif isinstance(event, ev.AgreementTerminated):
                self._terminated.add(event.agreement_id)
            elif isinstance(event, ev.InstanceStateChanged):
                self._on_state(event)
            elif isinstance(event, ev.InstanceRestarting):
                provider = self._instance_provider.get((event.service, event.instance))
                if provider is not None:
                    self._row(provider).restarts += 1
            elif isinstance(event, ev.InvoiceRefused):
                self._refused += 1
            elif isinstance(event, ev.TaskFinished):
                self._on_task(event)

    def _row(self, provider_id: str) -> ProviderRow:
        row = self._rows.get(provider_id)
        if row is None:
            name = self._costs.name(provider_id) or provider_id[:12]
            row = self._rows[provider_id] = ProviderRow(provider_id, name)
        return row

    def _on_state(self, event: ev.InstanceStateChanged) -> None:
        key = (event.service, event.instance)
        if event.provider_id is not None:
            self._instance_provider[key] = event.provider_id
        if event.new in _UP and key not in self._up_since and event.provider_id is not None:
            self._up_since[key] = (event.provider_id, event.at)
        elif event.new not in _UP and key in self._up_since:
            provider, since = self._up_since.pop(key)
            self._row(provider).uptime_s += max(0.0, event.at - since)

    def _on_task(self, event: ev.TaskFinished) -> None:
        row = self._row(event.provider_id or "-")  # "-": failed before any provider took it
        row.tasks += 1
        if not event.ok:
            row.tasks_failed += 1

    # -- reading ------------------------------------------------------------------------------

    def rows(self, now: float | None = None) -> list[ProviderRow]:
        """One row per provider that had an agreement, a task or a restart, uptime up to now."""
        now = time.time() if now is None else now
        with self._lock:
            rows = {
                pid: ProviderRow(**{**vars(row), "name": self._costs.name(pid) or row.name})
                for pid, row in self._rows.items()
            }
            for provider, since in self._up_since.values():
                rows.setdefault(provider, ProviderRow(provider, self._costs.name(provider) or "?"))
                rows[provider].uptime_s += max(0.0, now - since)
            for provider, cost in self._costs.by_provider().items():
                rows[provider].cost += cost
        return sorted(rows.values(), key=lambda r: (r.name, r.provider_id))

    def invoices(self) -> tuple[int, int, int]:
        """(accepted, outstanding, refused): outstanding is terminated and not accepted yet."""
        with self._lock:
            invoiced = self._costs.invoiced()
            outstanding = {
                a for a in self._terminated if self._costs.provider_of(a) is not None
            } - invoiced
            return len(invoiced), len(outstanding), self._refused

    def render(self, totals: Totals | None, now: float | None = None) -> str:
        rows = self.rows(now)
        header = (
            f"{'provider':<20} {'agreements':>10} {'uptime':>9} {'tasks':>7} {'restarts':>8} "
            f"{'cost (GLM)':>14}"
        )
        lines = [header]
        for r in rows:
            tasks = f"{r.tasks}" + (f"/{r.tasks_failed}!" if r.tasks_failed else "")
            lines.append(
                f"{r.name[:20]:<20} {r.agreements:>10} {r.uptime_s:>8.0f}s {tasks:>7} "
                f"{r.restarts:>8} {_glm(r.cost):>14}"
            )
        if not rows:
            lines.append("(no provider was used)")
        accepted, outstanding, refused = self.invoices()
        cost = totals.committed if totals is not None else sum((r.cost for r in rows), Decimal(0))
        money = f"total cost {_glm(cost)} GLM"
        if totals is not None:
            money += f"; budget left {_glm(totals.remaining)} of {_glm(totals.budget)} GLM"
        lines.append(
            f"{money}; invoices accepted {accepted}, outstanding {outstanding}"
            + (f", refused {refused}" if refused else "")
        )
        return "\n".join(lines)


def _glm(amount: Decimal) -> str:
    """Up to 6 decimals, no trailing zeros noise: costs on testnets are tiny."""
    text = f"{amount.quantize(Decimal('0.000001')):f}" if amount else "0"
    return text.rstrip("0").rstrip(".") if "." in text else text
