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

from golem_actors.actors.activity import ActivityGoneError, BatchTimeoutError
from golem_actors.actors.context import InstanceStoppingError, WorkContext
from golem_actors.events import Event, EventBus
from golem_actors.exescript import BatchResult, CommandFailedError, CommandOutcome, Script
from golem_actors.golem import Cluster, Golem, GolemError
from golem_actors.policy.lifecycle import ServiceState
from golem_actors.policy.payload import VmPayload
from golem_actors.policy.restart import RestartType, Strategy, SupervisorPolicy
from golem_actors.policy.scoring import LeastExpensiveLinearPayu, OfferScorer
from golem_actors.service import (
    InstanceSnapshot,
    ServiceActor,
    ServiceDefinitionError,
    ServiceHandle,
)

__version__ = "0.1.0"

__all__ = [
    "ActivityGoneError",
    "BatchResult",
    "BatchTimeoutError",
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
    "OfferScorer",
    "RestartType",
    "Script",
    "ServiceActor",
    "ServiceDefinitionError",
    "ServiceHandle",
    "ServiceState",
    "Strategy",
    "SupervisorPolicy",
    "VmPayload",
    "WorkContext",
    "__version__",
]
