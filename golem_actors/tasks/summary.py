"""What a task run did, per provider and in total (``TaskSummary``), built from the run's events.

``TaskRun.summary`` is one; ``golem_actors.summary.RunSummary`` is the whole session's table
(services and tasks) that ``golem-actors run`` prints.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal

from golem_actors.events import Event, TaskAttemptFailed, TaskFinished, TaskStarted
from golem_actors.provider_costs import ProviderCosts

__all__ = ["ProviderSummary", "TaskSummary", "TaskSummaryBuilder"]


@dataclass
class ProviderSummary:
    name: str
    tasks_done: int = 0
    failures: int = 0
    busy_seconds: float = 0.0
    cost: Decimal = Decimal(0)


@dataclass
class TaskSummary:
    """What a run did, per provider and in total; final once the session has settled."""

    tasks: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0  # the run stopped before they ran (Ctrl-C, the run's timeout)
    running: int = 0
    attempts: int = 0
    retries: int = 0
    timeouts: int = 0
    speculative: int = 0
    started_at: float = field(default_factory=time.monotonic)
    first_task_s: float | None = None  # startup: until the first task started
    wall_s: float = 0.0
    cost: Decimal = Decimal(0)
    providers: dict[str, ProviderSummary] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.cancelled

    def format(self) -> str:
        cancelled = f"{self.cancelled} cancelled, " if self.cancelled else ""
        head = (
            f"{self.succeeded}/{self.tasks} tasks succeeded, {self.failed} failed, {cancelled}"
            f"{self.retries} retries ({self.timeouts} timeouts), {self.speculative} speculative; "
            f"{self.wall_s:.1f} s (first task after {self.first_task_s or 0:.1f} s), "
            f"cost {self.cost:.6f} GLM"
        )
        lines = [head, f"{'provider':<20} {'done':>6} {'failed':>6} {'busy s':>8} {'cost GLM':>12}"]
        lines.extend(
            f"{p.name[:20]:<20} {p.tasks_done:>6} {p.failures:>6} {p.busy_seconds:>8.1f} "
            f"{p.cost:>12.6f}"
            for p in sorted(self.providers.values(), key=lambda p: p.name)
        )
        return "\n".join(lines)


class TaskSummaryBuilder:
    """Builds a ``TaskSummary`` from the run's events (thread-safe: events come from any thread)."""

    def __init__(self, tasks: int) -> None:
        self._lock = threading.Lock()
        self._summary = TaskSummary(tasks=tasks)
        self._costs = ProviderCosts()  # names, and what each provider cost
        self._running: set[str] = set()  # tasks with an attempt out

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._apply(event)

    def _provider(
        self, provider_id: str, providers: dict[str, ProviderSummary] | None = None
    ) -> ProviderSummary:
        providers = self._summary.providers if providers is None else providers
        if provider_id not in providers:
            name = self._costs.name(provider_id) or provider_id[:10]
            providers[provider_id] = ProviderSummary(name)
        return providers[provider_id]

    def _apply(self, event: Event) -> None:
        s = self._summary
        self._costs.apply(event)
        if isinstance(event, TaskStarted):
            s.attempts += 1
            self._running.add(event.task_id)
            s.speculative += event.speculative
            self._provider(event.provider_id).name = event.provider_name
            if s.first_task_s is None:
                s.first_task_s = time.monotonic() - s.started_at
        elif isinstance(event, TaskAttemptFailed):
            if event.retried:
                self._running.discard(event.task_id)
            s.retries += event.retried
            s.timeouts += event.kind == "timeout"
            if event.provider_id:
                self._provider(event.provider_id).failures += 1
        elif isinstance(event, TaskFinished):
            self._running.discard(event.task_id)
            if event.ok:
                s.succeeded += 1
            elif event.cancelled:
                s.cancelled += 1
            else:
                s.failed += 1
            if event.ok and event.provider_id:
                p = self._provider(event.provider_id)
                p.tasks_done += 1
                p.busy_seconds += event.seconds

    def snapshot(self) -> TaskSummary:
        with self._lock:
            s = self._summary
            copy = replace(s, providers={k: replace(v) for k, v in s.providers.items()})
            copy.running = len(self._running)
            for provider, cost in self._costs.by_provider().items():
                self._provider(provider, copy.providers).cost = cost
            copy.cost = self._costs.total()
        copy.wall_s = time.monotonic() - copy.started_at
        return copy
