"""Bad input is refused with an error that names the problem, before any money is committed."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from golem_actors.golem import Golem, GolemError
from golem_actors.journal import MAGIC
from golem_actors.localnet.apifaults import FaultPlan
from golem_actors.runner import run_directory
from golem_actors.yagna import ApiConfig

# No yagna listens here: every check below must fail before one is needed.
NOWHERE = ApiConfig(app_key="k", api_url="http://127.0.0.1:9")


@pytest.mark.parametrize("budget", ["abc", "-1", "0", "NaN", "Infinity", ""])
def test_bad_budgets(budget: str) -> None:
    with pytest.raises(GolemError, match="budget must be"):
        Golem(config=NOWHERE, budget=budget)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"not a journal at all", "not a golem-actors journal"),
        (MAGIC + b"\xff\xff\xff\xff" + b"\x00" * 64, "damaged: an impossible length"),
    ],
)
def test_an_unreadable_journal_stops_the_start(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    (tmp_path / "journal.gaj").write_bytes(content)
    golem = Golem(config=NOWHERE, journal=tmp_path)
    with pytest.raises(GolemError, match=problem) as err:
        golem.start()  # before yagna is even asked: no allocation was made
    assert str(tmp_path / "journal.gaj") in str(err.value)
    assert golem.allocation is None


def test_a_run_dir_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    args = argparse.Namespace(run_dir=blocker, resume=False, data_dir=None)
    with pytest.raises(GolemError, match="is not a directory"):
        run_directory(args)


def test_resume_with_nothing_to_resume(tmp_path: Path) -> None:
    args = argparse.Namespace(run_dir=None, resume=True, data_dir=tmp_path)
    with pytest.raises(GolemError, match="no run to resume"):
        run_directory(args)


def test_bad_fault_plans() -> None:
    with pytest.raises(ValueError, match="probability"):
        FaultPlan(rate=2)
