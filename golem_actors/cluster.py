"""``Cluster``: what ``Golem.run_service`` returns — N instances of one service, one supervisor.

A handle per instance survives its restarts, so callers keep one object to wait on and stop.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from typing import Any

import pykka

from golem_actors.actors.supervisor import ClusterState, StopCluster
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
