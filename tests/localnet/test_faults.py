"""Fault knobs and the file that carries them to a running provider. No sleeps: mtimes are set."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from golem_actors.localnet.faults import CRASH_POINTS, FaultFile, Faults

SECOND_NS = 1_000_000_000


def bump_mtime(path: Path, seconds: int = 1) -> None:
    """Move the file's mtime on, so a reader sees a change even on a coarse-clock filesystem."""
    mtime = path.stat().st_mtime_ns + seconds * SECOND_NS
    os.utime(path, ns=(mtime, mtime))


# --- Faults ---------------------------------------------------------------------------------------


def test_the_default_is_a_well_behaved_provider():
    f = Faults()
    assert f.crash_at is None
    assert not f.hang
    assert not f.reject_proposals
    assert f.terminate_after is None
    assert f.overcharge == 1.0
    assert f.exec_delay == 0.0
    assert f.crash_exeunit_at_command is None


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_every_crash_point_is_accepted(point: str):
    assert Faults(crash_at=point).crash_at == point


@pytest.mark.parametrize(
    ("knobs", "knob"),
    [
        ({"crash_at": "nowhere"}, "crash_at"),
        ({"crash_at": ""}, "crash_at"),
        ({"terminate_after": -1.0}, "terminate_after"),
        ({"terminate_after": math.nan}, "terminate_after"),
        ({"terminate_after": math.inf}, "terminate_after"),
        ({"overcharge": 0.0}, "overcharge"),
        ({"overcharge": -2.0}, "overcharge"),
        ({"overcharge": math.nan}, "overcharge"),
        ({"overcharge": math.inf}, "overcharge"),
        ({"exec_delay": -0.5}, "exec_delay"),
        ({"exec_delay": math.nan}, "exec_delay"),
        ({"exec_delay": math.inf}, "exec_delay"),
    ],
)
def test_validation_errors_name_the_knob(knobs: dict[str, Any], knob: str):
    with pytest.raises(ValueError, match=knob):
        Faults(**knobs)
    with pytest.raises(ValueError, match=knob):
        Faults().with_changes(**knobs)
    with pytest.raises(ValueError, match=knob):
        Faults.from_dict(knobs)


def test_crash_at_error_lists_the_crash_points():
    with pytest.raises(ValueError, match="crash_at") as info:
        Faults(crash_at="nowhere")
    assert all(point in str(info.value) for point in CRASH_POINTS)
    assert "'nowhere'" in str(info.value)


def test_edge_values_are_accepted():
    f = Faults(terminate_after=0.0, overcharge=1e-6, exec_delay=0.0, crash_exeunit_at_command=0)
    assert f.terminate_after == 0.0
    assert f.overcharge == 1e-6


def test_from_dict_rejects_unknown_knobs_naming_them():
    with pytest.raises(ValueError, match="unknown fault knob") as info:
        Faults.from_dict({"hang": True, "explode": True, "melt": 1})
    message = str(info.value)
    assert "explode" in message
    assert "melt" in message
    assert "hang" in message  # listed among the known ones


def test_from_dict_builds_faults_and_round_trips():
    f = Faults.from_dict({"hang": True, "overcharge": 3.0})
    assert f == Faults(hang=True, overcharge=3.0)
    assert Faults.from_dict({}) == Faults()
    assert Faults.from_dict(asdict(f)) == f


def test_with_changes_keeps_the_other_knobs():
    f = Faults(hang=True, overcharge=2.0).with_changes(exec_delay=1.5)
    assert f == Faults(hang=True, overcharge=2.0, exec_delay=1.5)


# --- FaultFile ------------------------------------------------------------------------------------


def test_a_missing_file_means_no_faults(tmp_path: Path):
    assert FaultFile(tmp_path / "p1" / "faults.json").read() == Faults()


def test_write_read_round_trip(tmp_path: Path):
    path = tmp_path / "p1" / "faults.json"  # the directory does not exist yet
    knobs = Faults(crash_at="exec", hang=True, overcharge=2.5, terminate_after=30.0)
    FaultFile(path).write(knobs)
    assert FaultFile(path).read() == knobs
    assert json.loads(path.read_text()) == asdict(knobs)


def test_a_change_is_seen_on_the_next_read(tmp_path: Path):
    path = tmp_path / "faults.json"
    writer, reader = FaultFile(path), FaultFile(path)
    writer.write(Faults(hang=True))
    assert reader.read() == Faults(hang=True)
    writer.write(Faults(overcharge=3.0))
    bump_mtime(path)
    assert reader.read() == Faults(overcharge=3.0)
    path.unlink()
    assert reader.read() == Faults()  # removed: back to no faults


def test_polling_an_unchanged_file_does_not_reparse_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "faults.json"
    FaultFile(path).write(Faults(hang=True))
    reader = FaultFile(path)
    assert reader.read().hang
    parsed = 0
    real_from_dict = Faults.from_dict

    def counting_from_dict(data: dict[str, Any]) -> Faults:
        nonlocal parsed
        parsed += 1
        return real_from_dict(data)

    monkeypatch.setattr(Faults, "from_dict", counting_from_dict)
    for _ in range(5):
        assert reader.read().hang
    assert parsed == 0
    FaultFile(path).write(Faults())
    bump_mtime(path)
    assert not reader.read().hang
    assert parsed == 1


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b'{"hang": fal',  # half written
        b"[1, 2, 3]",
        b"null",
        b'"hang"',
        b'{"hang": false, "explode": true}',  # unknown knob
        b'{"overcharge": -1}',  # invalid value
        b'{"overcharge": "lots"}',  # wrong type
        b"\xff\xfe{",  # not UTF-8
    ],
)
def test_a_corrupt_file_keeps_the_last_good_knobs(tmp_path: Path, garbage: bytes):
    path = tmp_path / "faults.json"
    good = Faults(hang=True, exec_delay=0.25)
    FaultFile(path).write(good)
    reader = FaultFile(path)
    assert reader.read() == good
    path.write_bytes(garbage)
    bump_mtime(path)
    assert reader.read() == good
    assert reader.read() == good
    # Once the file is good again, the new knobs are seen (the broken version was not "seen").
    FaultFile(path).write(Faults(overcharge=2.0))
    bump_mtime(path, 2)
    assert reader.read() == Faults(overcharge=2.0)


def test_a_corrupt_file_before_any_good_one_means_no_faults(tmp_path: Path):
    path = tmp_path / "faults.json"
    path.write_text("{not json")
    assert FaultFile(path).read() == Faults()


def test_writes_leave_no_temporary_file_behind(tmp_path: Path):
    path = tmp_path / "faults.json"
    fault_file = FaultFile(path)
    for n in range(3):
        fault_file.write(Faults(exec_delay=float(n)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faults.json"]
    assert list(tmp_path.glob("*.tmp")) == []


def test_a_write_that_dies_before_the_rename_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "faults.json"
    FaultFile(path).write(Faults(hang=True))
    before = path.read_text()

    def crash(*args: object) -> None:
        raise OSError("killed mid-write")

    monkeypatch.setattr(os, "replace", crash)  # Path.replace and Path.rename go through os
    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="killed"):
        FaultFile(path).write(Faults(overcharge=9.0, exec_delay=4.0))
    assert path.read_text() == before  # the knobs file was never written in place
    assert FaultFile(path).read() == Faults(hang=True)


knob_values = st.builds(
    Faults,
    crash_at=st.one_of(st.none(), st.sampled_from(CRASH_POINTS)),
    hang=st.booleans(),
    reject_proposals=st.booleans(),
    terminate_after=st.one_of(st.none(), st.floats(min_value=0, max_value=1e9)),
    overcharge=st.floats(min_value=1e-9, max_value=1e9),
    exec_delay=st.floats(min_value=0, max_value=1e6),
    crash_exeunit_at_command=st.one_of(st.none(), st.integers(min_value=0, max_value=1000)),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
@given(sequence=st.lists(knob_values, min_size=1, max_size=5))
def test_a_reader_always_sees_the_latest_write(tmp_path: Path, sequence: list[Faults]):
    path = tmp_path / "faults.json"
    writer, reader = FaultFile(path), FaultFile(path)
    for knobs in sequence:
        writer.write(knobs)
        bump_mtime(path)
        assert reader.read() == knobs
