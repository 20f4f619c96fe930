"""A provider agent process as the network sees it: its spec, node, pid, state and status."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from golem_actors.localnet.faults import FaultFile
from golem_actors.localnet.offer import ProviderSpec

__all__ = ["ProviderProcess"]


@dataclass
class ProviderProcess:
    """One running provider agent, as the network sees it."""

    spec: ProviderSpec
    node_id: str
    state_dir: Path
    process: subprocess.Popen[bytes] | None = None
    started_ms: int = 0  # its offer's AGENT_STARTED

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def state(self) -> str:
        if self.process is None:
            return "stopped"
        code = self.process.poll()
        if code is None:
            return "hung" if FaultFile(self.state_dir / "faults.json").read().hang else "running"
        return f"exited ({code})"

    def status(self) -> dict[str, Any]:
        try:
            own = json.loads((self.state_dir / "status.json").read_text())
        except (OSError, ValueError):
            own = {}
        return {
            "name": self.name,
            "node_id": self.node_id,
            "pid": self.pid,
            "state": self.state,
            "offer_id": own.get("offer_id"),
            "agreements": own.get("agreements", 0),
            "activities": own.get("activities", 0),
            "cpu_threads": self.spec.cpu_threads,
            "mem_gib": self.spec.mem_gib,
            "prices": {
                "start": str(self.spec.start_price),
                "duration_sec": str(self.spec.price_duration_sec),
                "cpu_sec": str(self.spec.price_cpu_sec),
            },
        }
