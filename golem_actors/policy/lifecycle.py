"""The states of one service instance, and which moves between them are legal.

Kept apart from the actor so the table is the single source of truth: the ServiceActor, the
handle users hold, the status endpoint and the metrics all read states from here, and an
illegal move (a bug) fails loudly at the point it happens instead of showing up later as an
instance stuck in a state nothing leaves.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from golem_actors.errors import GolemActorsError

__all__ = ["ALLOWED", "InvalidTransition", "ServiceState", "transition"]


class ServiceState(enum.Enum):
    """Where one service instance is in its life (a closed set: a metric label)."""

    PENDING = "pending"  # waiting for an agreement
    STARTING = "starting"  # agreement and activity made; the service's start() runs
    RUNNING = "running"  # start() done; run() and health checks go on
    UNRESPONSIVE = "unresponsive"  # health checks missed; may recover, or be replaced
    STOPPING = "stopping"  # shutdown() runs, the agreement is being terminated
    TERMINATED = "terminated"  # ended cleanly (final)
    FAILED = "failed"  # ended by a failure (final)

    @property
    def final(self) -> bool:
        """Whether nothing can follow this state."""
        return not ALLOWED[self]

    @property
    def live(self) -> bool:
        """Whether the instance may still hold an agreement or be working."""
        return not self.final


_S = ServiceState

ALLOWED: Mapping[ServiceState, frozenset[ServiceState]] = MappingProxyType(
    {
        _S.PENDING: frozenset({_S.STARTING, _S.STOPPING, _S.FAILED}),
        _S.STARTING: frozenset({_S.RUNNING, _S.STOPPING, _S.FAILED}),
        _S.RUNNING: frozenset({_S.UNRESPONSIVE, _S.STOPPING, _S.FAILED}),
        _S.UNRESPONSIVE: frozenset({_S.RUNNING, _S.STOPPING, _S.FAILED}),
        # shutdown() itself may fail; the agreement is still terminated, the instance is failed.
        _S.STOPPING: frozenset({_S.TERMINATED, _S.FAILED}),
        _S.TERMINATED: frozenset(),
        _S.FAILED: frozenset(),
    }
)


class InvalidTransition(GolemActorsError, ValueError):  # noqa: N818  # the name says what is invalid
    """A move the lifecycle does not allow; a bug in whoever asked for it."""

    def __init__(self, source: ServiceState, target: ServiceState) -> None:
        self.source = source
        self.target = target
        allowed = ", ".join(sorted(s.value for s in ALLOWED[source])) or "nothing (final)"
        super().__init__(
            f"invalid service state transition {source.value} -> {target.value}; "
            f"from {source.value} only: {allowed}"
        )


def transition(source: ServiceState, target: ServiceState) -> ServiceState:
    """Return ``target`` if moving there from ``source`` is allowed, else raise."""
    if target not in ALLOWED[source]:
        raise InvalidTransition(source, target)
    return target
