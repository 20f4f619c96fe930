"""``TaskOptions``: how a task run goes, checked once, when made, with an error naming the field.

``execute_tasks`` and ``Golem.execute_tasks`` take these as plain keyword arguments (so type
checkers and IDEs see every one) and build one ``TaskOptions``; the starter and the dispatcher
read it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from golem_actors import arguments
from golem_actors.policy.task_book import TaskPolicy
from golem_actors.tasks.model import TaskDefinitionError

__all__ = ["TaskOptions"]


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
    stream_output: bool = False  # every command's output to the golem_actors.output log

    def __post_init__(self) -> None:
        arguments.whole("max_workers", self.max_workers, ge=1, error=TaskDefinitionError)
        arguments.number("task_timeout", self.task_timeout, gt=0, error=TaskDefinitionError)
        arguments.optional_number("timeout", self.timeout, gt=0, error=TaskDefinitionError)
        arguments.whole("batch_size", self.batch_size, ge=1, error=TaskDefinitionError)
        if self.policy is not None and not isinstance(self.policy, TaskPolicy):
            raise TaskDefinitionError(f"policy must be a TaskPolicy, got {self.policy!r}")
        if self.progress is not None and not isinstance(self.progress, bool):
            raise TaskDefinitionError(f"progress must be a bool or None, got {self.progress!r}")
        if not isinstance(self.stream_output, bool):
            raise TaskDefinitionError(f"stream_output must be a bool, got {self.stream_output!r}")
        if not isinstance(self.name, str) or not self.name.strip():
            raise TaskDefinitionError(f"name must be a non-empty string, got {self.name!r}")
        self.task_policy()  # max_retries is checked there

    def task_policy(self) -> TaskPolicy:
        """The task book's policy: ``policy`` (or the default) with this run's ``max_retries``."""
        try:
            return replace(self.policy or TaskPolicy(), max_retries=self.max_retries)
        except ValueError as exc:
            raise TaskDefinitionError(str(exc)) from None
