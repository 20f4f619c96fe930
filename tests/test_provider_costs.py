"""What each provider cost, from events alone; and both summaries, which read it, agree."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from golem_actors import events as ev
from golem_actors.provider_costs import ProviderCosts
from golem_actors.summary import RunSummary
from golem_actors.tasks.summary import TaskSummaryBuilder


def approved(agreement: str, provider: str, name: str = "") -> ev.AgreementApproved:
    return ev.AgreementApproved(
        agreement_id=agreement,
        provider_id=provider,
        provider_name=name or f"name-{provider}",
        negotiation_seconds=0.1,
    )


def note(agreement: str, amount: str) -> ev.DebitNoteAccepted:
    return ev.DebitNoteAccepted(debit_note_id="d", agreement_id=agreement, amount=Decimal(amount))


def invoice(agreement: str, amount: str) -> ev.InvoiceAccepted:
    return ev.InvoiceAccepted(invoice_id="i", agreement_id=agreement, amount=Decimal(amount))


def fed(*events: ev.Event) -> ProviderCosts:
    costs = ProviderCosts()
    for event in events:
        costs.apply(event)
    return costs


def test_the_largest_debit_note_counts_until_the_invoice_replaces_it() -> None:
    costs = fed(approved("a", "p"), note("a", "0.3"), note("a", "0.1"))
    assert costs.by_provider() == {"p": Decimal("0.3")}  # notes are cumulative, in any order
    costs.apply(invoice("a", "0.25"))
    assert costs.by_provider() == {"p": Decimal("0.25")}  # the invoice is the final word
    assert costs.invoiced() == {"a"}


def test_a_provider_s_agreements_add_up_and_the_total_is_every_provider_s() -> None:
    costs = fed(
        approved("a1", "p"),
        approved("a2", "p"),
        approved("b", "q"),
        invoice("a1", "1"),
        note("a2", "0.5"),
        note("b", "0.25"),
    )
    assert costs.by_provider() == {"p": Decimal("1.5"), "q": Decimal("0.25")}
    assert costs.total() == Decimal("1.75")


def test_documents_of_an_agreement_no_provider_approved_are_not_anyone_s_cost() -> None:
    costs = fed(approved("a", "p"), invoice("stranger", "9"), note("other", "1"))
    assert costs.by_provider() == {}  # p has nothing accepted yet: no entry
    assert costs.total() == 0
    assert costs.invoiced() == {"stranger"}  # accepted all the same
    assert costs.provider_of("a") == "p"
    assert costs.provider_of("stranger") is None


def test_names_come_from_offers_agreements_and_tasks() -> None:
    costs = ProviderCosts()
    costs.apply(ev.OfferReceived(provider_id="p", provider_name="from-offer", score=1.0))
    assert costs.name("p") == "from-offer"
    costs.apply(approved("a", "p", "from-agreement"))
    costs.apply(ev.OfferReceived(provider_id="p", provider_name="later-offer", score=1.0))
    assert costs.name("p") == "from-agreement"  # an offer does not rename a known provider
    costs.apply(ev.TaskStarted(task_id="t", attempt=1, provider_id="q", provider_name="tq"))
    assert costs.name("q") == "tq"
    assert costs.name("nobody") is None


_agreements = st.sampled_from(["a0", "a1", "a2", "a3"])
_amounts = st.decimals(min_value=0, max_value=10, places=3)
_events = st.one_of(
    st.builds(approved, _agreements, st.sampled_from(["p0", "p1"])),
    st.builds(lambda a, x: note(a, str(x)), _agreements, _amounts),
    st.builds(lambda a, x: invoice(a, str(x)), _agreements, _amounts),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(_events, max_size=30))
def test_the_session_summary_and_the_task_summary_agree_on_every_cost(
    events: list[ev.Event],
) -> None:
    # An agreement is approved once, by one provider, before its documents arrive.
    seen: set[str] = set()
    ordered = []
    for event in events:
        if isinstance(event, ev.AgreementApproved):
            if event.agreement_id in seen:
                continue
            seen.add(event.agreement_id)
        elif event.agreement_id not in seen:  # type: ignore[attr-defined]
            continue
        ordered.append(event)
    session, tasks = RunSummary(), TaskSummaryBuilder(0)
    for event in ordered:
        session.on_event(event)
        tasks(event)
    rows = {r.provider_id: r.cost for r in session.rows(now=0.0) if r.cost}
    per_provider = {p: s.cost for p, s in tasks.snapshot().providers.items() if s.cost}
    assert rows == per_provider
    assert tasks.snapshot().cost == sum(rows.values(), Decimal(0))
