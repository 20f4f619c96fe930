"""``TaskOptions``: how a task run goes, checked once, when made, with an error naming the field.

``execute_tasks`` and ``Golem.execute_tasks`` take these as plain keyword arguments (so type
checkers and IDEs see every one) and build one ``TaskOptions``; the starter and the dispatcher
read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from golem_actors.policy.task_book import TaskPolicy
from golem_actors.tasks.model import TaskDefinitionError

__all__ = ["TaskOptions"]


def _whole(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TaskDefinitionError(f"{name} must be a whole number >= {minimum}, got {value!r}")


def _seconds(name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value > 0)
    ):
        raise TaskDefinitionError(f"{name} must be a positive number of seconds, got {value!r}")


@dataclass(frozen=True)
class TaskOptions:
    """A task run's options; ``TaskDefinitionError`` names the first bad one."""

    max_workers: int = 4  # providers working at once, one agreement each
    task_timeout: float = 300.0  # seconds an attempt may take before it is moved elsewhere
    timeout: float | None = None  # seconds the whole run may take; then the rest is cancelled
    max_retries: int = 3  # of one task, each on another provider (overrides the policy's)
    batch_size: int = 10  # declarative tasks packed into one ExeScript
    policy: TaskPolicy | None = None  # retries, bans, speculation (defaults: ``TaskPolicy()``)
    progress: bool | None = None  # a bar on stderr; None: when stderr is a terminal
    name: str = "tasks"  # names the run's demand and its workers' group

    def __post_init__(self) -> None:
        _whole("max_workers", self.max_workers, 1)
        _seconds("task_timeout", self.task_timeout)
        if self.timeout is not None:
            _seconds("timeout", self.timeout)
        _whole("batch_size", self.batch_size, 1)
        if self.policy is not None and not isinstance(self.policy, TaskPolicy):
            raise TaskDefinitionError(f"policy must be a TaskPolicy, got {self.policy!r}")
        if self.progress is not None and not isinstance(self.progress, bool):
            raise TaskDefinitionError(f"progress must be a bool or None, got {self.progress!r}")
        if not isinstance(self.name, str) or not self.name.strip():
            raise TaskDefinitionError(f"name must be a non-empty string, got {self.name!r}")
        self.task_policy()  # max_retries is checked there

    def task_policy(self) -> TaskPolicy:
        """The task book's policy: ``policy`` (or the default) with this run's ``max_retries``."""
        try:
            return replace(self.policy or TaskPolicy(), max_retries=self.max_retries)
        except ValueError as exc:
            raise TaskDefinitionError(str(exc)) from None
