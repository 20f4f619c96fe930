"""The lease (``LeaseActor``) against a scripted yagna and a stand-in market: every provider the
market granted is released exactly once, whichever holder (service instance or task worker) holds
the lease, and however many of its agreements fail."""

from __future__ import annotations

import queue
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest

from golem_actors.actors.instance import InstanceActor, InstanceConfig, InstanceExited
from golem_actors.actors.market import (
    ProposalGranted,
    ProviderFailed,
    ReleaseProvider,
    RequestProposal,
)
from golem_actors.actors.runtime import Runtime
from golem_actors.actors.task_worker import TaskWorker, WorkerConfig, WorkerExited
from golem_actors.policy.supervision import ExitReason
from golem_actors.service import ServiceActor, ServiceHandle
from golem_actors.yagna.models.market import Proposal
from golem_actors.yagna.testing import MockYagna
from tests.actors.test_activity import Inbox  # also stands in for payments, agreement events

ATTEMPTS = 3
TIMEOUT = 20.0


class Market(pykka.ThreadingActor):
    """Grants every request ``copies`` times, each from a new provider, and keeps the market's
    books: grants and releases per provider (a release beyond the grants is counted, not hidden
    as ``MarketActor`` hides it)."""

    def __init__(self, copies: int) -> None:
        super().__init__()
        self.copies = copies
        self.granted: Counter[str] = Counter()
        self.released: Counter[str] = Counter()
        self.failed: list[str] = []

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, RequestProposal):
            for _ in range(self.copies):
                provider = f"0xprovider{sum(self.granted.values())}"
                self.granted[provider] += 1
                proposal = Proposal({}, "", f"draft-{provider}", provider, "Draft")
                grant = ProposalGranted(message.request_id, proposal, provider, provider, {})
                message.reply_to.tell(grant)
        elif isinstance(message, ReleaseProvider):
            self.released[message.provider_id] += 1
        elif isinstance(message, ProviderFailed):
            self.failed.append(message.provider_id)
        elif message == "books":
            return dict(self.granted), dict(self.released), list(self.failed)
        return None


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    yagna = MockYagna()
    # Every agreement fails at once: the provider is never reached.
    yagna.add("POST", r"/market-api/v1/agreements", status=400, json={"message": "no draft"})
    rt = Runtime(yagna.client().config, client=yagna.client())
    yield rt  # pytest runs the rest whatever the test's outcome
    rt.close()
    pykka.ActorRegistry.stop_all(timeout=5)


def _terms(market: pykka.ActorRef[Any], sink: pykka.ActorRef[Any]) -> dict[str, Any]:
    """What both holders' configs share: the lease's terms."""
    return {
        "demand_key": "demand",
        "market": market,
        "agreement_events": sink,
        "payments": sink,
        "storage": None,
        "max_agreement_attempts": ATTEMPTS,
    }


def _start_instance(
    rt: Runtime, parent: pykka.ActorRef[Any], market: pykka.ActorRef[Any], sink: Any
) -> pykka.ActorRef[Any]:
    config = InstanceConfig(service_cls=ServiceActor, params={}, **_terms(market, sink))
    handle = ServiceHandle("svc", "svc-0")
    return InstanceActor.start(rt, parent, config=config, handle=handle, exclude=frozenset())


def _start_worker(
    rt: Runtime, parent: pykka.ActorRef[Any], market: pykka.ActorRef[Any], sink: Any
) -> pykka.ActorRef[Any]:
    config = WorkerConfig(group="run", worker_fn=None, **_terms(market, sink))
    return TaskWorker.start(rt, parent, name="worker-0", config=config, exclude=frozenset())


Starter = Callable[[Runtime, pykka.ActorRef[Any], pykka.ActorRef[Any], Any], pykka.ActorRef[Any]]


@pytest.mark.parametrize("start", [_start_instance, _start_worker], ids=["instance", "worker"])
@pytest.mark.parametrize("copies", [1, 2], ids=["one-grant", "duplicate-grants"])
def test_every_granted_provider_is_released_once_when_agreements_fail(
    runtime: Runtime, start: Starter, copies: int
) -> None:
    exits: queue.Queue[Any] = queue.Queue()
    parent = Inbox.start(exits)
    sink = Inbox.start(queue.Queue())
    market = Market.start(copies)
    ref = start(runtime, parent, market, sink)

    exited = exits.get(timeout=TIMEOUT)
    granted, released, failed = market.ask("books", block=True, timeout=TIMEOUT)
    assert ref.actor_stopped.wait(TIMEOUT)

    assert isinstance(exited, InstanceExited | WorkerExited)
    if isinstance(exited, InstanceExited):
        assert exited.reason is ExitReason.AGREEMENT_FAILED
        assert f"{ATTEMPTS} attempts failed" in exited.detail
    else:
        assert exited.fault
    # One agreement per request, each on a provider not tried before; each failure penalised.
    assert len(failed) == ATTEMPTS
    assert len(set(failed)) == ATTEMPTS
    assert len(granted) == ATTEMPTS * copies
    # The market's per-group load count is back to zero: nothing leaked, nothing released twice.
    assert released == granted
