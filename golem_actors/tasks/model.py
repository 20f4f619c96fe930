"""The task model: what a task is (``Task``), what it produced (``TaskOutput``), how it ended
(``TaskResult``), and the error for a task that cannot run as given.

A leaf: it imports nothing of the runtime, so every layer (the task book aside, which never sees
a task) may import it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["Input", "Task", "TaskDefinitionError", "TaskOutput", "TaskResult"]

Input = bytes | os.PathLike[str]


class TaskDefinitionError(ValueError):
    """A task (or the run's options) cannot be run as given; the message names the problem."""


def _remote(where: str, path: object) -> str:
    if not isinstance(path, str) or not path.startswith("/golem/") or ".." in path.split("/"):
        raise TaskDefinitionError(
            f"{where}: {path!r} must be an absolute path under /golem/ (e.g. /golem/input/x)"
        )
    return path


@dataclass(frozen=True)
class TaskOutput:
    """What a declarative task produced: per command its stdout/stderr, and the output files."""

    stdout: tuple[str | bytes | None, ...]
    stderr: tuple[str | bytes | None, ...]
    files: Mapping[str, bytes]


@dataclass(frozen=True)
class Task:
    """One job. ``data`` is yours; ``inputs`` map remote paths to bytes or local files, sent
    before the task runs; ``outputs`` are remote paths fetched after it succeeds.

    Declarative tasks give ``commands`` (argv lists run in order, no shell) and optionally
    ``parse(TaskOutput) -> result``; without ``parse`` the result is the last command's stdout.
    """

    data: Any = None
    id: str = ""
    inputs: Mapping[str, Input] = field(default_factory=dict)
    outputs: Sequence[str] = ()
    commands: Sequence[Sequence[str]] = ()
    parse: Callable[[TaskOutput], Any] | None = None

    @property
    def declarative(self) -> bool:
        return bool(self.commands)

    def validate(self, where: str) -> Task:  # noqa: C901 - one check per field
        """This task checked (and given ``where`` as its id if it has none)."""
        for remote, source in self.inputs.items():
            _remote(f"{where} input", remote)
            if isinstance(source, str):
                raise TaskDefinitionError(
                    f"{where} input {remote}: give bytes, or a pathlib.Path for a local file "
                    f"(a str is ambiguous), got {source[:40]!r}"
                )
            if not isinstance(source, bytes | bytearray) and not Path(source).is_file():
                raise TaskDefinitionError(f"{where} input {remote}: {source} is not a file")
        if isinstance(self.outputs, str):
            raise TaskDefinitionError(f"{where} outputs must be a list of paths, not a string")
        for remote in self.outputs:
            _remote(f"{where} output", remote)
        if isinstance(self.commands, str):
            raise TaskDefinitionError(f"{where} commands must be a list of argv lists")
        for i, argv in enumerate(self.commands):
            if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
                raise TaskDefinitionError(
                    f"{where} command {i} must be a non-empty list of strings, got {argv!r}"
                )
            if not argv[0].startswith("/"):
                raise TaskDefinitionError(
                    f"{where} command {i}: the program must be an absolute path, got {argv[0]!r}"
                )
        if self.parse is not None and not callable(self.parse):
            raise TaskDefinitionError(f"{where} parse must be callable, got {self.parse!r}")
        return self if self.id else replace(self, id=where)


@dataclass(frozen=True)
class TaskResult:
    """A task's one and only report: its result, or the error of its last attempt."""

    task: Task
    ok: bool
    result: Any = None
    error: BaseException | None = None
    attempts: int = 0
    provider_id: str | None = None
    provider_name: str | None = None
    files: Mapping[str, bytes] = field(default_factory=dict)
    seconds: float = 0.0  # of the attempt that decided it
