"""`golem-actors events FILE`: the timeline and the summary from a run's events file; and
`golem-actors run --events-file --stream-output` writing one on localnet."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest

from golem_actors import events as ev
from golem_actors.cli import main
from golem_actors.eventlog import EventLog
from golem_actors.localnet.network import LocalNet
from golem_actors.payments.decisions import Totals

EXAMPLES = Path(__file__).parents[2] / "examples"
P0 = "0x" + "a" * 40


def a_run(path: Path, *, totals: bool = True) -> None:
    bus = ev.EventBus()
    log = EventLog(path, budget=Decimal(2))
    log.attach(bus)
    for event in (
        ev.AgreementApproved(
            agreement_id="f" * 64,
            provider_id=P0,
            provider_name="provider-0",
            negotiation_seconds=0.5,
            at=1000.0,
        ),
        ev.InstanceStateChanged(
            service="S", instance="s-0", old="starting", new="running", provider_id=P0, at=1001.0
        ),
        ev.DebitNoteAccepted(
            debit_note_id="d", agreement_id="f" * 64, amount=Decimal("0.01"), at=1005.0
        ),
        ev.InstanceStateChanged(
            service="S", instance="s-0", old="running", new="terminated", provider_id=P0, at=1011.0
        ),
    ):
        bus.emit(event)
    d = Decimal
    log.close(Totals(d(2), d("0.01"), d("0.02"), d("0.02"), d("1.98")) if totals else None)


def test_the_timeline_then_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "events.jsonl"
    a_run(path)
    assert main(["events", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "# 4 events from 1970-01-01 (UTC); budget 2 GLM"
    assert lines[1].startswith("00:16:40.000    +0.000s  AgreementApproved ")
    assert "agreement_id=ffffffff… provider_id=0xaaaaaa… provider_name=provider-0" in lines[1]
    assert "+11.000s  InstanceStateChanged" in lines[4]
    row = next(line for line in lines if line.startswith("provider-0"))
    assert row.split()[1:4] == ["1", "10s", "0"]  # agreements, uptime, tasks
    assert "total cost 0.02 GLM; budget left 1.98 of 2 GLM" in out
    assert "no final totals" not in out


def test_filters_and_full_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "events.jsonl"
    a_run(path)
    assert main(["events", str(path), "--type", "DebitNoteAccepted", "--full-ids"]) == 0
    timeline = [line for line in capsys.readouterr().out.splitlines() if line[2:3] == ":"]
    assert len(timeline) == 1
    assert f"agreement_id={'f' * 64} amount=0.01" in timeline[0]
    assert main(["events", str(path), "--summary"]) == 0
    assert "AgreementApproved" not in capsys.readouterr().out


def test_a_killed_run_still_gets_its_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    a_run(path, totals=False)
    with path.open("a") as file:
        file.write('{"type": "Batch')
    assert main(["events", str(path), "--summary"]) == 0
    out = capsys.readouterr().out
    assert "total cost 0.01 GLM" in out  # from the debit note: no invoice, no totals
    assert "no final totals: the run did not stop cleanly" in out
    assert "the last line was cut off" in out


def test_a_missing_or_corrupt_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["events", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("this is not json\n")
    assert main(["events", str(bad)]) == 2
    assert "bad.jsonl:1: not an event" in capsys.readouterr().err


@pytest.mark.yagna
@pytest.mark.usefixtures("healthy_providers")
def test_run_writes_an_events_file_whose_summary_is_the_runs(
    localnet: LocalNet,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("YAGNA_APPKEY", localnet.app_key)
    path = tmp_path / "events.jsonl"
    output_log = logging.getLogger("golem_actors.output")
    try:
        code = main(
            [
                "run",
                f"{EXAMPLES / 'heartbeat.py'}:Heartbeat",
                "--yagna",
                localnet.api_url,
                "--duration",
                "6",
                "--budget",
                "1",
                "--no-table",
                "--events-file",
                str(path),
                "--stream-output",
            ]
        )
    finally:
        output_log.setLevel(logging.NOTSET)  # --stream-output set it
    out = capsys.readouterr().out
    assert code == 0, out
    run_summary = out[out.index("provider   ") : out.index("\n# paid")]
    # What each command printed, as it printed it: the heartbeat's `cat` of the beat file.
    printed = [r.getMessage() for r in caplog.records if r.name == "golem_actors.output"]
    assert any("heartbeat-0 [0 stdout] 1" in line for line in printed), printed[:5]

    assert main(["events", str(path)]) == 0
    read_out = capsys.readouterr().out
    assert run_summary in read_out  # the same summary, from the file alone
    for kind in ("DemandPublished", "AgreementApproved", "ActivityCreated", "InvoiceAccepted"):
        assert f"  {kind} " in read_out, kind
    assert "no final totals" not in read_out
    assert localnet.app_key not in path.read_text()
