"""Server-sent events as yagna sends them, and the runtime events they carry."""

from __future__ import annotations

import datetime as dt

import pytest

from golem_actors.yagna.models import ModelError, RuntimeEvent
from golem_actors.yagna.sse import SseMessage, iter_messages


def lines(text: str) -> list[bytes]:
    return text.encode().split(b"\n")


def test_yagna_blocks_comments_and_pings() -> None:
    stream = (
        'event: runtime\ndata: {"a": 1}\nid: 0\n\n'
        ":ping\n"
        "event: runtime\r\ndata: two\r\ndata:  lines\r\nid: 1\r\n\r\n"
        "data: untyped\n\n"
        "event: lonely\n\n"  # no data: nothing dispatched
        "data: cut off"  # no blank line after it: dropped
    )
    assert list(iter_messages(lines(stream))) == [
        SseMessage("runtime", '{"a": 1}', "0"),
        SseMessage("runtime", "two\n lines", "1"),  # one space after the colon is dropped
        SseMessage("message", "untyped", "1"),  # the last id carries over
    ]


def event(kind: object, index: object = 0) -> dict[str, object]:
    stamp = "2024-05-01T10:00:00.123456"  # yagna's NaiveDateTime: no zone
    return {"batch_id": "b1", "index": index, "timestamp": stamp, "kind": kind}


def test_runtime_events_of_each_kind() -> None:
    started = RuntimeEvent.from_json(event({"started": {"command": {"run": {}}}}))
    assert (started.kind, started.index, started.batch_id) == ("started", 0, "b1")
    assert started.timestamp == dt.datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=dt.UTC)
    assert RuntimeEvent.from_json(event({"stdout": "hi\n"}, 2)).output == "hi\n"
    assert RuntimeEvent.from_json(event({"stderr": [104, 105]})).output == b"hi"
    finished = RuntimeEvent.from_json(event({"finished": {"return_code": 3, "message": "boom"}}))
    assert (finished.return_code, finished.message) == (3, "boom")


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ([], "expected a JSON object"),
        (event({"stdout": "x"}, -1), "RuntimeEvent.index"),
        (event({"stdout": "x", "stderr": "y"}), "RuntimeEvent.kind"),
        (event({"exploded": {}}), "unknown kind"),
        (event({"stdout": [300]}), "RuntimeEvent.kind.stdout"),
        (event({"finished": {"message": None}}), "return_code"),
        ({**event({"stdout": "x"}), "timestamp": "yesterday"}, "RuntimeEvent.timestamp"),
    ],
)
def test_malformed_runtime_events_name_the_field(body: object, names: str) -> None:
    with pytest.raises(ModelError, match=names):
        RuntimeEvent.from_json(body)
