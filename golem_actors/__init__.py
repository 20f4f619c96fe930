"""golem_actors: a Golem Network requestor runtime built on actors.

from golem_actors import Golem, ServiceActor

class Hello(ServiceActor):
    def run(self, ctx):
        while True:
            print(ctx.run("/bin/echo", "hello").stdout)
            ctx.sleep(5)

with Golem(budget="1") as golem:          # YAGNA_API_URL / YAGNA_APPKEY, or a LocalNet's
    golem.run_service(Hello, instances=2).wait_running(timeout=60)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from golem_actors.actors.activity import ActivityGoneError, BatchTimeoutError
    from golem_actors.actors.context import InstanceStoppingError, WorkContext
    from golem_actors.events import Event, EventBus
    from golem_actors.exescript import (
        BatchResult,
        Capture,
        CommandFailedError,
        CommandOutcome,
        Script,
    )
    from golem_actors.golem import Cluster, Golem, GolemError
    from golem_actors.metrics import Metrics
    from golem_actors.output import OutputLine
    from golem_actors.policy.lifecycle import ServiceState
    from golem_actors.policy.payload import VmPayload
    from golem_actors.policy.restart import (
        Backoff,
        RestartIntensity,
        RestartType,
        Strategy,
        SupervisorPolicy,
    )
    from golem_actors.policy.scoring import LeastExpensiveLinearPayu, OfferScorer
    from golem_actors.service import (
        InstanceSnapshot,
        ServiceActor,
        ServiceDefinitionError,
        ServiceHandle,
    )
    from golem_actors.status import StatusServer
    from golem_actors.tasks import (
        Summary,
        Task,
        TaskDefinitionError,
        TaskOutput,
        TaskResult,
        TaskRun,
        execute_tasks,
    )

# Exports load on first use: `golem_actors.localnet` (run in every provider process) and the
# yagna client must not pay for importing the whole actor runtime.
_EXPORTS = {
    "ActivityGoneError": "golem_actors.actors.activity",
    "Backoff": "golem_actors.policy.restart",
    "Metrics": "golem_actors.metrics",
    "RestartIntensity": "golem_actors.policy.restart",
    "StatusServer": "golem_actors.status",
    "BatchResult": "golem_actors.exescript",
    "BatchTimeoutError": "golem_actors.actors.activity",
    "Capture": "golem_actors.exescript",
    "Cluster": "golem_actors.golem",
    "CommandFailedError": "golem_actors.exescript",
    "CommandOutcome": "golem_actors.exescript",
    "Event": "golem_actors.events",
    "EventBus": "golem_actors.events",
    "Golem": "golem_actors.golem",
    "GolemError": "golem_actors.golem",
    "InstanceSnapshot": "golem_actors.service",
    "InstanceStoppingError": "golem_actors.actors.context",
    "LeastExpensiveLinearPayu": "golem_actors.policy.scoring",
    "OfferScorer": "golem_actors.policy.scoring",
    "OutputLine": "golem_actors.output",
    "RestartType": "golem_actors.policy.restart",
    "Script": "golem_actors.exescript",
    "ServiceActor": "golem_actors.service",
    "ServiceDefinitionError": "golem_actors.service",
    "ServiceHandle": "golem_actors.service",
    "ServiceState": "golem_actors.policy.lifecycle",
    "Strategy": "golem_actors.policy.restart",
    "SupervisorPolicy": "golem_actors.policy.restart",
    "VmPayload": "golem_actors.policy.payload",
    "WorkContext": "golem_actors.actors.context",
    "Summary": "golem_actors.tasks",
    "Task": "golem_actors.tasks",
    "TaskDefinitionError": "golem_actors.tasks",
    "TaskOutput": "golem_actors.tasks",
    "TaskResult": "golem_actors.tasks",
    "TaskRun": "golem_actors.tasks",
    "execute_tasks": "golem_actors.tasks",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'golem_actors' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__version__ = "0.1.0"

__all__ = [
    "ActivityGoneError",
    "Backoff",
    "BatchResult",
    "BatchTimeoutError",
    "Capture",
    "Cluster",
    "CommandFailedError",
    "CommandOutcome",
    "Event",
    "EventBus",
    "Golem",
    "GolemError",
    "InstanceSnapshot",
    "InstanceStoppingError",
    "LeastExpensiveLinearPayu",
    "Metrics",
    "OfferScorer",
    "OutputLine",
    "RestartIntensity",
    "RestartType",
    "Script",
    "ServiceActor",
    "ServiceDefinitionError",
    "ServiceHandle",
    "ServiceState",
    "StatusServer",
    "Strategy",
    "Summary",
    "SupervisorPolicy",
    "Task",
    "TaskDefinitionError",
    "TaskOutput",
    "TaskResult",
    "TaskRun",
    "VmPayload",
    "WorkContext",
    "__version__",
    "execute_tasks",
]
