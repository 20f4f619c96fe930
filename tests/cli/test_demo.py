"""`golem-actors demo` against a real yagna it starts and stops."""

from __future__ import annotations

import pytest

from golem_actors.cli import main


@pytest.mark.yagna
def test_demo_runs_against_a_real_yagna_and_stops_it(capsys: pytest.CaptureFixture[str]):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "identity   0x" in out
    assert "allocation" in out
    assert "yagna stopped" in out
