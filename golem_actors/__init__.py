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
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from golem_actors.actors.activity import ActivityGoneError, BatchTimeoutError
    from golem_actors.actors.context import InstanceStoppingError, WorkContext
    from golem_actors.errors import ArgumentError, GolemActorsError
    from golem_actors.eventlog import EventLogError
    from golem_actors.events import Event, EventBus
    from golem_actors.exescript import (
        BatchResult,
        Capture,
        CommandFailedError,
        CommandOutcome,
        Script,
    )
    from golem_actors.extras import MissingExtraError
    from golem_actors.golem import Cluster, Golem, GolemError, GolemOptions, execute_tasks
    from golem_actors.images.info import ImageRegistryError
    from golem_actors.images.registry import RegistryResolver
    from golem_actors.journal import JournalError
    from golem_actors.metrics import Metrics
    from golem_actors.output import OutputLine
    from golem_actors.policy.demand import DemandError
    from golem_actors.policy.lifecycle import ServiceState
    from golem_actors.policy.payload import PayloadError, VmPayload
    from golem_actors.policy.scoring import LeastExpensiveLinearPayu, OfferScorer
    from golem_actors.policy.supervision import (
        Backoff,
        RestartIntensity,
        RestartType,
        Strategy,
        SupervisorPolicy,
    )
    from golem_actors.recovery import RecoveryError
    from golem_actors.service import (
        InstanceSnapshot,
        ServiceActor,
        ServiceDefinitionError,
        ServiceHandle,
    )
    from golem_actors.session_budget import BudgetSpentError
    from golem_actors.status import StatusServer
    from golem_actors.storage.http import StorageError
    from golem_actors.tasks.model import Task, TaskDefinitionError, TaskOutput, TaskResult
    from golem_actors.tasks.run import TaskRun
    from golem_actors.tasks.summary import TaskSummary
    from golem_actors.yagna.config import ConfigError
    from golem_actors.yagna.errors import YagnaError

# Exports load on first use: `golem_actors.localnet` (run in every provider process) and the
# yagna client must not pay for importing the whole actor runtime.
_EXPORTS = {
    "EventLogError": "golem_actors.eventlog",
    "ArgumentError": "golem_actors.errors",
    "BudgetSpentError": "golem_actors.session_budget",
    "GolemActorsError": "golem_actors.errors",
    "PayloadError": "golem_actors.policy.payload",
    "ImageRegistryError": "golem_actors.images.info",
    "RegistryResolver": "golem_actors.images.registry",
    "DemandError": "golem_actors.policy.demand",
    "JournalError": "golem_actors.journal",
    "RecoveryError": "golem_actors.recovery",
    "StorageError": "golem_actors.storage.http",
    "YagnaError": "golem_actors.yagna.errors",
    "ConfigError": "golem_actors.yagna.config",
    "MissingExtraError": "golem_actors.extras",
    "ActivityGoneError": "golem_actors.actors.activity",
    "Backoff": "golem_actors.policy.supervision",
    "Metrics": "golem_actors.metrics",
    "RestartIntensity": "golem_actors.policy.supervision",
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
    "GolemOptions": "golem_actors.golem",
    "InstanceSnapshot": "golem_actors.service",
    "InstanceStoppingError": "golem_actors.actors.context",
    "LeastExpensiveLinearPayu": "golem_actors.policy.scoring",
    "OfferScorer": "golem_actors.policy.scoring",
    "OutputLine": "golem_actors.output",
    "RestartType": "golem_actors.policy.supervision",
    "Script": "golem_actors.exescript",
    "ServiceActor": "golem_actors.service",
    "ServiceDefinitionError": "golem_actors.service",
    "ServiceHandle": "golem_actors.service",
    "ServiceState": "golem_actors.policy.lifecycle",
    "Strategy": "golem_actors.policy.supervision",
    "SupervisorPolicy": "golem_actors.policy.supervision",
    "VmPayload": "golem_actors.policy.payload",
    "WorkContext": "golem_actors.actors.context",
    "Task": "golem_actors.tasks.model",
    "TaskDefinitionError": "golem_actors.tasks.model",
    "TaskOutput": "golem_actors.tasks.model",
    "TaskResult": "golem_actors.tasks.model",
    "TaskRun": "golem_actors.tasks.run",
    "TaskSummary": "golem_actors.tasks.summary",
    "execute_tasks": "golem_actors.golem",
}
# Old name -> its new one: still served, with a DeprecationWarning.
_DEPRECATED = {"Summary": "TaskSummary"}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        warnings.warn(
            f"golem_actors.{name} is deprecated: use golem_actors.{new}",
            DeprecationWarning,
            stacklevel=2,
        )
        name = new
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'golem_actors' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__version__ = "0.1.0"

__all__ = [
    "ActivityGoneError",
    "ArgumentError",
    "Backoff",
    "BatchResult",
    "BatchTimeoutError",
    "BudgetSpentError",
    "Capture",
    "Cluster",
    "CommandFailedError",
    "CommandOutcome",
    "ConfigError",
    "DemandError",
    "Event",
    "EventBus",
    "EventLogError",
    "Golem",
    "GolemActorsError",
    "GolemError",
    "GolemOptions",
    "ImageRegistryError",
    "InstanceSnapshot",
    "InstanceStoppingError",
    "JournalError",
    "LeastExpensiveLinearPayu",
    "Metrics",
    "MissingExtraError",
    "OfferScorer",
    "OutputLine",
    "PayloadError",
    "RecoveryError",
    "RegistryResolver",
    "RestartIntensity",
    "RestartType",
    "Script",
    "ServiceActor",
    "ServiceDefinitionError",
    "ServiceHandle",
    "ServiceState",
    "StatusServer",
    "StorageError",
    "Strategy",
    "SupervisorPolicy",
    "Task",
    "TaskDefinitionError",
    "TaskOutput",
    "TaskResult",
    "TaskRun",
    "TaskSummary",
    "VmPayload",
    "WorkContext",
    "YagnaError",
    "__version__",
    "execute_tasks",
]
