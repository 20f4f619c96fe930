"""What the pieces of a provider agent share, as explicit objects the agent hands to each.

- ``Context``: who the provider is, its fault knobs, its stop signal, its worker pool and its
  status file — the plumbing every loop needs, and nothing that changes while it runs.
- ``Ledger``: what the provider has on offer and under way — its offer, the agreements it approved
  and has not invoiced yet (each with its books), the activities running under them. The only
  mutable state more than one piece touches; each piece writes its own part.
- ``Status``: ``status.json``, rewritten from the ledger after every change ``localnet status``
  shows (``localnet up`` waits for its "ready").
- ``ExeUnit`` / ``ExeUnitFactory``: what the agent needs of an exe-unit (one per activity).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from golem_actors.localnet.faults import FaultFile, Faults
from golem_actors.localnet.gsb import GsbClient
from golem_actors.localnet.offer import ProviderSpec
from golem_actors.localnet.provider.books import AgreementBook
from golem_actors.localnet.provider.config import ProviderConfig
from golem_actors.yagna import ApiConfig, YagnaClient
from golem_actors.yagna.models import Agreement

__all__ = ["POLL", "Context", "ExeUnit", "ExeUnitFactory", "Ledger", "Status"]

log = logging.getLogger(__name__)

POLL = 5.0  # long-poll seconds: short enough to notice a stop promptly


class ExeUnit(Protocol):
    """What the agent needs of an exe-unit (``exeunit.ExeUnit`` is the real one)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def cpu_seconds(self) -> float: ...
    @property
    def alive(self) -> bool:
        """False once the exe-unit has crashed: its usage reports stop, as a dead one's would."""


ExeUnitFactory = Callable[[str, Agreement, GsbClient, Callable[[], Faults]], ExeUnit]


@dataclass(frozen=True)
class _Approved:
    agreement: Agreement
    book: AgreementBook


class Ledger:
    """The provider's offer, open agreements and running activities; safe to share among threads.

    The market sets ``offer_id``; ``Agreements`` opens and closes agreements; ``Activities`` adds
    and removes exe-units; billing and status only read.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.offer_id: str | None = None
        self._open: dict[str, _Approved] = {}  # approved, not yet invoiced
        self._exeunits: dict[str, ExeUnit] = {}
        self._activity_agreement: dict[str, str] = {}

    # -- agreements --------------------------------------------------------------------------

    def agreement_count(self) -> int:
        with self._lock:
            return len(self._open)

    def open(self, agreement: Agreement, book: AgreementBook) -> None:
        with self._lock:
            self._open[agreement.agreement_id] = _Approved(agreement, book)

    def close(self, agreement_id: str) -> AgreementBook | None:
        """Forget an agreement; its book, or None if it was closed already (or never open)."""
        with self._lock:
            approved = self._open.pop(agreement_id, None)
        return approved.book if approved else None

    def book(self, agreement_id: str) -> AgreementBook | None:
        approved = self._open.get(agreement_id)
        return approved.book if approved else None

    def agreement(self, agreement_id: str) -> Agreement | None:
        approved = self._open.get(agreement_id)
        return approved.agreement if approved else None

    def books(self) -> list[tuple[str, AgreementBook]]:
        with self._lock:
            return [(agreement_id, a.book) for agreement_id, a in self._open.items()]

    # -- activities --------------------------------------------------------------------------

    def link_activity(self, activity_id: str, agreement_id: str) -> None:
        self._activity_agreement[activity_id] = agreement_id

    def agreement_of(self, activity_id: str) -> str:
        """The agreement an activity was created under ("" for one this provider never ran)."""
        return self._activity_agreement.get(activity_id, "")

    def add_exeunit(self, activity_id: str, exeunit: ExeUnit) -> None:
        with self._lock:
            self._exeunits[activity_id] = exeunit

    def exeunit(self, activity_id: str) -> ExeUnit | None:
        return self._exeunits.get(activity_id)

    def pop_exeunit(self, activity_id: str) -> ExeUnit | None:
        with self._lock:
            return self._exeunits.pop(activity_id, None)

    def exeunits(self) -> list[ExeUnit]:
        with self._lock:
            return list(self._exeunits.values())

    def activity_count(self) -> int:
        with self._lock:
            return len(self._exeunits)


class Status:
    """``<state_dir>/status.json``: the provider's pid, offer and counts, read by ``localnet``."""

    def __init__(self, state_dir: Path, name: str, node_id: str, ledger: Ledger) -> None:
        self._dir = state_dir
        self._name = name
        self._node_id = node_id
        self._ledger = ledger

    def write(self, state: str = "ready") -> None:
        status = {
            "name": self._name,
            "pid": os.getpid(),
            "node_id": self._node_id,
            "offer_id": self._ledger.offer_id,
            "state": state,
            "agreements": self._ledger.agreement_count(),
            "activities": self._ledger.activity_count(),
        }
        # Several loops write it: each through its own temporary file, so that one's rename
        # never finds the other's already gone (which stopped a provider at 1,000 agreements).
        tmp = self._dir / f"status.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(status))
        tmp.replace(self._dir / "status.json")


class _Dated(Protocol):
    @property
    def event_date(self) -> dt.datetime: ...


E = TypeVar("E", bound=_Dated)


@dataclass(frozen=True)
class Context:
    """The plumbing the agent's loops share; it holds no state of the provider's business."""

    config: ProviderConfig
    faults: FaultFile
    stop: threading.Event
    status: Status
    pool: ThreadPoolExecutor  # blocking work that must not stall an event stream

    @property
    def spec(self) -> ProviderSpec:
        return self.config.spec

    @property
    def name(self) -> str:
        return self.config.spec.name

    def yagna(self) -> YagnaClient:
        """A client of its own: each loop's long-polls hold a connection."""
        return YagnaClient(ApiConfig(app_key=self.config.app_key, api_url=self.config.api_url))

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        """Run blocking work off the event threads; dropped once the provider is stopping."""
        if not self.stop.is_set():
            with contextlib.suppress(RuntimeError):  # the pool shut down in between
                self.pool.submit(fn, *args)

    def hung(self) -> bool:
        """While hung, every loop idles without touching yagna, like a frozen process."""
        if self.faults.read().hang:
            self.stop.wait(0.2)
            return True
        return False

    def crash_if(self, point: str) -> None:
        if self.faults.read().crash_at == point:
            log.warning("%s: crashing at %s (fault injected)", self.name, point)
            os._exit(137)

    def follow(
        self,
        fetch: Callable[[YagnaClient, dt.datetime], Sequence[E]],
        handle: Callable[[E], None],
    ) -> None:
        """Long-poll one of yagna's event streams until stop, handling each event in order.

        yagna's ``afterTimestamp`` filter is strict, so each poll passes the newest event date
        seen; the stream starts a second before now.
        """
        after = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        with self.yagna() as yagna:
            while not self.stop.is_set():
                if self.hung():
                    continue
                for event in fetch(yagna, after):
                    after = max(after, event.event_date)
                    handle(event)
