"""How a ``Golem`` session ends: every step bounded, in an order that leaves nothing billing.

``Golem.stop`` first stops the work (task runs, then clusters: their workers and instances
terminate their own agreements), then:

1. ``sweep``: any agreement of this run that yagna still has live (a terminate lost to an API
   fault, a negotiation cut short) is ended now, and the payment books learn of every agreement
   the provider approved, so settling waits for its invoice;
2. ``settle``: wait (bounded) until every ended agreement's invoice is accepted;
3. ``stop_actors`` (market, agreement events, payments); then the budget is released
   (``golem_actors.session_budget``).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any

import pykka

from golem_actors import arguments
from golem_actors.actors.runtime import Runtime
from golem_actors.journal import Journal
from golem_actors.payments.decisions import Totals
from golem_actors.payments.messages import AgreementClosed, RegisterAgreement, Settle
from golem_actors.recovery import end_open_agreements
from golem_actors.yagna.models import Agreement

__all__ = ["ASK_TIMEOUT", "settle", "settle_seconds", "stop_actors", "sweep"]

log = logging.getLogger(__name__)

ASK_TIMEOUT = 10.0
SESSION_ACTORS = ("market", "events", "payments")  # stopped in this order


def sweep(rt: Runtime, journal: Journal | None, payments: pykka.ActorRef[Any] | None) -> None:
    """The last word on agreements: any of this run yagna still has live is ended now, not
    left billing. Needs the journal (it knows the run's agreements); without one, a no-op."""
    if journal is None:
        return
    billable: list[Agreement] = []
    swept, problems = end_open_agreements(rt.client, journal, billable=billable)
    for problem in problems:
        log.warning("%s", problem)
    if swept:
        log.warning("ended %d agreement(s) left open: %s", len(swept), ", ".join(swept))
    if payments is None:
        return
    # Every agreement the provider approved can invoice, even one the runtime gave up on
    # while it was being made: the books learn of it (a no-op for those they know), so
    # settling waits for its invoice and accepts it once. An unknown one is bounded as
    # ending now, which is later than it did: never an honest bill refused.
    for agreement in billable:
        payments.tell(RegisterAgreement(agreement))
        payments.tell(AgreementClosed(agreement.agreement_id))


def settle_seconds(value: object) -> float:
    """How long ``settle`` may wait (a ``Golem`` setting); a ``ValueError`` names a bad one."""
    return arguments.number("settle_timeout_s", value, ge=0)


def settle(payments: pykka.ActorRef[Any] | None, timeout_s: float) -> Totals | None:
    """The final totals once every ended agreement's invoice is accepted; None when some did
    not arrive within ``timeout_s`` (or there is no payment actor)."""
    if payments is None:
        return None
    future: Future[Totals] = Future()
    payments.tell(Settle(future))
    try:
        return future.result(timeout_s)
    except FutureTimeoutError:
        log.warning("some invoices did not arrive within %.0f s", timeout_s)
        return None


def stop_actors(refs: dict[str, pykka.ActorRef[Any]]) -> None:
    """Stop (and forget) the session's own actors, each within ``ASK_TIMEOUT``."""
    for name in SESSION_ACTORS:
        ref = refs.pop(name, None)
        if ref is not None:
            try:
                ref.stop(timeout=ASK_TIMEOUT)
            except pykka.Timeout:
                log.warning("the %s actor did not stop in time", name)
