"""``Cluster``: what ``Golem.run_service`` returns — N instances of one service, one supervisor.

A handle per instance survives its restarts, so callers keep one object to wait on and stop.
``scale(n)`` grows or shrinks the cluster while it runs (``yapapi``'s ``spawn_instances``, both
ways); ``handles`` then lists the instances it keeps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from typing import Any

import pykka

from golem_actors.actors.supervisor import ClusterState, Scale, StopCluster
from golem_actors.policy.lifecycle import ServiceState
from golem_actors.service import InstanceSnapshot, ServiceHandle

__all__ = ["Cluster"]

log = logging.getLogger(__name__)

_STOP_TIMEOUT = 10.0  # the supervisor itself, once its instances are stopped


@dataclass
class Cluster:
    """N instances of one service under one supervisor; handles survive restarts."""

    name: str
    handles: list[ServiceHandle]
    supervisor: pykka.ActorRef[Any]
    state: ClusterState

    @property
    def escalated(self) -> str | None:
        return self.state.escalated

    def snapshots(self) -> list[InstanceSnapshot]:
        return [handle.snapshot() for handle in self.handles]

    def wait_running(self, timeout: float) -> bool:
        """True once every instance is running (False on timeout or escalation)."""
        deadline = time.monotonic() + timeout
        for handle in self.handles:
            left = deadline - time.monotonic()
            if left <= 0 or not handle.wait_for(ServiceState.RUNNING, timeout=left):
                return False
            if self.state.escalated:
                return False
        return True

    def scale(
        self, n: int, *, params: Mapping[str, Any] | None = None, timeout: float = 10.0
    ) -> list[ServiceHandle]:
        """Run ``n`` instances from now on; returns the handles kept (also in ``handles``).

        Growing starts new instances (with ``params``, default the first instance's); shrinking
        stops the newest ones cleanly (``shutdown``, agreement terminated; their handles end
        ``terminated``). Raises ``ValueError`` for a bad ``n``, ``RuntimeError`` when the
        cluster has stopped or escalated.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(
                f"scale takes a whole number of instances >= 1, got {n!r} (cluster.stop() ends all)"
            )
        if params is not None and not isinstance(params, Mapping):
            raise ValueError(f"scale params must be a mapping, got {type(params).__name__}")
        future: Future[list[ServiceHandle]] = Future()
        try:
            self.supervisor.tell(Scale(n, future, params))
            self.handles = future.result(timeout)
        except pykka.ActorDeadError:
            raise RuntimeError(f"cluster {self.name} cannot scale: it has stopped") from None
        except FutureTimeoutError:
            raise RuntimeError(f"cluster {self.name} did not answer within {timeout:g} s") from None
        return list(self.handles)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop every instance (terminating its agreement), then the supervisor itself."""
        future: Future[None] = Future()
        try:
            self.supervisor.tell(StopCluster(future))
            future.result(timeout)
        except (pykka.ActorDeadError, FutureTimeoutError):
            log.warning("cluster %s did not stop within %.0f s", self.name, timeout)
        try:
            self.supervisor.stop(timeout=_STOP_TIMEOUT)
        except pykka.Timeout:
            log.warning("the supervisor of %s did not stop in time", self.name)
