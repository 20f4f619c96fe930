"""Names that moved keep working for a while, each with a DeprecationWarning saying where to."""

from __future__ import annotations

import importlib

import pytest

import golem_actors
from golem_actors.golem import execute_tasks
from golem_actors.tasks.model import Task
from golem_actors.tasks.run import TaskRun
from golem_actors.tasks.summary import TaskSummary, TaskSummaryBuilder


def test_the_task_summary_was_called_summary() -> None:
    with pytest.warns(DeprecationWarning, match="golem_actors.TaskSummary"):
        assert golem_actors.Summary is TaskSummary
    assert "Summary" not in golem_actors.__all__  # `import *` does not warn
    assert golem_actors.TaskSummary is TaskSummary


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Task", Task),
        ("TaskRun", TaskRun),
        ("Summary", TaskSummary),
        ("SummaryBuilder", TaskSummaryBuilder),
        ("execute_tasks", execute_tasks),
    ],
)
def test_the_old_task_module_names_still_resolve(old: str, new: object) -> None:
    package = importlib.import_module("golem_actors.tasks")
    with pytest.warns(DeprecationWarning, match=f"golem_actors.tasks.{old} is deprecated"):
        assert getattr(package, old) is new


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    package = importlib.import_module("golem_actors.tasks")
    with pytest.raises(AttributeError, match="no_such_name"):
        package.no_such_name  # noqa: B018
