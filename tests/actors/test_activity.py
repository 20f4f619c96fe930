"""ActivityActor against a scripted yagna: what it does when the create call's answer is lost."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import pykka
import pytest
import requests

from golem_actors.actors.activity import ActivityActor, ActivityFailed, ActivityReady
from golem_actors.actors.runtime import Runtime
from golem_actors.yagna.testing import MockYagna

AGREEMENT = "ag-1"


class Inbox(pykka.ThreadingActor):
    """Stands in for the instance: keeps whatever the activity tells it."""

    def __init__(self, box: queue.Queue[Any]) -> None:
        super().__init__()
        self.box = box

    def on_receive(self, message: Any) -> None:
        self.box.put(message)


@pytest.fixture
def yagna() -> MockYagna:
    return MockYagna()


@pytest.fixture
def runtime(yagna: MockYagna) -> Iterator[Runtime]:
    client = yagna.client()
    rt = Runtime(client.config, client=client)
    try:
        yield rt
    finally:
        rt.close()
        pykka.ActorRegistry.stop_all(timeout=5)


def _first_message(runtime: Runtime) -> Any:
    box: queue.Queue[Any] = queue.Queue()
    parent = Inbox.start(box)
    ActivityActor.start(runtime, parent, AGREEMENT, create_timeout=1.0)
    return box.get(timeout=10)


def test_an_activity_created_although_the_answer_was_lost_is_adopted(yagna, runtime):
    yagna.add("POST", r"/activity-api/v1/activity", raise_exc=requests.ReadTimeout("lost"))
    yagna.add("GET", r"/activity-api/v1/activity", json=["act-7"])
    message = _first_message(runtime)
    assert message == ActivityReady("act-7")
    lookups = [c for c in yagna.calls if c.method == "GET" and c.path.endswith("/activity")]
    assert lookups[0].query == {"agreementId": AGREEMENT}


def test_a_lost_answer_with_no_activity_behind_it_fails_the_create(yagna, runtime):
    yagna.add("POST", r"/activity-api/v1/activity", raise_exc=requests.ReadTimeout("lost"))
    yagna.add("GET", r"/activity-api/v1/activity", json=[])
    message = _first_message(runtime)
    assert isinstance(message, ActivityFailed)
    assert "lost" in str(message.error)


def test_a_refused_create_fails_at_once_without_a_lookup(yagna, runtime):
    yagna.add(
        "POST", r"/activity-api/v1/activity", status=400, json={"message": "no such agreement"}
    )
    message = _first_message(runtime)
    assert isinstance(message, ActivityFailed)
    assert not [c for c in yagna.calls if c.method == "GET"]
