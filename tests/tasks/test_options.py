"""A task run's options: typed keyword arguments, checked once, each error naming its field."""

from __future__ import annotations

import dataclasses
import inspect
from typing import assert_type

import pytest

from golem_actors import Golem, Task, TaskResult, TaskRun, WorkContext, execute_tasks
from golem_actors.policy.task_book import TaskPolicy
from golem_actors.tasks.model import TaskDefinitionError
from golem_actors.tasks.options import TaskOptions
from golem_actors.yagna import ApiConfig

# No yagna listens here: every check below must fail before one is needed.
NOWHERE = ApiConfig(app_key="k", api_url="http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("max_workers", 0, "max_workers must be a whole number >= 1"),
        ("max_workers", True, "max_workers must be a whole number >= 1"),
        ("task_timeout", 0, "task_timeout must be a finite number > 0"),
        ("task_timeout", float("nan"), "task_timeout must be a finite number > 0"),
        ("timeout", -1.0, "timeout must be a finite number > 0 or None"),
        ("max_retries", -1, "max_retries must be a whole number >= 0"),
        ("batch_size", 2.5, "batch_size must be a whole number >= 1"),
        ("policy", "fast", "policy must be a TaskPolicy"),
        ("progress", "yes", "progress must be a bool or None"),
        ("name", "", "name must be a non-empty string"),
    ],
)
def test_each_bad_option_is_named(field: str, value: object, problem: str) -> None:
    with pytest.raises(TaskDefinitionError, match=problem):
        TaskOptions(**{field: value})  # type: ignore[arg-type]


def test_max_retries_overrides_the_policy_s_own() -> None:
    policy = TaskPolicy(max_retries=7, speculate=False)
    options = TaskOptions(max_retries=1, policy=policy)
    assert options.task_policy() == dataclasses.replace(policy, max_retries=1)
    assert TaskOptions().task_policy() == TaskPolicy(max_retries=3)


@pytest.mark.parametrize("entry", [Golem.execute_tasks, execute_tasks])
def test_the_entry_points_take_every_option_with_its_default(entry: object) -> None:
    """Both entry points list the options as keywords (for type checkers and IDEs); their
    defaults are ``TaskOptions``'s, so the two cannot drift apart."""
    parameters = inspect.signature(entry).parameters  # type: ignore[arg-type]
    for field in dataclasses.fields(TaskOptions):
        assert parameters[field.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[field.name].default == field.default, field.name


def test_execute_tasks_checks_options_and_tasks_before_the_session_starts() -> None:
    with (
        pytest.raises(TaskDefinitionError, match="max_workers"),
        execute_tasks([Task(commands=[["/bin/true"]])], config=NOWHERE, max_workers=0),
    ):
        pass
    with (
        pytest.raises(TaskDefinitionError, match="no commands"),
        execute_tasks([Task(data=1)], config=NOWHERE),
    ):
        pass


def _typed_use(golem: Golem) -> None:
    """Never run: mypy checks that a run's data and result types reach its results."""

    def worker(ctx: WorkContext, task: Task[int]) -> str:
        return ctx.provider_name * task.data

    run = golem.execute_tasks([Task(data=n) for n in range(3)], worker, max_workers=2)
    assert_type(run, TaskRun[int, str])
    for done in run:
        assert_type(done, TaskResult[int, str])
        assert_type(done.result, str | None)
        assert_type(done.task.data, int)
