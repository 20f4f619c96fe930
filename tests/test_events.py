"""Events are stamped when made, and the bus survives broken subscribers."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from golem_actors import events as ev
from golem_actors.events import EventBus


def test_an_event_is_stamped_when_it_is_made_not_at_import() -> None:
    before = time.time()
    event = ev.InvoiceReceived(invoice_id="i", agreement_id="a", amount=Decimal(1))
    assert before <= event.at <= time.time()
    later = ev.InvoiceReceived(invoice_id="i", agreement_id="a", amount=Decimal(1))
    assert later.at >= event.at


def test_subscribers_filter_by_type_and_unsubscribe_bound_methods() -> None:
    bus = EventBus()
    everything: list[ev.Event] = []
    offers: list[ev.Event] = []

    class Consumer:
        def __init__(self) -> None:
            self.seen: list[Any] = []

        def on_event(self, event: ev.Event) -> None:
            self.seen.append(event)

    consumer = Consumer()
    bus.subscribe(everything.append)
    bus.subscribe(offers.append, ev.OfferReceived)
    bus.subscribe(consumer.on_event)
    offer = ev.OfferReceived(provider_id="p", provider_name="n", score=1.0)
    bus.emit(offer)
    bus.emit(ev.BatchStarted(activity_id="x"))
    assert offers == [offer]
    assert len(everything) == 2
    bus.unsubscribe(consumer.on_event)  # a new bound-method object, equal to the subscribed one
    bus.emit(offer)
    assert len(consumer.seen) == 2
    assert len(everything) == 3


def test_a_broken_subscriber_does_not_stop_the_others(caplog: Any) -> None:
    bus = EventBus()
    seen: list[ev.Event] = []

    def broken(_: ev.Event) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    bus.emit(ev.DemandPublished(demand_id="d", key="S:1"))
    assert len(seen) == 1
    assert "subscriber bug" in caplog.text
