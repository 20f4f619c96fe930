"""Starting a run: every task checked (before any money is committed), each error naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from golem_actors.tasks.model import Task, TaskDefinitionError
from golem_actors.tasks.start import check_tasks


def worker(ctx: object, task: Task) -> None:
    pass


@pytest.mark.parametrize(
    ("task", "problem"),
    [
        (Task(inputs={"/etc/passwd": b"x"}), "under /golem/"),
        (Task(inputs={"/golem/input/x": "text"}), "ambiguous"),  # type: ignore[dict-item]
        (Task(inputs={"/golem/input/x": Path("/no/such/file")}), "not a file"),
        (Task(outputs="/golem/output/x"), "list of paths"),
        (Task(outputs=["/golem/../x"]), "under /golem/"),
        (Task(commands=["/bin/true"]), "non-empty list"),
        (Task(commands=[["true"]]), "absolute path"),
    ],
)
def test_bad_tasks_are_named(task: Task, problem: str) -> None:
    with pytest.raises(TaskDefinitionError, match=problem) as error:
        check_tasks([task], None)
    assert "task-0" in str(error.value)


def test_forms_are_not_mixed_and_ids_are_unique() -> None:
    with pytest.raises(TaskDefinitionError, match="no commands"):
        check_tasks([Task(data=1)], None)
    with pytest.raises(TaskDefinitionError, match="one or the other"):
        check_tasks([Task(commands=[["/bin/true"]])], worker)
    with pytest.raises(TaskDefinitionError, match="used twice"):
        check_tasks([Task(id="a"), Task(id="a")], worker)
    with pytest.raises(TaskDefinitionError, match="list of Task"):
        check_tasks(Task(), worker)  # type: ignore[arg-type]

    async def coroutine(ctx: object, task: Task) -> None:
        pass

    with pytest.raises(TaskDefinitionError, match="async"):
        check_tasks([Task()], coroutine)
    assert [t.id for t in check_tasks([Task(), Task(id="x")], worker)] == ["task-0", "x"]
