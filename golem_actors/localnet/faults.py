"""Fault knobs of a localnet provider, set from Python or the CLI while it runs.

The knobs live in a small JSON file per provider that the provider re-reads when it changes, so
another process (``golem-actors localnet fault``) can inject a fault into a running network with no
control channel beyond the file system. Writes are atomic (write, then rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from golem_actors import arguments

__all__ = ["CRASH_POINTS", "FaultFile", "Faults"]

#: Where a provider can be told to crash (the process exits at once, like a kill -9).
CRASH_POINTS = ("now", "proposal", "agreement", "activity", "exec", "debit_note", "invoice")


@dataclass(frozen=True)
class Faults:
    """What a provider does wrong. The default is a well-behaved provider."""

    crash_at: str | None = None  # one of CRASH_POINTS
    hang: bool = False  # stop answering: no proposals, approvals, exec results or usage
    reject_proposals: bool = False  # reject every demand
    terminate_after: float | None = None  # end each agreement this many seconds after approval
    overcharge: float = 1.0  # multiply debit-note and invoice amounts by this
    exec_delay: float = 0.0  # seconds added to every command (a slow provider)
    crash_exeunit_at_command: int | None = None  # exe-unit dies when this command index starts

    def __post_init__(self) -> None:
        if self.crash_at is not None and self.crash_at not in CRASH_POINTS:
            points = ", ".join(CRASH_POINTS)
            raise ValueError(f"crash_at must be one of {points}, got {self.crash_at!r}")
        arguments.optional_number("terminate_after", self.terminate_after, ge=0)
        arguments.number("overcharge", self.overcharge, gt=0)
        arguments.number("exec_delay", self.exec_delay, ge=0)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faults:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault knob(s): {', '.join(unknown)}; known: {sorted(known)}")
        return cls(**data)

    def with_changes(self, **changes: Any) -> Faults:
        return replace(self, **changes)


class FaultFile:
    """The knobs file of one provider; cheap to poll (one ``stat`` when nothing changed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._faults = Faults()

    def write(self, faults: Faults) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".faults-", suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(asdict(faults)))
        Path(tmp).replace(self.path)  # atomic: readers see the old or the new knobs

    def read(self) -> Faults:
        """The current knobs; a missing file means no faults, a broken one keeps the last."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._seen, self._faults = None, Faults()
            return self._faults
        # Size and inode too: two writes within one coarse mtime step still differ in inode.
        seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if seen != self._seen:
            try:
                self._faults = Faults.from_dict(json.loads(self.path.read_text()))
                self._seen = seen
            except (OSError, ValueError, TypeError):
                pass  # half-written by a non-atomic writer: read again next time
        return self._faults
