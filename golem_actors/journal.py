"""The run's journal on disk: append-only msgpack records, each framed so a crash cannot lie.

File layout: an 8-byte magic, then frames of ``length (u32 BE) | crc32 (u32 BE) | msgpack``. The
first record is the run header (``policy.journal.header``). Every decision is appended and fsynced
*before* it is sent to yagna, so after a kill -9 the journal knows at least as much as yagna does
about what this run decided ("sending" means: ask yagna whether it arrived).

Damage is told apart by where it is. A frame cut short at the end of the file, or a last frame
whose checksum fails, is a torn write of a crash: it is dropped (the file truncated) on open. A bad
frame with more data after it is not what a crash leaves behind: opening stops there and reports
the file, the byte offset and how many records are intact, rather than guess past it (``repair``
keeps a copy of the damaged file and truncates at the damage).

Compaction rewrites the state as a snapshot to a temporary file, fsyncs it, renames it over the
journal and fsyncs the directory: a crash at any point leaves either the old or the new journal.
An exclusive ``flock`` keeps two processes from writing one journal (the kernel drops it on kill).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import shutil
import struct
import threading
import uuid
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Self

import msgpack

from golem_actors.errors import GolemActorsError
from golem_actors.policy import journal as rec
from golem_actors.policy.journal import (
    AgreementStatus,
    DocStatus,
    JournalReplayError,
    JournalState,
    replay,
    snapshot,
)

__all__ = ["MAGIC", "Journal", "JournalError", "Scan", "frame", "scan"]

log = logging.getLogger(__name__)

MAGIC = b"GAJRNL\x00\x01"
_HEAD = struct.Struct(">II")
MAX_RECORD = 16 * 1024 * 1024  # a bigger length field is damage, not a record
DEFAULT_COMPACT_BYTES = 4 * 1024 * 1024


class JournalError(GolemActorsError, RuntimeError):
    """The journal cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Scan:
    """What the bytes after the magic hold: intact records up to ``good_end`` (an offset in the
    file), and, when something is wrong, what (``problem``) and whether it is a torn tail."""

    records: list[dict[str, Any]]
    good_end: int
    problem: str | None = None
    torn: bool = False


def frame(record: Mapping[str, Any]) -> bytes:
    payload = msgpack.packb(dict(record), use_bin_type=True)
    return bytes(_HEAD.pack(len(payload), zlib.crc32(payload)) + payload)


def scan(data: bytes, start: int = len(MAGIC)) -> Scan:  # noqa: PLR0911 - one per damage
    """Read frames from ``data[start:]`` (pure: the caller reads the file)."""
    records: list[dict[str, Any]] = []
    offset = start
    end = len(data)
    while offset < end:
        if end - offset < _HEAD.size:
            return Scan(records, offset, f"a frame header cut short at byte {offset}", torn=True)
        length, crc = _HEAD.unpack_from(data, offset)
        body = offset + _HEAD.size
        if length == 0 or length > MAX_RECORD:
            torn = body >= end  # nothing follows a bad header: a torn tail
            return Scan(records, offset, f"an impossible length {length} at byte {offset}", torn)
        if body + length > end:
            return Scan(records, offset, f"a record cut short at byte {offset}", torn=True)
        payload = data[body : body + length]
        if zlib.crc32(payload) != crc:
            torn = body + length == end  # the very last frame: a torn write
            return Scan(records, offset, f"a checksum mismatch at byte {offset}", torn=torn)
        try:
            record = msgpack.unpackb(payload, raw=False, strict_map_key=True)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
            return Scan(records, offset, f"undecodable record at byte {offset}: {exc}")
        if not isinstance(record, dict):
            return Scan(records, offset, f"a non-record value at byte {offset}")
        records.append(record)
        offset = body + length
    return Scan(records, offset)


class Journal:
    """One run's journal file. Thread-safe: actors append from their own threads."""

    def __init__(
        self,
        path: Path,
        fd: int,
        state: JournalState,
        *,
        size: int,
        resumed: bool,
        compact_bytes: int,
        dropped: int = 0,
    ) -> None:
        self.path = path
        self.state = state
        self.resumed = resumed  # the file held a run before this open
        self.dropped = dropped  # bytes of torn tail dropped on open
        self.compactions = 0
        self._fd = fd
        self._size = size
        self._compact_bytes = compact_bytes
        self._lock = threading.Lock()
        self._dirty = False

    # -- opening --------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        compact_bytes: int = DEFAULT_COMPACT_BYTES,
        repair: bool = False,
        now: dt.datetime | None = None,
    ) -> Journal:
        """Open (creating if absent) the journal at ``path``; resume it if it holds a run."""
        path = Path(path)
        if path.is_dir():
            raise JournalError(f"{path}: is a directory, not a journal file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(
                f"{path}: cannot create its directory {path.parent}: {exc.strerror}"
            ) from None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise JournalError(f"{path}: cannot open the journal: {exc.strerror}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise JournalError(f"{path}: the journal is in use by another process") from None
            return cls._load(path, fd, compact_bytes=compact_bytes, repair=repair, now=now)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def _load(
        cls, path: Path, fd: int, *, compact_bytes: int, repair: bool, now: dt.datetime | None
    ) -> Journal:
        try:
            data = _read_all(fd)
        except OSError as exc:
            raise JournalError(f"{path}: cannot read the journal: {exc.strerror}") from None
        if _never_written(data):
            # New, or a crash while it was being created: nothing was ever decided in it.
            state = JournalState()
            state.apply(rec.header(uuid.uuid4().hex, now or dt.datetime.now(dt.UTC)))
            journal = cls(path, fd, state, size=0, resumed=False, compact_bytes=compact_bytes)
            journal._rewrite([rec.header(state.run_id, dt.datetime.fromisoformat(state.created))])
            return journal
        if not data.startswith(MAGIC):
            raise JournalError(
                f"{path}: not a golem-actors journal (it starts with {data[:8]!r}, "
                f"expected {MAGIC!r})"
            )
        found = scan(data)
        dropped = 0
        if found.problem is not None:
            if not found.torn and not repair:
                raise JournalError(
                    f"{path}: damaged: {found.problem}, with {len(data) - found.good_end} bytes "
                    f"after it; the {len(found.records)} records before it are intact. "
                    "Keep the file for inspection; opening it with repair keeps a copy and "
                    "drops everything from the damage on"
                )
            if not found.torn:
                shutil.copyfile(path, path.with_name(path.name + ".damaged"))
            dropped = len(data) - found.good_end
            log.warning("%s: dropping %d bytes: %s", path, dropped, found.problem)
            os.ftruncate(fd, found.good_end)
            os.fsync(fd)
        if not found.records:
            raise JournalError(f"{path}: no intact run header; the journal cannot be resumed")
        try:
            state = replay(found.records)
        except JournalReplayError as exc:
            raise JournalError(f"{path}: {exc}") from None
        os.lseek(fd, 0, os.SEEK_END)
        return cls(
            path,
            fd,
            state,
            size=found.good_end,
            resumed=True,
            compact_bytes=compact_bytes,
            dropped=dropped,
        )

    # -- writing --------------------------------------------------------------------------------

    def append(self, record: Mapping[str, Any], *, sync: bool = True) -> None:
        """Append one record; with ``sync`` (the default) it is on disk when this returns."""
        self.append_many([record], sync=sync)

    def append_many(self, records: Iterable[Mapping[str, Any]], *, sync: bool = True) -> None:
        batch = [dict(r) for r in records]
        data = b"".join(frame(r) for r in batch)
        with self._lock:
            if self._fd < 0:
                raise JournalError(f"{self.path}: the journal is closed")
            for record in batch:
                self.state.apply(record)
            _write_all(self._fd, data)
            self._size += len(data)
            self._dirty = True
            if sync:
                self._sync_locked()
            if self._size > self._compact_bytes:
                self._compact_locked()

    def sync(self) -> None:
        with self._lock:
            self._sync_locked()

    def compact(self) -> None:
        with self._lock:
            self._compact_locked()

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                self._sync_locked()
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def size(self) -> int:
        return self._size

    # -- what the runtime records ---------------------------------------------------------------

    def allocation(self, allocation_id: str, budget: Decimal) -> None:
        self.append(rec.allocation(allocation_id, budget))

    def agreement(self, agreement_id: str, status: AgreementStatus, provider_id: str = "") -> None:
        self.append(rec.agreement(agreement_id, status, provider_id))

    def activity(self, activity_id: str, agreement_id: str, requested_at: dt.datetime) -> None:
        self.append(rec.activity(activity_id, agreement_id, requested_at))

    def debit_note(
        self,
        debit_note_id: str,
        agreement_id: str,
        activity_id: str,
        amount: Decimal,
        status: DocStatus,
    ) -> None:
        self.append(rec.debit_note(debit_note_id, agreement_id, activity_id, amount, status))

    def invoice(
        self, invoice_id: str, agreement_id: str, amount: Decimal, status: DocStatus
    ) -> None:
        self.append(rec.invoice(invoice_id, agreement_id, amount, status))

    def task_done(self, task_id: str, result: Any) -> None:
        """A task finished with ``result`` (msgpack-able: a path, a small value): not re-run."""
        self.append(rec.task_done(task_id, result))

    def completed_tasks(self) -> dict[str, Any]:
        """Task id -> recorded result of every task this run completed (survives restarts)."""
        with self._lock:
            return dict(self.state.tasks)

    def mark_closed(self) -> None:
        self.append(rec.closed())

    def reopen(self, now: dt.datetime | None = None) -> None:
        """A resumed session starts: a new header with the same run id clears ``closed``."""
        at = now or dt.datetime.now(dt.UTC)
        self.append(rec.header(self.state.run_id, at))

    # -- internals ------------------------------------------------------------------------------

    def _sync_locked(self) -> None:
        if self._dirty and self._fd >= 0:
            os.fsync(self._fd)
            self._dirty = False

    def _compact_locked(self) -> None:
        before = self._size
        self._rewrite(snapshot(self.state))
        self.compactions += 1
        log.info("%s: compacted %d -> %d bytes", self.path, before, self._size)

    def _rewrite(self, records: list[dict[str, Any]]) -> None:
        """Replace the file by ``records`` atomically (temp file, fsync, rename, fsync dir)."""
        data = MAGIC + b"".join(frame(r) for r in records)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            _write_all(fd, data)
            os.fsync(fd)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody else can have it yet
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(self.path)
        _fsync_dir(self.path.parent)
        old, self._fd = self._fd, fd
        os.close(old)
        os.lseek(self._fd, 0, os.SEEK_END)
        self._size = len(data)
        self._dirty = False


def _never_written(data: bytes) -> bool:
    """Empty, or torn before its run header was whole: no decision can be in it."""
    if len(data) <= len(MAGIC):
        return MAGIC.startswith(data)
    found = scan(data) if data.startswith(MAGIC) else None
    return found is not None and not found.records and found.torn


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
