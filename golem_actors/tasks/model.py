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
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from golem_actors.errors import GolemActorsError

__all__ = ["D_co", "Input", "R_co", "Task", "TaskDefinitionError", "TaskOutput", "TaskResult"]

if TYPE_CHECKING:
    import typing_extensions

    # Type checkers read the defaults (PEP 696; typing_extensions ships with them): a bare
    # ``Task`` is ``Task[Any]``, a bare ``TaskResult`` is ``TaskResult[Any, Any]``.
    D_co = typing_extensions.TypeVar("D_co", covariant=True, default=Any)  # a task's data
    R_co = typing_extensions.TypeVar("R_co", covariant=True, default=Any)  # a task's result
else:  # Python 3.11's TypeVar has no default
    D_co = TypeVar("D_co", covariant=True)
    R_co = TypeVar("R_co", covariant=True)

Input = bytes | os.PathLike[str]


class TaskDefinitionError(GolemActorsError, ValueError):
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
class Task(Generic[D_co]):
    """One job. ``data`` is yours (``Task[D]``: its type); ``inputs`` map remote paths to bytes
    or local files, sent before the task runs; ``outputs`` are remote paths fetched after it
    succeeds.

    Declarative tasks give ``commands`` (argv lists run in order, no shell) and optionally
    ``parse(TaskOutput) -> result``; without ``parse`` the result is the last command's stdout.
    """

    data: D_co = cast("D_co", None)  # noqa: RUF009 - a no-op: a task without data carries None
    id: str = ""
    inputs: Mapping[str, Input] = field(default_factory=dict)
    outputs: Sequence[str] = ()
    commands: Sequence[Sequence[str]] = ()
    parse: Callable[[TaskOutput], object] | None = None

    @property
    def declarative(self) -> bool:
        return bool(self.commands)

    def validate(self, where: str) -> Task[D_co]:  # noqa: C901 - one check per field
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
class TaskResult(Generic[D_co, R_co]):
    """A task's one and only report: its result, or the error of its last attempt.

    ``TaskResult[D, R]``: a ``Task[D]`` whose worker returned ``R`` (``Any`` for declarative
    tasks, whose results are what their ``parse`` returns).
    """

    task: Task[D_co]
    ok: bool
    result: R_co | None = None
    error: BaseException | None = None
    attempts: int = 0
    provider_id: str | None = None
    provider_name: str | None = None
    files: Mapping[str, bytes] = field(default_factory=dict)
    seconds: float = 0.0  # of the attempt that decided it
