"""The pool of negotiated drafts behind one demand, and which one a request gets (pure).

yagna never lets a proposal chain branch: one provider's draft makes one agreement, and the next
agreement with that provider needs a fresh chain, i.e. a fresh demand subscription. So a demand
is a set of subscriptions, each holding at most one draft per provider; when requests outnumber
the drafts left, several subscriptions are published at once (one per ``providers`` waiting
requests), and a subscription whose drafts are all used is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Candidate", "OfferPool", "Subscription"]

#: A fresh subscription is given this long to hear from providers before it may be dropped.
SUBSCRIPTION_GRACE_S = 5.0
#: How long a better-ranked provider's negotiation is waited for before settling for another.
NEGOTIATION_PATIENCE_S = 2.0


@dataclass
class Candidate:
    """One provider within one subscription: its offer, our counter, its draft once it answers."""

    provider_id: str
    provider_name: str
    initial: Any  # the provider's Initial proposal (a yagna Proposal)
    score: float
    our_counter: str | None = None
    our_properties: Mapping[str, Any] = field(default_factory=dict)
    draft: Any = None  # the provider's Draft answering our counter
    consumed: bool = False  # its draft made an agreement
    countered_at: float = 0.0

    def live(self, now: float, patience_s: float = NEGOTIATION_PATIENCE_S) -> bool:
        """Able to make an agreement: unused, and with a draft or still negotiating.

        A provider that has not answered our counter within the patience is not counted on (it
        may never answer); its draft is still taken if it comes.
        """
        if self.consumed:
            return False
        return self.draft is not None or now - self.countered_at < patience_s


@dataclass
class Subscription:
    demand_id: str
    created_at: float = 0.0
    candidates: dict[str, Candidate] = field(default_factory=dict)
    polling: bool = False

    def useful(self, blocked: AbstractSet[str], now: float) -> bool:
        """It still holds a candidate that is live and not blocked."""
        return any(c.live(now) and c.provider_id not in blocked for c in self.candidates.values())


@dataclass
class OfferPool:
    """Subscriptions of one demand and the provider penalties learnt from failures."""

    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    penalties: dict[str, float] = field(default_factory=dict)

    def candidates(self) -> Iterable[Candidate]:
        for sub in self.subscriptions.values():
            yield from sub.candidates.values()

    def find(self, demand_id: str, provider_id: str) -> Candidate | None:
        sub = self.subscriptions.get(demand_id)
        return sub.candidates.get(provider_id) if sub else None

    def providers(self) -> set[str]:
        return {c.provider_id for c in self.candidates()}

    def unused(self, now: float, blocked: AbstractSet[str] = frozenset()) -> int:
        """Candidates still able to make an agreement (see ``Candidate.live``)."""
        return sum(1 for c in self.candidates() if c.live(now) and c.provider_id not in blocked)

    def subscriptions_wanted(
        self,
        waiting: int,
        *,
        now: float,
        pending: int,
        cap: int,
        blocked: AbstractSet[str] = frozenset(),
    ) -> int:
        """How many more subscriptions to publish now for ``waiting`` requests.

        Each subscription yields about one draft per usable provider (``blocked``: excluded by
        every waiting request); ``pending`` are already being published. Never more than ``cap``
        live at once.
        """
        shortfall = waiting - self.unused(now, blocked)
        if shortfall <= 0:
            return 0
        per_sub = max(1, len(self.providers() - blocked))
        wanted = math.ceil(shortfall / per_sub) - pending
        room = cap - len(self.subscriptions) - pending
        return max(0, min(wanted, room))

    def spent_subscriptions(
        self, *, now: float, blocked: AbstractSet[str] = frozenset()
    ) -> list[str]:
        """Subscriptions with nothing usable left, to drop (never the newest, unless used up).

        A subscription past its grace period without an unused, unblocked candidate goes; the
        newest stays to keep listening unless every provider it heard from was used (then a
        fresh one replaces it when requests wait).
        """
        if not self.subscriptions:
            return []
        newest = max(self.subscriptions.values(), key=lambda s: s.created_at)
        spent = []
        for demand_id, sub in self.subscriptions.items():
            if sub is newest:
                used_up = bool(sub.candidates) and all(c.consumed for c in sub.candidates.values())
                if used_up:
                    spent.append(demand_id)
            elif now - sub.created_at >= SUBSCRIPTION_GRACE_S and not sub.useful(blocked, now):
                spent.append(demand_id)
        return spent

    def penalize(self, provider_id: str) -> None:
        """A provider that failed sinks in the ranking (halved each time), never excluded here."""
        self.penalties[provider_id] = self.penalties.get(provider_id, 1.0) * 0.5

    def pick(
        self,
        *,
        exclude: frozenset[str] | set[str],
        load: Mapping[str, int],
        now: float,
        patience_s: float = NEGOTIATION_PATIENCE_S,
    ) -> tuple[Candidate | None, bool]:
        """The least-loaded, best-scored usable candidate with a draft; and whether to wait.

        If a better-ranked provider is still negotiating (for ``patience_s`` at most), wait for it
        rather than piling instances on whichever provider answered first: ``(None, True)``.
        """

        def rank(c: Candidate) -> tuple[int, float, str]:
            score = c.score * self.penalties.get(c.provider_id, 1.0)
            return (load.get(c.provider_id, 0), -score, c.provider_id)

        usable = [
            c for c in self.candidates() if c.provider_id not in exclude and c.live(now, patience_s)
        ]
        if not usable:
            return None, False
        best = min(usable, key=rank)
        if best.draft is not None:
            return best, False
        ready = [c for c in usable if c.draft is not None]
        if ready and rank(min(ready, key=rank))[0] <= rank(best)[0]:
            return min(ready, key=rank), False  # as little loaded: no reason to wait
        return None, True
