"""A few fault rounds on the session's localnet (the full set: ``python -m benchmarks.faults``).

Each round: a ``golem-actors run`` subprocess through the API fault proxy, with a provider fault,
killed with SIGKILL (or not), then the same run resumed; yagna is then asked what happened.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from benchmarks.faults import FIGURES, run_round
from golem_actors.journal import Journal
from golem_actors.localnet.network import LocalNet

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]


@pytest.mark.parametrize(("seed", "kill"), [(11, True), (12, False)])
def test_a_fault_round_loses_nothing(
    localnet: LocalNet, tmp_path: Path, seed: int, kill: bool
) -> None:
    result = run_round(localnet, seed, random.Random(seed), tmp_path, kill=kill)  # noqa: S311
    assert {name: result.figures[name] for name in FIGURES} == dict.fromkeys(FIGURES, 0), (
        result.line()
    )
    with Journal.open(tmp_path / f"round-{seed}" / "journal.gaj") as journal:
        assert journal.state.closed  # the resumed session ended cleanly
        assert journal.state.allocation_id is not None
