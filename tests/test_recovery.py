"""Recovery: what a crashed run left is asked of yagna, never guessed.

How the books take it on is tested in tests/payments/test_adoption.py."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from golem_actors.journal import Journal
from golem_actors.recovery import RecoveryError, recover
from golem_actors.yagna.errors import YagnaServerError
from golem_actors.yagna.models import Invoice


class _Flaky:
    """A yagna client whose invoice listing fails ``failures`` times first."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.market = SimpleNamespace(agreements=lambda **_: [], get_agreement=self._no)
        self.payment = SimpleNamespace(debit_notes=list, invoices=self._invoices)

    @staticmethod
    def _no(agreement_id: str) -> Any:
        raise AssertionError(f"no agreement to read, asked for {agreement_id}")

    def _invoices(self) -> list[Invoice]:
        if self.failures > 0:
            self.failures -= 1
            raise YagnaServerError("injected", method="GET", path="/invoices", status=500)
        return []


def test_a_failed_listing_is_asked_again_never_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("golem_actors.recovery.time.sleep", lambda _s: None)
    with Journal.open(tmp_path / "journal.gaj") as journal:
        assert recover(_Flaky(2), journal).pending == []  # type: ignore[arg-type]
        # Never answered: recovery refuses to go on blind (it used to return "nothing owed").
        with pytest.raises(RecoveryError, match=r"listing invoices: .*injected"):
            recover(_Flaky(10), journal)  # type: ignore[arg-type]
