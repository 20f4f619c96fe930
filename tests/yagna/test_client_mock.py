"""Every API method sends the right method, path, query and body, and parses the answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from golem_actors.yagna import YagnaBadRequestError, YagnaClient, YagnaTimeoutError
from golem_actors.yagna.models import (
    AgreementApprovedEvent,
    AgreementTerminatedEvent,
    ProposalEvent,
    RuntimeEvent,
)
from golem_actors.yagna.testing import MockYagna

R = "0xf9ce04438ad0568101d99ef0cf1648a26c0f3f65"
P = "0xf34f44b4b99091085fc124e610915dfe02273125"
AG = "b34f" * 16
ACT = "a7979abf9acd442bbfb3879ca45d7d7b"
TS = "2026-11-27T23:21:33.123456Z"
WHEN = dt.datetime(2026, 11, 27, 23, 21, 33, 123456, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)

MARKET = "/market-api/v1"
ACTIVITY = "/activity-api/v1"
PAYMENT = "/payment-api/v1"
NET = "/net-api/v2"
GSB = "/gsb-api/v1"

DEMAND = {"properties": {"a": 1}, "constraints": "(x=1)", "demandId": "d1", "requestorId": R}
OFFER = {"properties": {"b": 2}, "constraints": "", "offerId": "o1", "providerId": P}
PROPOSAL = {
    "properties": {"golem.runtime.name": "vm"},
    "constraints": "",
    "proposalId": "R-1",
    "issuerId": P,
    "state": "Initial",
    "timestamp": TS,
}
AGREEMENT = {
    "agreementId": AG,
    "demand": DEMAND,
    "offer": OFFER,
    "validTo": "2026-11-28T00:00:00Z",
    "state": "Approved",
}
ALLOCATION = {
    "allocationId": "al1",
    "totalAmount": "10.0",
    "spentAmount": "0.7",
    "remainingAmount": "9.3",
    "paymentPlatform": "erc20-holesky-tglm",
}
DEBIT_NOTE = {
    "debitNoteId": "dn1",
    "agreementId": AG,
    "activityId": ACT,
    "totalAmountDue": "0.5",
    "status": "ISSUED",
}
INVOICE = {
    "invoiceId": "in1",
    "agreementId": AG,
    "activityIds": [ACT],
    "amount": "0.7",
    "status": "RECEIVED",
}
ACCOUNT = {"platform": "erc20-holesky-tglm", "address": R, "send": True, "receive": False}
STREAMED: list[RuntimeEvent] = []  # what follow_batch's case was handed


@dataclass
class Case:
    """One API call: what it must send and what it must make of the answer."""

    id: str
    call: Callable[[YagnaClient], Any]
    method: str
    path: str
    answer: Any = None
    status: int = 200
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    expect: Callable[[Any], bool] = lambda result: result is None
    text: str | None = None  # a raw answer instead of ``answer`` as JSON


CASES = [
    # -- market: requestor -------------------------------------------------------------------
    Case(
        "subscribe_demand",
        lambda c: c.market.subscribe_demand({"a": 1}, "(x=1)"),
        "POST",
        f"{MARKET}/demands",
        answer="d1",
        status=201,
        body={"properties": {"a": 1}, "constraints": "(x=1)"},
        expect=lambda r: r == "d1",
    ),
    Case(
        "demands",
        lambda c: c.market.demands(),
        "GET",
        f"{MARKET}/demands",
        answer=[DEMAND],
        expect=lambda r: r[0].demand_id == "d1" and r[0].requestor_id == R,
    ),
    Case(
        "unsubscribe_demand",
        lambda c: c.market.unsubscribe_demand("d1"),
        "DELETE",
        f"{MARKET}/demands/d1",
        status=204,
    ),
    Case(
        "demand_events",
        lambda c: c.market.demand_events("d1", timeout=5, max_events=10),
        "GET",
        f"{MARKET}/demands/d1/events",
        answer=[{"eventType": "ProposalEvent", "eventDate": TS, "proposal": PROPOSAL}],
        query={"maxEvents": "10", "timeout": "5"},
        expect=lambda r: isinstance(r[0], ProposalEvent) and r[0].proposal.proposal_id == "R-1",
    ),
    Case(
        "counter_proposal_demand",
        lambda c: c.market.counter_proposal_demand("d1", "R-1", {"a": 1}, "(x=1)"),
        "POST",
        f"{MARKET}/demands/d1/proposals/R-1",
        answer="R-2",
        body={"properties": {"a": 1}, "constraints": "(x=1)"},
        expect=lambda r: r == "R-2",
    ),
    Case(
        "get_proposal_demand",
        lambda c: c.market.get_proposal_demand("d1", "R-1"),
        "GET",
        f"{MARKET}/demands/d1/proposals/R-1",
        answer=PROPOSAL,
        expect=lambda r: r.issuer_id == P and r.timestamp == WHEN,
    ),
    Case(
        "reject_proposal_demand",
        lambda c: c.market.reject_proposal_demand("d1", "R-1", "too expensive"),
        "POST",
        f"{MARKET}/demands/d1/proposals/R-1/reject",
        status=204,
        body={"message": "too expensive"},
    ),
    Case(
        "create_agreement",
        lambda c: c.market.create_agreement("R-2", LATER, app_session_id="s1"),
        "POST",
        f"{MARKET}/agreements",
        answer=AG,
        body={"proposalId": "R-2", "validTo": "2026-11-28T00:00:00.000000Z", "appSessionId": "s1"},
        expect=lambda r: r == AG,
    ),
    Case(
        "confirm_agreement",
        lambda c: c.market.confirm_agreement(AG, app_session_id="s1"),
        "POST",
        f"{MARKET}/agreements/{AG}/confirm",
        status=204,
        query={"appSessionId": "s1"},
    ),
    Case(
        "wait_for_approval",
        lambda c: c.market.wait_for_approval(AG, timeout=10),
        "POST",
        f"{MARKET}/agreements/{AG}/wait",
        status=204,
        query={"timeout": "10"},
    ),
    Case(
        "cancel_agreement",
        lambda c: c.market.cancel_agreement(AG, "changed my mind"),
        "POST",
        f"{MARKET}/agreements/{AG}/cancel",
        status=204,
        body={"message": "changed my mind"},
    ),
    Case(
        "terminate_agreement",
        lambda c: c.market.terminate_agreement(AG, "done", code="Success"),
        "POST",
        f"{MARKET}/agreements/{AG}/terminate",
        body={"message": "done", "golem.requestor.code": "Success"},
    ),
    Case(
        "terminate_agreement_bare",
        lambda c: c.market.terminate_agreement(AG),
        "POST",
        f"{MARKET}/agreements/{AG}/terminate",
        body={"message": ""},
    ),
    Case(
        "get_agreement",
        lambda c: c.market.get_agreement(AG),
        "GET",
        f"{MARKET}/agreements/{AG}",
        answer=AGREEMENT,
        expect=lambda r: r.state == "Approved" and r.provider_id == P,
    ),
    Case(
        "agreements",
        lambda c: c.market.agreements(),
        "GET",
        f"{MARKET}/agreements",
        answer=[{"id": AG, "timestamp": TS, "approvedDate": TS, "role": "Requestor"}],
        expect=lambda r: r[0]["id"] == AG,
    ),
    Case(
        "agreement_events",
        lambda c: c.market.agreement_events(after=WHEN, timeout=3, app_session_id="s1"),
        "GET",
        f"{MARKET}/agreementEvents",
        answer=[
            {"eventType": "AgreementApprovedEvent", "eventDate": TS, "agreementId": AG},
            {
                "eventType": "AgreementTerminatedEvent",
                "eventDate": TS,
                "agreementId": AG,
                "terminator": "Provider",
                "signature": "NoSignature",
                "reason": {"message": "done"},
            },
        ],
        query={
            "afterTimestamp": TS,
            "maxEvents": "100",
            "appSessionId": "s1",
            "timeout": "3",
        },
        expect=lambda r: (
            isinstance(r[0], AgreementApprovedEvent) and isinstance(r[1], AgreementTerminatedEvent)
        ),
    ),
    # -- market: provider --------------------------------------------------------------------
    Case(
        "subscribe_offer",
        lambda c: c.market.subscribe_offer({"b": 2}, ""),
        "POST",
        f"{MARKET}/offers",
        answer="o1",
        status=201,
        body={"properties": {"b": 2}, "constraints": ""},
        expect=lambda r: r == "o1",
    ),
    Case(
        "offers",
        lambda c: c.market.offers(),
        "GET",
        f"{MARKET}/offers",
        answer=[OFFER],
        expect=lambda r: r[0].provider_id == P,
    ),
    Case(
        "unsubscribe_offer",
        lambda c: c.market.unsubscribe_offer("o1"),
        "DELETE",
        f"{MARKET}/offers/o1",
        status=204,
    ),
    Case(
        "offer_events",
        lambda c: c.market.offer_events("o1", timeout=5),
        "GET",
        f"{MARKET}/offers/o1/events",
        answer=[{"eventType": "AgreementEvent", "eventDate": TS, "agreement": AGREEMENT}],
        query={"maxEvents": "100", "timeout": "5"},
        expect=lambda r: r[0].agreement.agreement_id == AG,
    ),
    Case(
        "counter_proposal_offer",
        lambda c: c.market.counter_proposal_offer("o1", "P-1", {"b": 2}, ""),
        "POST",
        f"{MARKET}/offers/o1/proposals/P-1",
        answer="P-2",
        body={"properties": {"b": 2}, "constraints": ""},
        expect=lambda r: r == "P-2",
    ),
    Case(
        "get_proposal_offer",
        lambda c: c.market.get_proposal_offer("o1", "P-1"),
        "GET",
        f"{MARKET}/offers/o1/proposals/P-1",
        answer={**PROPOSAL, "proposalId": "P-1", "issuerId": R, "state": "Draft"},
        expect=lambda r: r.state == "Draft",
    ),
    Case(
        "reject_proposal_offer",
        lambda c: c.market.reject_proposal_offer("o1", "P-1"),
        "POST",
        f"{MARKET}/offers/o1/proposals/P-1/reject",
        status=204,
        body={"message": ""},
    ),
    Case(
        "approve_agreement",
        lambda c: c.market.approve_agreement(AG, timeout=10),
        "POST",
        f"{MARKET}/agreements/{AG}/approve",
        status=204,
        query={"timeout": "10"},
    ),
    Case(
        "reject_agreement",
        lambda c: c.market.reject_agreement(AG, "busy"),
        "POST",
        f"{MARKET}/agreements/{AG}/reject",
        status=204,
        body={"message": "busy"},
    ),
    # -- activity ----------------------------------------------------------------------------
    Case(
        "create_activity_object",
        lambda c: c.activity.create_activity(AG, timeout=20),
        "POST",
        f"{ACTIVITY}/activity",
        answer={"activityId": ACT},
        status=201,
        query={"timeout": "20"},
        body={"agreementId": AG},
        expect=lambda r: r.activity_id == ACT and r.credentials is None,
    ),
    Case(
        "create_activity_bare_string",
        lambda c: c.activity.create_activity(AG),
        "POST",
        f"{ACTIVITY}/activity",
        answer=ACT,
        query={"timeout": "30"},
        body={"agreementId": AG},
        expect=lambda r: r.activity_id == ACT,
    ),
    Case(
        "exec",
        lambda c: c.activity.exec(ACT, [{"deploy": {}}, {"start": {}}]),
        "POST",
        f"{ACTIVITY}/activity/{ACT}/exec",
        answer="batch-1",
        body={"text": '[{"deploy": {}}, {"start": {}}]'},
        expect=lambda r: r == "batch-1",
    ),
    Case(
        "batch_results",
        lambda c: c.activity.batch_results(ACT, "batch-1", timeout=5),
        "GET",
        f"{ACTIVITY}/activity/{ACT}/exec/batch-1",
        answer=[
            {
                "index": 0,
                "result": "Ok",
                "stdout": "hi\n",
                "stderr": None,
                "message": None,
                "isBatchFinished": True,
                "eventDate": "2026-11-27T23:21:33Z",
            }
        ],
        query={"timeout": "5"},
        expect=lambda r: r[0].ok and r[0].stdout == "hi\n" and r[0].is_batch_finished,
    ),
    Case(
        "follow_batch",
        lambda c: c.activity.follow_batch(ACT, "batch-1", STREAMED.append, commands=1, timeout=5),
        "GET",
        f"{ACTIVITY}/activity/{ACT}/exec/batch-1",
        text=(
            'event: runtime\ndata: {"batch_id": "batch-1", "index": 0, "timestamp": '
            '"2026-11-27T23:21:33.5", "kind": {"stdout": "hi\\n"}}\nid: 0\n\n'
            'event: runtime\ndata: {"batch_id": "batch-1", "index": 0, "timestamp": '
            '"2026-11-27T23:21:34", "kind": {"finished": {"return_code": 0, "message": null}}}'
            "\nid: 1\n\n:ping\n"
        ),
        expect=lambda seen: seen is True and [e.kind for e in STREAMED] == ["stdout", "finished"],
    ),
    Case(
        "batch_results_of_one_command_no_wait",
        lambda c: c.activity.batch_results(ACT, "batch-1", timeout=None, command_index=2),
        "GET",
        f"{ACTIVITY}/activity/{ACT}/exec/batch-1",
        answer=[],
        query={"commandIndex": "2"},
        expect=lambda r: r == [],
    ),
    Case(
        "get_state",
        lambda c: c.activity.get_state(ACT),
        "GET",
        f"{ACTIVITY}/activity/{ACT}/state",
        answer={"state": ["Initialized", None]},
        expect=lambda r: r.current == "Initialized" and r.next is None,
    ),
    Case(
        "get_usage",
        lambda c: c.activity.get_usage(ACT),
        "GET",
        f"{ACTIVITY}/activity/{ACT}/usage",
        answer={"timestamp": 1_795_000_000},
        expect=lambda r: r.timestamp == 1_795_000_000,
    ),
    Case(
        "get_agreement_id",
        lambda c: c.activity.get_agreement_id(ACT),
        "GET",
        f"{ACTIVITY}/activity/{ACT}/agreement",
        answer=AG,
        expect=lambda r: r == AG,
    ),
    Case(
        "destroy_activity",
        lambda c: c.activity.destroy_activity(ACT, timeout=15),
        "DELETE",
        f"{ACTIVITY}/activity/{ACT}",
        query={"timeout": "15"},
    ),
    Case(
        "activities",
        lambda c: c.activity.activities(AG),
        "GET",
        f"{ACTIVITY}/activity",
        answer=[ACT],
        query={"agreementId": AG},
        expect=lambda r: r == [ACT],
    ),
    Case(
        "provider_events",
        lambda c: c.activity.provider_events(WHEN, timeout=5, max_events=3),
        "GET",
        f"{ACTIVITY}/events",
        answer=[
            {
                "activityId": ACT,
                "agreementId": AG,
                "eventType": {"CreateActivity": {}},
                "eventDate": TS,
            }
        ],
        query={"afterTimestamp": TS, "maxEvents": "3", "timeout": "5"},
        expect=lambda r: r[0].kind == "CreateActivity" and r[0].activity_id == ACT,
    ),
    Case(
        "set_state",
        lambda c: c.activity.set_state(ACT, "Initialized"),
        "PUT",
        f"{ACTIVITY}/activity/{ACT}/state",
        body={"state": ["Initialized", None]},
    ),
    Case(
        "set_state_with_reason",
        lambda c: c.activity.set_state(
            ACT, "Ready", "Terminated", reason="bye", error_message="crash"
        ),
        "PUT",
        f"{ACTIVITY}/activity/{ACT}/state",
        body={"state": ["Ready", "Terminated"], "reason": "bye", "errorMessage": "crash"},
    ),
    # -- payment -----------------------------------------------------------------------------
    Case(
        "requestor_accounts",
        lambda c: c.payment.requestor_accounts(),
        "GET",
        f"{PAYMENT}/requestorAccounts",
        answer=[ACCOUNT],
        expect=lambda r: r[0].address == R and r[0].send is True,
    ),
    Case(
        "provider_accounts",
        lambda c: c.payment.provider_accounts(),
        "GET",
        f"{PAYMENT}/providerAccounts",
        answer=[],
        expect=lambda r: r == [],
    ),
    Case(
        "create_allocation",
        lambda c: c.payment.create_allocation(
            Decimal("10.0"), payment_platform="erc20-holesky-tglm", address=R, timeout=LATER
        ),
        "POST",
        f"{PAYMENT}/allocations",
        answer=ALLOCATION,
        status=201,
        body={
            "totalAmount": "10",  # normalized, never exponent notation
            "makeDeposit": False,
            "paymentPlatform": "erc20-holesky-tglm",
            "address": R,
            "timeout": "2026-11-28T00:00:00.000000Z",
        },
        expect=lambda r: r.remaining_amount == Decimal("9.3"),
    ),
    Case(
        "allocations",
        lambda c: c.payment.allocations(),
        "GET",
        f"{PAYMENT}/allocations",
        answer=[ALLOCATION],
        expect=lambda r: r[0].allocation_id == "al1",
    ),
    Case(
        "get_allocation",
        lambda c: c.payment.get_allocation("al1"),
        "GET",
        f"{PAYMENT}/allocations/al1",
        answer=ALLOCATION,
        expect=lambda r: r.spent_amount == Decimal("0.7"),
    ),
    Case(
        "amend_allocation",
        lambda c: c.payment.amend_allocation("al1", total_amount="5"),
        "PUT",
        f"{PAYMENT}/allocations/al1",
        answer={**ALLOCATION, "totalAmount": "5"},
        body={"totalAmount": "5"},
        expect=lambda r: r.total_amount == Decimal(5),
    ),
    Case(
        "release_allocation",
        lambda c: c.payment.release_allocation("al1"),
        "DELETE",
        f"{PAYMENT}/allocations/al1",
    ),
    Case(
        "demand_decorations",
        lambda c: c.payment.demand_decorations(["al1", "al2"]),
        "GET",
        f"{PAYMENT}/demandDecorations",
        answer={
            "properties": [{"key": "golem.com.payment.protocol.version", "value": "3"}],
            "constraints": ["(golem.com.payment.protocol.version>1)"],
        },
        query={"allocationIds": "al1,al2"},
        expect=lambda r: r.property_dict() == {"golem.com.payment.protocol.version": "3"},
    ),
    Case(
        "debit_notes",
        lambda c: c.payment.debit_notes(),
        "GET",
        f"{PAYMENT}/debitNotes",
        answer=[DEBIT_NOTE],
        expect=lambda r: r[0].total_amount_due == Decimal("0.5"),
    ),
    Case(
        "get_debit_note",
        lambda c: c.payment.get_debit_note("dn1"),
        "GET",
        f"{PAYMENT}/debitNotes/dn1",
        answer=DEBIT_NOTE,
        expect=lambda r: r.activity_id == ACT,
    ),
    Case(
        "debit_note_events",
        lambda c: c.payment.debit_note_events(after=WHEN, timeout=3, max_events=5),
        "GET",
        f"{PAYMENT}/debitNoteEvents",
        answer=[{"debitNoteId": "dn1", "eventDate": TS, "eventType": "DebitNoteReceivedEvent"}],
        query={"afterTimestamp": TS, "maxEvents": "5", "timeout": "3"},
        expect=lambda r: r[0].event_type == "DebitNoteReceivedEvent",
    ),
    Case(
        "accept_debit_note",
        lambda c: c.payment.accept_debit_note("dn1", Decimal("0.5"), "al1", timeout=5),
        "POST",
        f"{PAYMENT}/debitNotes/dn1/accept",
        query={"timeout": "5"},
        body={"totalAmountAccepted": "0.5", "allocationId": "al1"},
    ),
    Case(
        "reject_debit_note",
        lambda c: c.payment.reject_debit_note("dn1", "too much"),
        "POST",
        f"{PAYMENT}/debitNotes/dn1/reject",
        body={
            "rejectionReason": "UNSOLICITED_SERVICE",
            "totalAmountAccepted": "0",
            "message": "too much",
        },
    ),
    Case(
        "issue_debit_note",
        lambda c: c.payment.issue_debit_note(AG, ACT, "0.5", usage_counter_vector=[1.0, 2.0]),
        "POST",
        f"{PAYMENT}/debitNotes",
        answer=DEBIT_NOTE,
        status=201,
        body={
            "agreementId": AG,
            "activityId": ACT,
            "totalAmountDue": "0.5",
            "usageCounterVector": [1.0, 2.0],
            "paymentDueDate": None,
        },
        expect=lambda r: r.status == "ISSUED",
    ),
    Case(
        "send_debit_note",
        lambda c: c.payment.send_debit_note("dn1", timeout=5),
        "POST",
        f"{PAYMENT}/debitNotes/dn1/send",
        query={"timeout": "5"},
    ),
    Case(
        "invoices",
        lambda c: c.payment.invoices(),
        "GET",
        f"{PAYMENT}/invoices",
        answer=[INVOICE],
        expect=lambda r: r[0].amount == Decimal("0.7"),
    ),
    Case(
        "get_invoice",
        lambda c: c.payment.get_invoice("in1"),
        "GET",
        f"{PAYMENT}/invoices/in1",
        answer=INVOICE,
        expect=lambda r: r.activity_ids == (ACT,),
    ),
    Case(
        "invoice_events",
        lambda c: c.payment.invoice_events(timeout=3),
        "GET",
        f"{PAYMENT}/invoiceEvents",
        answer=[{"invoiceId": "in1", "eventDate": TS, "eventType": "InvoiceReceivedEvent"}],
        query={"maxEvents": "100", "timeout": "3"},
        expect=lambda r: r[0].invoice_id == "in1" and r[0].event_date == WHEN,
    ),
    Case(
        "accept_invoice",
        lambda c: c.payment.accept_invoice("in1", "0.7", "al1", timeout=5),
        "POST",
        f"{PAYMENT}/invoices/in1/accept",
        query={"timeout": "5"},
        body={"totalAmountAccepted": "0.7", "allocationId": "al1"},
    ),
    Case(
        "reject_invoice",
        lambda c: c.payment.reject_invoice("in1", "never ran"),
        "POST",
        f"{PAYMENT}/invoices/in1/reject",
        body={"rejectionReason": "BAD_SERVICE", "totalAmountAccepted": "0", "message": "never ran"},
    ),
    Case(
        "issue_invoice",
        lambda c: c.payment.issue_invoice(AG, [ACT], "0.7", LATER),
        "POST",
        f"{PAYMENT}/invoices",
        answer={**INVOICE, "status": "ISSUED"},
        status=201,
        body={
            "agreementId": AG,
            "activityIds": [ACT],
            "amount": "0.7",
            "paymentDueDate": "2026-11-28T00:00:00.000000Z",
        },
        expect=lambda r: r.status == "ISSUED",
    ),
    Case(
        "send_invoice",
        lambda c: c.payment.send_invoice("in1", timeout=10),
        "POST",
        f"{PAYMENT}/invoices/in1/send",
        query={"timeout": "10"},
    ),
    # -- net (VPN) ---------------------------------------------------------------------------
    Case(
        "create_network",
        lambda c: c.net.create_network("192.168.8.0", "255.255.255.0", "192.168.8.1"),
        "POST",
        f"{NET}/vpn/net",
        answer={
            "id": "fe14",
            "ip": "192.168.8.0/24",
            "mask": "255.255.255.0",
            "gateway": "192.168.8.1",
        },
        body={"ip": "192.168.8.0", "mask": "255.255.255.0", "gateway": "192.168.8.1"},
        expect=lambda r: r.id == "fe14" and r.ip == "192.168.8.0/24",
    ),
    Case(
        "create_network_ip_only",
        lambda c: c.net.create_network("10.0.0.0"),
        "POST",
        f"{NET}/vpn/net",
        answer={"id": "n2", "ip": "10.0.0.0/24"},
        body={"ip": "10.0.0.0"},
        expect=lambda r: r.mask is None,
    ),
    Case(
        "networks",
        lambda c: c.net.networks(),
        "GET",
        f"{NET}/vpn/net",
        answer=[{"id": "fe14", "ip": "192.168.8.0/24"}],
        expect=lambda r: r[0].id == "fe14",
    ),
    Case(
        "get_network",
        lambda c: c.net.get_network("fe14"),
        "GET",
        f"{NET}/vpn/net/fe14",
        answer={"id": "fe14", "ip": "192.168.8.0/24"},
        expect=lambda r: r.ip == "192.168.8.0/24",
    ),
    Case(
        "remove_network",
        lambda c: c.net.remove_network("fe14"),
        "DELETE",
        f"{NET}/vpn/net/fe14",
    ),
    Case(
        "addresses",
        lambda c: c.net.addresses("fe14"),
        "GET",
        f"{NET}/vpn/net/fe14/addresses",
        answer=[{"ip": "192.168.8.1/24"}],
        expect=lambda r: r[0].ip == "192.168.8.1/24",
    ),
    Case(
        "add_address",
        lambda c: c.net.add_address("fe14", "192.168.8.2"),
        "POST",
        f"{NET}/vpn/net/fe14/addresses",
        body={"ip": "192.168.8.2"},
    ),
    Case(
        "nodes",
        lambda c: c.net.nodes("fe14"),
        "GET",
        f"{NET}/vpn/net/fe14/nodes",
        answer=[{"id": P, "ip": "192.168.8.7"}],
        expect=lambda r: (r[0].id, r[0].ip) == (P, "192.168.8.7"),
    ),
    Case(
        "add_node",
        lambda c: c.net.add_node("fe14", P, "192.168.8.7"),
        "POST",
        f"{NET}/vpn/net/fe14/nodes",
        body={"id": P, "ip": "192.168.8.7"},
    ),
    Case(
        "remove_node",
        lambda c: c.net.remove_node("fe14", P),
        "DELETE",
        f"{NET}/vpn/net/fe14/nodes/{P}",
    ),
    # -- gsb and identity --------------------------------------------------------------------
    Case(
        "gsb_bind",
        lambda c: c.gsb.bind(f"/public/exeunit/{ACT}", ["Exec", "GetExecBatchResults"]),
        "POST",
        f"{GSB}/services",
        answer={
            "listen": {"on": f"/public/exeunit/{ACT}", "components": ["Exec"]},
            "servicesId": "L3B1YmxpYy9leGV1bml0",
        },
        status=201,
        body={
            "listen": {
                "on": f"/public/exeunit/{ACT}",
                "components": ["Exec", "GetExecBatchResults"],
            }
        },
        expect=lambda r: r.services_id == "L3B1YmxpYy9leGV1bml0",
    ),
    Case(
        "gsb_unbind",
        lambda c: c.gsb.unbind("L3B1"),
        "DELETE",
        f"{GSB}/services/L3B1",
    ),
    Case(
        "me",
        lambda c: c.identity.me(),
        "GET",
        "/me",
        answer={"identity": R, "name": "requestor", "role": "manager"},
        expect=lambda r: r.identity == R and r.role == "manager",
    ),
    Case(
        "version",
        lambda c: c.identity.version(),
        "GET",
        "/version/get",
        answer={
            "current": {"version": "0.17.6", "name": "(a98d28015 2026-03-13)"},
            "pending": None,
        },
        expect=lambda r: r.version == "0.17.6",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_api_call(case: Case) -> None:
    mock = MockYagna()
    mock.add(case.method, case.path, status=case.status, json=case.answer, text=case.text)
    with mock.client() as client:
        result = case.call(client)
    assert len(mock.calls) == 1
    (call,) = mock.calls
    assert (call.method, call.path) == (case.method, case.path)
    assert call.query == case.query
    assert call.body == case.body
    assert case.expect(result), result


def test_every_public_api_method_has_a_case() -> None:
    """A new API method without a wire test here fails this test."""
    mock = MockYagna()
    with mock.client() as client:
        apis = {
            "market": client.market,
            "activity": client.activity,
            "payment": client.payment,
            "net": client.net,
            "gsb": client.gsb,
            "identity": client.identity,
        }
    covered = {c.id.removeprefix("gsb_") for c in CASES}
    missing = [
        f"{name}.{attr}"
        for name, api in apis.items()
        for attr in dir(api)
        if not attr.startswith("_")
        and callable(getattr(api, attr))
        and attr != "websocket_url"
        and not any(case_id.startswith(attr) for case_id in covered)
    ]
    assert missing == []


def test_provider_events_maps_408_to_no_events() -> None:
    mock = MockYagna()
    mock.add("GET", f"{ACTIVITY}/events", status=408, json={"message": "Timeout"})
    with mock.client() as client:
        assert client.activity.provider_events(WHEN, timeout=1) == []
    assert len(mock.calls) == 1


def test_provider_events_other_errors_still_raise() -> None:
    mock = MockYagna()
    mock.add("GET", f"{ACTIVITY}/events", status=400, json={"message": "missing afterTimestamp"})
    with mock.client() as client, pytest.raises(YagnaBadRequestError):
        client.activity.provider_events(WHEN)


def test_batch_results_of_one_command_raises_on_408() -> None:
    mock = MockYagna()
    mock.add("GET", f"{ACTIVITY}/activity/{ACT}/exec/b1", status=408, json={"message": "Timeout"})
    with mock.client() as client, pytest.raises(YagnaTimeoutError):
        client.activity.batch_results(ACT, "b1", timeout=1, command_index=0)


def test_empty_event_polls_are_empty_lists() -> None:
    mock = MockYagna()
    mock.add("GET", f"{MARKET}/demands/d1/events", json=[])
    mock.add("GET", f"{PAYMENT}/invoiceEvents", status=200)  # an empty body, not even []
    with mock.client() as client:
        assert client.market.demand_events("d1", timeout=1) == []
        assert client.payment.invoice_events(timeout=1) == []


@pytest.mark.parametrize("amount", ["-1", "NaN", "Infinity", Decimal("-0.1")])
def test_bad_amounts_never_reach_yagna(amount: Any) -> None:
    mock = MockYagna()
    with mock.client() as client, pytest.raises(ValueError, match="amount"):
        client.payment.create_allocation(amount)
    assert mock.calls == []


@pytest.mark.parametrize("max_events", [0, 101])
def test_out_of_range_max_events_never_reach_yagna(max_events: int) -> None:
    mock = MockYagna()
    with mock.client() as client, pytest.raises(ValueError, match="max_events"):
        client.market.demand_events("d1", max_events=max_events)
    assert mock.calls == []


def test_gsb_websocket_url() -> None:
    mock = MockYagna()
    with mock.client() as client:
        assert client.gsb.websocket_url("L3B1") == "ws://yagna.mock/gsb-api/v1/services/L3B1"


@pytest.mark.parametrize(
    ("amount", "wire"),
    [
        (Decimal("1E-18"), "0.000000000000000001"),
        (Decimal("1E+3"), "1000"),
        ("10.0", "10"),
        (3, "3"),
        ("0.0103", "0.0103"),
    ],
)
def test_amounts_are_sent_as_plain_decimal_strings(amount: Any, wire: str) -> None:
    mock = MockYagna()
    mock.add("POST", f"{PAYMENT}/allocations", status=201, json=ALLOCATION)
    with mock.client() as client:
        client.payment.create_allocation(amount)
    assert mock.calls[0].body["totalAmount"] == wire
