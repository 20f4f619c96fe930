"""The journal: framing, torn tails, damage, compaction, resume, and the pure replay."""

from __future__ import annotations

import copy
import datetime as dt
import zlib
from decimal import Decimal
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golem_actors.journal import MAGIC, Journal, JournalError, frame, scan
from golem_actors.policy import journal as rec
from golem_actors.policy.journal import (
    AgreementStatus,
    DocStatus,
    JournalReplayError,
    replay,
    snapshot,
)

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def sample_records() -> list[dict[str, object]]:
    return [
        rec.header("run-1", T0),
        rec.allocation("alloc-1", Decimal(5)),
        rec.agreement("a1", AgreementStatus.CREATED, "prov-1"),
        rec.agreement("a1", AgreementStatus.APPROVED),
        rec.activity("act-1", "a1", T0),
        rec.debit_note("dn-1", "a1", "act-1", Decimal("0.1"), DocStatus.SENDING),
        rec.debit_note("dn-1", "a1", "act-1", Decimal("0.1"), DocStatus.ACCEPTED),
        rec.debit_note("dn-2", "a1", "act-1", Decimal("0.2"), DocStatus.SENDING),
        rec.debit_note("dn-3", "a1", "act-1", Decimal(9), DocStatus.REFUSED),
        rec.agreement("a1", AgreementStatus.TERMINATED),
        rec.invoice("inv-1", "a1", Decimal("0.25"), DocStatus.SENDING),
        rec.task_done("task-7", "/out/7.txt"),
        rec.agreement("a2", AgreementStatus.CREATED, "prov-2"),
    ]


# -- replay (pure) -----------------------------------------------------------------------------


def test_replay_builds_the_state() -> None:
    state = replay(sample_records())
    assert state.run_id == "run-1"
    assert state.allocation_id == "alloc-1"
    assert state.budget == Decimal(5)
    assert state.agreements["a1"].status is AgreementStatus.TERMINATED
    assert state.agreements["a1"].provider_id == "prov-1"  # kept from the created record
    assert [a.agreement_id for a in state.open_agreements()] == ["a2"]
    assert state.activities["act-1"].requested_at == T0
    # the latest non-refused decision per activity: dn-2 still being sent
    assert state.notes["act-1"].debit_note_id == "dn-2"
    assert state.notes["act-1"].status is DocStatus.SENDING
    assert state.invoices["a1"].status is DocStatus.SENDING
    assert state.tasks == {"task-7": "/out/7.txt"}
    assert not state.closed


def test_terminated_and_accepted_are_final() -> None:
    state = replay(
        [
            rec.header("r", T0),
            rec.agreement("a", AgreementStatus.TERMINATED),
            rec.agreement("a", AgreementStatus.APPROVED),  # late, out of order
            rec.invoice("i1", "a", Decimal(1), DocStatus.ACCEPTED),
            rec.invoice("i2", "a", Decimal(2), DocStatus.SENDING),  # never a second payment
        ]
    )
    assert state.agreements["a"].status is AgreementStatus.TERMINATED
    assert state.invoices["a"].invoice_id == "i1"


def test_a_new_header_reopens_a_closed_run() -> None:
    assert replay([rec.header("r", T0), rec.closed()]).closed
    state = replay([rec.header("r", T0), rec.closed(), rec.header("r", T0 + dt.timedelta(hours=1))])
    assert not state.closed
    assert state.run_id == "r"


@pytest.mark.parametrize(
    ("records", "problem"),
    [
        ([rec.agreement("a", AgreementStatus.CREATED)], "record 0 must be the run header"),
        (
            [rec.header("r", T0), {"k": "agr", "id": "a"}],
            r"record 1 \('agr'\) is malformed: KeyError",
        ),
        ([rec.header("r", T0), {"k": "agr", "id": "a", "s": "weird"}], "record 1"),
        (
            [rec.header("r", T0), {"k": "inv", "id": "i", "agr": "a", "amt": "-1", "s": "sending"}],
            "not a finite, non-negative",
        ),
        (
            [
                rec.header("r", T0),
                {"k": "dn", "id": "d", "agr": "a", "act": "x", "amt": "NaN", "s": "accepted"},
            ],
            "record 1",
        ),
        (
            [rec.header("r", T0), {"k": "act", "id": "x", "agr": "a", "at": "2025-01-01T00:00:00"}],
            "no timezone",
        ),
        ([rec.header("r", T0), [1, 2]], "record 1 is not a journal record"),
        ([{"k": "run", "v": 99, "run": "r", "at": "x"}], "newer than"),
    ],
)
def test_replay_names_the_malformed_record(records: list[object], problem: str) -> None:
    with pytest.raises(JournalReplayError, match=problem):
        replay(records)  # type: ignore[arg-type]


def test_unknown_kinds_are_skipped_and_counted() -> None:
    state = replay([rec.header("r", T0), {"k": "from-the-future", "x": 1}])
    assert state.skipped == 1
    assert replay(snapshot(state)).skipped == 1


def test_snapshot_replays_to_the_same_state() -> None:
    state = replay([*sample_records(), rec.closed()])
    assert replay(snapshot(state)) == state


_ids = st.sampled_from(["a", "b", "c"])
_amounts = st.decimals(min_value=0, max_value=100, places=3, allow_nan=False)
_record = st.one_of(
    st.builds(rec.agreement, _ids, st.sampled_from(list(AgreementStatus)), _ids),
    st.builds(rec.activity, st.sampled_from(["x", "y"]), _ids, st.just(T0)),
    st.builds(
        rec.debit_note,
        _ids,
        _ids,
        st.sampled_from(["x", "y"]),
        _amounts,
        st.sampled_from(list(DocStatus)),
    ),
    st.builds(rec.invoice, _ids, _ids, _amounts, st.sampled_from(list(DocStatus))),
    st.builds(rec.task_done, _ids, st.one_of(st.text(max_size=5), st.integers())),
    st.builds(rec.allocation, _ids, _amounts),
    st.just(rec.closed()),
)


@given(st.lists(_record, max_size=40))
def test_any_history_survives_a_snapshot(records: list[dict[str, object]]) -> None:
    state = replay([rec.header("r", T0), *records])
    assert replay(snapshot(state)) == state


# -- framing -----------------------------------------------------------------------------------


def test_scan_reads_what_frame_wrote() -> None:
    records = sample_records()
    data = MAGIC + b"".join(frame(r) for r in records)
    found = scan(data)
    assert found.problem is None
    assert found.records == records
    assert found.good_end == len(data)


def test_a_torn_tail_at_every_byte_offset_is_dropped_never_misread() -> None:
    records = sample_records()
    frames = [frame(r) for r in records]
    data = MAGIC + b"".join(frames)
    boundaries = [len(MAGIC)]
    for f in frames:
        boundaries.append(boundaries[-1] + len(f))
    for cut in range(len(MAGIC), len(data) + 1):
        found = scan(data[:cut])
        whole = sum(1 for b in boundaries[1:] if b <= cut)
        assert found.records == records[:whole], cut
        assert found.good_end == boundaries[whole], cut
        if cut in boundaries:
            assert found.problem is None, cut
        else:
            assert found.torn, (cut, found.problem)


def test_a_corrupted_last_record_is_a_torn_tail() -> None:
    frames = [frame(r) for r in sample_records()]
    data = bytearray(MAGIC + b"".join(frames))
    data[-1] ^= 0xFF
    found = scan(bytes(data))
    assert found.torn
    assert len(found.records) == len(frames) - 1


@given(st.data())
@settings(max_examples=60)
def test_a_flipped_byte_in_the_middle_stops_there(data: st.DataObject) -> None:
    records = sample_records()
    frames = [frame(r) for r in records]
    blob = bytearray(MAGIC + b"".join(frames))
    victim = data.draw(st.integers(0, len(frames) - 2))  # never the last frame
    start = len(MAGIC) + sum(len(f) for f in frames[:victim])
    pos = data.draw(st.integers(start + 8, start + len(frames[victim]) - 1))  # in the payload
    blob[pos] ^= data.draw(st.integers(1, 255))
    found = scan(bytes(blob))
    assert found.records == records[:victim]
    assert found.good_end == start
    assert found.problem is not None
    assert "checksum" in found.problem
    assert not found.torn


def test_an_impossible_length_mid_file_is_damage() -> None:
    frames = [frame(r) for r in sample_records()]
    blob = bytearray(MAGIC + b"".join(frames))
    blob[len(MAGIC) : len(MAGIC) + 4] = (0xFFFFFFFF).to_bytes(4, "big")
    found = scan(bytes(blob))
    assert found.records == []
    assert found.problem is not None
    assert "impossible length" in found.problem


def test_a_checksummed_non_record_is_reported() -> None:
    payload = msgpack.packb([1, 2, 3])
    blob = (
        MAGIC + len(payload).to_bytes(4, "big") + zlib.crc32(payload).to_bytes(4, "big") + payload
    )
    found = scan(blob)
    assert found.problem is not None
    assert "non-record" in found.problem


# -- the file ----------------------------------------------------------------------------------


def test_a_new_journal_has_a_header_and_resumes_with_the_same_run(tmp_path: Path) -> None:
    path = tmp_path / "run" / "journal.gaj"
    with Journal.open(path) as journal:
        assert not journal.resumed
        run_id = journal.state.run_id
        journal.allocation("alloc", Decimal(3))
        journal.agreement("a1", AgreementStatus.APPROVED, "p")
        journal.task_done("t1", {"path": "out/1"})
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # decisions are nobody else's business
    with Journal.open(path) as again:
        assert again.resumed
        assert again.state.run_id == run_id
        assert again.state.allocation_id == "alloc"
        assert again.completed_tasks() == {"t1": {"path": "out/1"}}


def test_a_torn_tail_on_disk_is_truncated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with Journal.open(path) as journal:
        journal.agreement("a1", AgreementStatus.APPROVED)
        good = journal.size
        journal.agreement("a2", AgreementStatus.APPROVED)
    with path.open("r+b") as f:
        f.truncate(good + 5)  # a crash in the middle of the second record
    with Journal.open(path) as journal:
        assert journal.dropped == 5
        assert set(journal.state.agreements) == {"a1"}
        journal.agreement("a3", AgreementStatus.CREATED)  # appends after the good part
    with Journal.open(path) as journal:
        assert set(journal.state.agreements) == {"a1", "a3"}
        assert journal.dropped == 0


def test_every_torn_length_on_disk_opens(tmp_path: Path) -> None:
    source = tmp_path / "src"
    with Journal.open(source) as journal:
        for i in range(3):
            journal.invoice(f"i{i}", f"a{i}", Decimal(i), DocStatus.ACCEPTED)
    data = source.read_bytes()
    for cut in range(len(data) + 1):
        path = tmp_path / f"cut{cut}"
        path.write_bytes(data[:cut])
        with Journal.open(path) as journal:
            assert set(journal.state.invoices) <= {"a0", "a1", "a2"}
        path.unlink()


def test_damage_in_the_middle_is_reported_not_guessed_past(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with Journal.open(path) as journal:
        journal.agreement("a1", AgreementStatus.APPROVED)
        first_end = journal.size
        journal.agreement("a2", AgreementStatus.APPROVED)
        journal.agreement("a3", AgreementStatus.APPROVED)
    blob = bytearray(path.read_bytes())
    blob[first_end + 10] ^= 0x55  # inside the a2 record
    path.write_bytes(bytes(blob))
    with pytest.raises(JournalError, match=r"j: damaged: a checksum mismatch at byte \d+") as err:
        Journal.open(path)
    assert "2 records before it are intact" in str(err.value)  # header + a1
    assert path.read_bytes() == bytes(blob)  # untouched
    with Journal.open(path, repair=True) as journal:
        assert set(journal.state.agreements) == {"a1"}
    assert (tmp_path / "j.damaged").read_bytes() == bytes(blob)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"hello world, not a journal", "not a golem-actors journal"),
        (b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64, "not a golem-actors journal"),
        (MAGIC + frame(rec.agreement("a", AgreementStatus.CREATED)), "must be the run header"),
    ],
)
def test_foreign_files_get_a_clear_error(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "journal.gaj"
    path.write_bytes(content)
    with pytest.raises(JournalError, match=problem) as err:
        Journal.open(path)
    assert str(path) in str(err.value)


def test_an_unreadable_journal_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    path = blocker / "journal.gaj"  # its "directory" is a file: no one can open it
    with pytest.raises(JournalError, match=f"{path}: cannot create its directory {blocker}"):
        Journal.open(path)


def test_a_directory_is_not_a_journal(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="is a directory"):
        Journal.open(tmp_path)


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with Journal.open(path), pytest.raises(JournalError, match="in use by another process"):
        Journal.open(path)


def test_a_closed_journal_refuses_appends(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j")
    journal.close()
    with pytest.raises(JournalError, match="closed"):
        journal.agreement("a", AgreementStatus.CREATED)


def test_compaction_keeps_the_state_and_bounds_the_file(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with Journal.open(path, compact_bytes=4096) as journal:
        journal.agreement("a1", AgreementStatus.APPROVED, "p")
        journal.activity("x", "a1", T0)
        for i in range(500):  # a long service run: notes supersede each other
            amount = Decimal(i) / 100
            journal.debit_note(f"dn{i}", "a1", "x", amount, DocStatus.SENDING)
            journal.debit_note(f"dn{i}", "a1", "x", amount, DocStatus.ACCEPTED)
        journal.task_done("t", 1)
        assert journal.compactions > 0
        assert journal.size <= 4096 + 200
        state = journal.state
    assert path.stat().st_size <= 4096 + 200
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left behind
    with Journal.open(path) as again:
        assert again.state == state
        assert again.state.notes["x"].debit_note_id == "dn499"


def test_compaction_on_demand_then_more_appends(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with Journal.open(path) as journal:
        for record in sample_records()[1:]:
            journal.append(record, sync=False)
        journal.sync()
        before = copy.deepcopy(journal.state)
        journal.compact()
        journal.agreement("a9", AgreementStatus.CREATED)
    with Journal.open(path) as again:
        assert again.state.agreements["a9"].status is AgreementStatus.CREATED
        del again.state.agreements["a9"]
        assert again.state == before
