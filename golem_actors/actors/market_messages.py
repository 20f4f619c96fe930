"""The messages of the market actor: demands published and renewed, proposals asked for and granted.

A demand comes with three pure judges bound by the session (``session_market``): how to score an
offer, what to counter it with, how to check the provider's answer. A demand that can outlive its
expiration also comes with ``renew``, which builds the same demand for a fresh expiration, and its
``lifetime_s``; the market publishes the renewed one a margin before the old one ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pykka

from golem_actors.yagna.models import Proposal

__all__ = [
    "CancelRequest",
    "Check",
    "Counter",
    "DemandKey",
    "ProposalGranted",
    "ProviderFailed",
    "PublishDemand",
    "Refresh",
    "ReleaseProvider",
    "Renew",
    "Repoll",
    "RequestProposal",
    "Resubscribe",
    "Retire",
    "Scorer",
    "Serve",
]

DemandKey = str
#: Scores an offer (properties, provider id): a float (higher is better) or a reason to reject.
Scorer = Callable[[Mapping[str, Any], str], "float | str"]
#: Builds our counter-proposal to an offer, or returns a reason to reject it.
Counter = Callable[[Mapping[str, Any]], "dict[str, Any] | str"]
#: Checks a provider's draft (ours, theirs, their offer): a reason to refuse it, or None.
Check = Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]], "str | None"]


@dataclass(frozen=True)
class PublishDemand:
    key: DemandKey
    properties: dict[str, Any]
    constraints: str
    scorer: Scorer
    counter: Counter
    check: Check
    #: Builds this demand anew for a fresh expiration (same key); None: it is never renewed.
    renew: Callable[[], PublishDemand] | None = None
    #: How long the demand lasts from when it was built (its expiration minus then).
    lifetime_s: float | None = None


@dataclass(frozen=True)
class RequestProposal:
    key: DemandKey
    request_id: int
    reply_to: pykka.ActorRef[Any]
    exclude: frozenset[str] = frozenset()
    group: str = ""  # instances of one group spread over providers


@dataclass(frozen=True)
class ReleaseProvider:
    """An instance of ``group`` no longer runs on ``provider_id``."""

    group: str
    provider_id: str


@dataclass(frozen=True)
class CancelRequest:
    key: DemandKey
    request_id: int


@dataclass(frozen=True)
class ProviderFailed:
    """A provider failed an instance: its offers sink in the ranking (re-scoring)."""

    provider_id: str


@dataclass(frozen=True)
class ProposalGranted:
    request_id: int
    proposal: Proposal  # the provider's draft: create the agreement from it
    provider_id: str
    provider_name: str
    offer: Mapping[str, Any]


# -- what the market actor tells itself (timers) ----------------------------------------------


@dataclass(frozen=True)
class Resubscribe:
    key: DemandKey


@dataclass(frozen=True)
class Repoll:
    key: DemandKey
    demand_id: str


@dataclass(frozen=True)
class Refresh:
    key: DemandKey


@dataclass(frozen=True)
class Serve:
    key: DemandKey


@dataclass(frozen=True)
class Renew:
    key: DemandKey


@dataclass(frozen=True)
class Retire:
    key: DemandKey
    demand_ids: frozenset[str]
