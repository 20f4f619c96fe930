"""Two fault rounds on the session's localnet (the full set: ``python -m benchmarks.faults``).

Each round: a requestor subprocess through the API fault proxy, with a provider fault, killed
with SIGKILL (or not), then the same run resumed in-process; yagna is then asked what happened to
every agreement, invoice and debit note, and the journal whether every task ended exactly once.
The choices are pinned (not drawn) so the two rounds cover both halves of the harness quickly:
the API path with tasks killed mid-run, and the CLI path stopping on its own.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from benchmarks.faults import FIGURES, Fixed, run_round
from golem_actors.journal import Journal
from golem_actors.localnet.network import LocalNet

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]

ROUNDS = [
    # The API path (a service and tasks), SIGKILLed while working; a provider ends its agreement.
    Fixed(api_rate=0.06, fault="terminate", kill_at=6.0, mode="tasks", duration=10.0),
    # The CLI path (a service) ends on its own, with an overcharging provider.
    Fixed(api_rate=0.03, fault="overcharge", kill_at=0, mode="cli", duration=5.0),
]


@pytest.mark.parametrize("fixed", ROUNDS, ids=["api-tasks-killed", "cli-stops"])
def test_a_fault_round_loses_nothing(localnet: LocalNet, tmp_path: Path, fixed: Fixed) -> None:
    seed = 11
    result = run_round(localnet, seed, random.Random(seed), tmp_path, fixed)  # noqa: S311
    assert {name: result.figures[name] for name in FIGURES} == dict.fromkeys(FIGURES, 0), (
        result.line()
    )
    assert (result.killed_at is not None) == bool(fixed.kill_at), result.line()
    with Journal.open(tmp_path / f"round-{seed}" / "journal.gaj") as journal:
        assert journal.state.closed  # the resumed session ended cleanly
        assert journal.state.allocation_id is not None
        assert len(journal.completed_tasks()) == 12  # every task, once (checked above too)
