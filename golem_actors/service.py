"""The service API: subclass ``ServiceActor``; hold a ``ServiceHandle`` per instance.

    class Web(ServiceActor):
        payload = VmPayload(min_mem_gib=1)

        def start(self, ctx):
            super().start(ctx)                  # deploy + start
            ctx.run("/bin/sh", "-c", "nohup my-server &")

        def run(self, ctx):
            while True:
                ctx.run("/bin/check-server")
                ctx.sleep(10)

Each method runs in the instance's own worker thread and may block on ``ctx`` calls; they all
return early with ``InstanceStoppingError`` once the instance is stopping. A failure in any of
them ends the instance, and its supervisor starts a replacement on another provider.
"""

from __future__ import annotations

import inspect
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from golem_actors.errors import GolemActorsError
from golem_actors.policy.lifecycle import ServiceState
from golem_actors.policy.payload import VmPayload
from golem_actors.policy.supervision import RestartType

if TYPE_CHECKING:
    from golem_actors.actors.context import WorkContext

__all__ = ["InstanceSnapshot", "ServiceActor", "ServiceDefinitionError", "ServiceHandle"]


class ServiceDefinitionError(GolemActorsError, TypeError):
    """A service class does not implement the API; the message says what is wrong."""


class ServiceActor:
    """Base class of user services. Override ``start``, ``run``, ``shutdown``, ``health``."""

    #: What the instances need from a provider; None = the provider's default image (localnet).
    payload: ClassVar[VmPayload | None] = None
    #: Whether an instance that ended is started again (see ``RestartType``).
    restart_type: ClassVar[RestartType | None] = None

    def __init__(self, **params: Any) -> None:
        self.params = params

    def start(self, ctx: WorkContext) -> None:
        """Bring the service up. The default deploys the image and starts the container."""
        ctx.deploy_and_start()

    def run(self, ctx: WorkContext) -> None:
        """The service's life; returning means its work is done. The default runs until stopped."""
        ctx.wait_until_stopped()

    def shutdown(self, ctx: WorkContext) -> None:
        """Runs before the activity is destroyed on a graceful stop (not after a failure)."""

    def health(self, ctx: WorkContext) -> bool:  # noqa: ARG002 - subclasses use ctx
        """An application-level check, run with every health check; False counts as a miss."""
        return True

    @classmethod
    def validate(cls) -> None:
        """Raise ``ServiceDefinitionError`` if the class cannot be run as a service."""
        for name in ("start", "run", "shutdown", "health"):
            method = getattr(cls, name, None)
            if not callable(method):
                raise ServiceDefinitionError(f"{cls.__qualname__}.{name} must be a method")
            if inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method):
                raise ServiceDefinitionError(
                    f"{cls.__qualname__}.{name} is async; golem-actors runs plain methods in "
                    f"their own thread: write `def {name}(self, ctx)` and call ctx directly"
                )
            try:
                inspect.signature(method).bind(None, None)
            except TypeError:
                signature = inspect.signature(method)
                raise ServiceDefinitionError(
                    f"{cls.__qualname__}.{name} must take (self, ctx), got {signature}"
                ) from None
        if cls.payload is not None and not isinstance(cls.payload, VmPayload):
            raise ServiceDefinitionError(
                f"{cls.__qualname__}.payload must be a VmPayload, got {type(cls.payload).__name__}"
            )


@dataclass(frozen=True)
class InstanceSnapshot:
    """One instance as seen at one moment (``ServiceHandle.snapshot()``, ``/status``)."""

    service: str
    instance: str
    state: ServiceState
    provider_id: str | None
    provider_name: str | None
    agreement_id: str | None
    activity_id: str | None
    restarts: int
    uptime_s: float
    cost: Decimal
    last_exit: str | None


class ServiceHandle:
    """A stable handle on one service instance; it survives restarts on other providers."""

    def __init__(self, service: str, instance: str, stopper: Any = None) -> None:
        self.service = service
        self.instance = instance
        self._lock = threading.Lock()
        self._state = ServiceState.PENDING
        self._provider_id: str | None = None
        self._provider_name: str | None = None
        self._agreement_id: str | None = None
        self._activity_id: str | None = None
        self._restarts = 0
        self._running_since: float | None = None
        self._cost = Decimal(0)
        self._agreement_costs: dict[str, Decimal] = {}  # over every incarnation
        self._last_exit: str | None = None
        self._changed = threading.Condition(self._lock)
        self._stopper = stopper

    def __repr__(self) -> str:
        snap = self.snapshot()
        return f"<ServiceHandle {self.instance} {snap.state.value} on {snap.provider_name}>"

    # -- read side --------------------------------------------------------------------------

    @property
    def state(self) -> ServiceState:
        return self._state

    @property
    def provider_id(self) -> str | None:
        return self._provider_id

    @property
    def agreement_id(self) -> str | None:
        return self._agreement_id

    @property
    def activity_id(self) -> str | None:
        return self._activity_id

    @property
    def restarts(self) -> int:
        return self._restarts

    def snapshot(self) -> InstanceSnapshot:
        with self._lock:
            uptime = time.monotonic() - self._running_since if self._running_since else 0.0
            return InstanceSnapshot(
                self.service,
                self.instance,
                self._state,
                self._provider_id,
                self._provider_name,
                self._agreement_id,
                self._activity_id,
                self._restarts,
                uptime,
                self._cost,
                self._last_exit,
            )

    def wait_for(self, *states: ServiceState, timeout: float) -> bool:
        """Block until the instance is in one of ``states``; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._state not in states:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def stop(self) -> None:
        """Stop this instance for good (it is not restarted)."""
        if self._stopper is not None:
            self._stopper(self.instance)

    # -- write side (the runtime's actors) --------------------------------------------------

    def update(self, **changes: Any) -> None:
        with self._changed:
            for key, value in changes.items():
                if key == "state" and value is ServiceState.RUNNING and self._state is not value:
                    self._running_since = time.monotonic()
                elif (
                    key == "state"
                    and value is not ServiceState.UNRESPONSIVE
                    and value is not ServiceState.RUNNING
                ):
                    self._running_since = None
                setattr(self, f"_{key}", value)
            self._changed.notify_all()

    def agreement_cost(self, agreement_id: str, amount: Decimal) -> None:
        """What one of the instance's agreements has cost so far; ``cost`` sums them all, so
        it covers every incarnation (a restart does not make the money spent disappear)."""
        with self._changed:
            self._agreement_costs[agreement_id] = amount
            self._cost = sum(self._agreement_costs.values(), Decimal(0))

    def new_incarnation(self, last_exit: str) -> None:
        with self._changed:
            self._restarts += 1
            self._last_exit = last_exit
            self._state = ServiceState.PENDING
            self._provider_id = self._provider_name = None
            self._agreement_id = self._activity_id = None
            self._running_since = None
            self._changed.notify_all()
