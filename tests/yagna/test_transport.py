"""Transport against the MockYagna adapter: errors, yagna's messages, retries, polls, secrets."""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from typing import Any

import pytest
import requests
from urllib3.connection import HTTPConnection
from urllib3.exceptions import MaxRetryError, NewConnectionError

from golem_actors.yagna import (
    ApiConfig,
    CallRecord,
    RetryPolicy,
    YagnaBadRequestError,
    YagnaConflictError,
    YagnaConnectionError,
    YagnaError,
    YagnaGoneError,
    YagnaNotFoundError,
    YagnaResponseError,
    YagnaServerError,
    YagnaTimeoutError,
    YagnaUnauthorizedError,
)
from golem_actors.yagna.testing import MockRequest, MockResponse, MockYagna
from golem_actors.yagna.transport import redact

KEY = "67378e3f6a284f549010cc802e36f3c2"
AGREEMENTS = "/market-api/v1/agreements"
AGREEMENT_ID = "b34f" * 16


def _valid_to() -> dt.datetime:
    return dt.datetime(2026, 11, 28, tzinfo=dt.UTC)


def refused() -> requests.ConnectionError:
    """What requests raises when nothing listens on yagna's port (built like requests does)."""
    conn = HTTPConnection("127.0.0.1", 7465)
    reason = NewConnectionError(
        conn, "Failed to establish a new connection: [Errno 111] Connection refused"
    )
    return requests.ConnectionError(MaxRetryError(None, "/market-api/v1/agreements", reason))  # type: ignore[arg-type]


def agreement_body() -> dict[str, object]:
    part = {"properties": {}, "constraints": ""}
    return {
        "agreementId": AGREEMENT_ID,
        "demand": part,
        "offer": part,
        "validTo": "2026-11-28T00:00:00Z",
        "state": "Approved",
    }


# -- status -> error class ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, YagnaBadRequestError),
        (401, YagnaUnauthorizedError),
        (403, YagnaUnauthorizedError),
        (404, YagnaNotFoundError),
        (408, YagnaTimeoutError),
        (409, YagnaConflictError),
        (410, YagnaGoneError),
        (418, YagnaResponseError),
        (500, YagnaServerError),
        (502, YagnaServerError),
    ],
)
def test_status_maps_to_error_class(status: int, cls: type[YagnaError]) -> None:
    mock = MockYagna()
    mock.add("GET", f"{AGREEMENTS}/{AGREEMENT_ID}", status=status, json={"message": "nope"})
    with mock.client() as client, pytest.raises(cls) as info:
        client.market.get_agreement(AGREEMENT_ID)
    exc = info.value
    assert type(exc) is cls
    assert (exc.method, exc.path, exc.status, exc.message) == (
        "GET",
        f"/agreements/{AGREEMENT_ID}",
        status,
        "nope",
    )
    assert str(exc) == f"GET /agreements/{AGREEMENT_ID} -> {status}: nope"


def test_error_hierarchy() -> None:
    assert issubclass(YagnaGoneError, YagnaNotFoundError)
    assert issubclass(YagnaServerError, YagnaResponseError)
    assert issubclass(YagnaTimeoutError, YagnaError)
    assert not issubclass(YagnaTimeoutError, YagnaResponseError)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (MockResponse(404, json={"message": "Demand [x] not found."}), "Demand [x] not found."),
        (
            MockResponse(
                400,
                json={
                    "type": "/payment-api/v1/allocations/validation-error",
                    "detail": "Insufficient funds to create the allocation.",
                    "availableFunds": "978.7",
                },
            ),
            "Insufficient funds to create the allocation.",
        ),
        (MockResponse(500, json={"internalError": "db locked"}), "db locked"),
        (
            MockResponse(500, json={"detail": "bad", "internalError": "worse"}),
            "bad | worse",
        ),
        (MockResponse(401, text="Invalid application key"), "Invalid application key"),
        (
            MockResponse(400, text="Query deserialize error: missing field `agreementId`"),
            "Query deserialize error: missing field `agreementId`",
        ),
        (MockResponse(500, json="a bare JSON string"), "a bare JSON string"),
        (MockResponse(400, text="x" * 5000), "x" * 500),  # bounded
    ],
)
def test_yagna_message_extraction(answer: MockResponse, message: str) -> None:
    mock = MockYagna()
    mock.add("POST", AGREEMENTS, handler=lambda _r: answer)
    with mock.client() as client, pytest.raises(YagnaError) as info:
        client.market.create_agreement("R-1", _valid_to())
    assert info.value.message == message
    assert info.value.status == answer.status


def test_malformed_json_in_a_200_is_a_response_error() -> None:
    mock = MockYagna()
    mock.add("GET", f"{AGREEMENTS}/{AGREEMENT_ID}", text='{"agreementId": ')
    with mock.client() as client, pytest.raises(YagnaResponseError) as info:
        client.market.get_agreement(AGREEMENT_ID)
    assert info.value.status == 200
    assert "malformed JSON" in info.value.message
    # A read is asked again (bounded): a garbled answer may be a proxy's or a cut body.
    assert len(mock.calls) == RetryPolicy().attempts


def test_malformed_json_to_a_post_is_not_retried() -> None:
    mock = MockYagna()
    mock.add("POST", f"{AGREEMENTS}/{AGREEMENT_ID}/confirm", text="{oops")
    with mock.client() as client, pytest.raises(YagnaResponseError):
        client.transport.request("market", "POST", f"/agreements/{AGREEMENT_ID}/confirm")
    assert len(mock.calls) == 1  # it may have taken effect: never sent twice blindly


def test_empty_body_is_none() -> None:
    mock = MockYagna()
    mock.add("POST", f"{AGREEMENTS}/{AGREEMENT_ID}/confirm", status=204)
    with mock.client() as client:
        assert (
            client.transport.request("market", "POST", f"/agreements/{AGREEMENT_ID}/confirm")
            is None
        )


# -- retries -----------------------------------------------------------------------------------


def test_get_is_retried_on_503_then_succeeds() -> None:
    mock = MockYagna()
    path = f"{AGREEMENTS}/{AGREEMENT_ID}"
    mock.add("GET", path, status=503, json={"message": "busy"}, times=2)
    mock.add("GET", path, json=agreement_body())
    sleeps: list[float] = []
    with mock.client(sleep=sleeps.append) as client:
        agreement = client.market.get_agreement(AGREEMENT_ID)
    assert agreement.agreement_id == AGREEMENT_ID
    assert len(mock.calls) == 3
    assert len(sleeps) == 2
    assert all(0 < s <= RetryPolicy().max_delay for s in sleeps)


def test_get_gives_up_after_the_policy_attempts() -> None:
    mock = MockYagna()
    mock.add("GET", f"{AGREEMENTS}/{AGREEMENT_ID}", status=503, json={"message": "busy"})
    with mock.client(retry=RetryPolicy(attempts=3)) as client, pytest.raises(YagnaServerError):
        client.market.get_agreement(AGREEMENT_ID)
    assert len(mock.calls) == 3


def test_post_is_not_retried_on_503() -> None:
    mock = MockYagna()
    mock.add("POST", AGREEMENTS, status=503, json={"message": "busy"})
    with mock.client() as client, pytest.raises(YagnaServerError):
        client.market.create_agreement("R-1", _valid_to())
    assert len(mock.calls) == 1


def test_post_is_not_retried_when_the_connection_breaks_mid_request() -> None:
    mock = MockYagna()
    mock.add("POST", AGREEMENTS, raise_exc=requests.ConnectionError("Connection aborted."))
    with mock.client() as client, pytest.raises(YagnaConnectionError) as info:
        client.market.create_agreement("R-1", _valid_to())
    assert len(mock.calls) == 1
    assert info.value.method == "POST"
    assert "Connection aborted." in info.value.message


def test_post_is_retried_when_the_connection_was_refused() -> None:
    mock = MockYagna()
    mock.add("POST", AGREEMENTS, raise_exc=refused(), times=1)
    mock.add("POST", AGREEMENTS, json="agreement-1")
    with mock.client() as client:
        assert client.market.create_agreement("R-1", _valid_to()) == "agreement-1"
    assert len(mock.calls) == 2


def test_post_is_retried_on_connect_timeout() -> None:
    mock = MockYagna()
    mock.add("POST", AGREEMENTS, raise_exc=requests.ConnectTimeout("connect timed out"), times=2)
    mock.add("POST", AGREEMENTS, json="agreement-1")
    with mock.client() as client:
        assert client.market.create_agreement("R-1", _valid_to()) == "agreement-1"
    assert len(mock.calls) == 3


def test_refused_forever_raises_connection_error() -> None:
    mock = MockYagna()
    mock.add("GET", "/me", raise_exc=refused())
    with mock.client() as client, pytest.raises(YagnaConnectionError) as info:
        client.identity.me()
    assert len(mock.calls) == RetryPolicy().attempts
    assert "Connection refused" in info.value.message


def test_get_is_retried_when_the_connection_breaks() -> None:
    mock = MockYagna()
    mock.add("GET", "/me", raise_exc=requests.ConnectionError("Connection aborted."), times=1)
    mock.add("GET", "/me", json={"identity": "0xabc"})
    with mock.client() as client:
        assert client.identity.me().identity == "0xabc"
    assert len(mock.calls) == 2


def test_read_timeout_is_not_retried() -> None:
    mock = MockYagna()
    mock.add("GET", "/me", raise_exc=requests.ReadTimeout("read timed out"))
    with mock.client() as client, pytest.raises(YagnaTimeoutError) as info:
        client.identity.me()
    assert len(mock.calls) == 1
    assert info.value.status is None


def test_wait_for_approval_is_marked_idempotent_and_retried() -> None:
    mock = MockYagna()
    path = f"{AGREEMENTS}/{AGREEMENT_ID}/wait"
    mock.add("POST", path, status=503, times=1)
    mock.add("POST", path, status=204)
    with mock.client() as client:
        client.market.wait_for_approval(AGREEMENT_ID, timeout=5)
    assert len(mock.calls) == 2


# -- long-polls and queries --------------------------------------------------------------------


def test_long_poll_sends_timeout() -> None:
    mock = MockYagna()
    mock.add("GET", "/market-api/v1/demands/d1/events", json=[])
    with mock.client() as client:
        assert client.market.demand_events("d1", timeout=3) == []
        client.market.demand_events("d1", timeout=2.5, max_events=7)
    assert mock.calls[0].query == {"maxEvents": "100", "timeout": "3"}
    assert mock.calls[1].query == {"maxEvents": "7", "timeout": "2.5"}


def test_long_poll_reads_longer_than_the_server_waits() -> None:
    seen: list[object] = []

    class Recording(MockYagna):
        def send(  # type: ignore[override]
            self, request: requests.PreparedRequest, **kwargs: Any
        ) -> requests.Response:
            seen.append(kwargs.get("timeout"))
            return super().send(request, **kwargs)

    mock = Recording()
    mock.add("GET", "/market-api/v1/demands/d1/events", json=[])
    with mock.client(read_timeout=10) as client:
        client.market.demand_events("d1", timeout=60)
        client.market.demand_events("d1", timeout=1)
    assert seen[0] == (5.0, 65.0)
    assert seen[1] == (5.0, 10)


def test_none_query_values_are_omitted() -> None:
    mock = MockYagna()
    mock.add("GET", "/market-api/v1/agreementEvents", json=[])
    mock.add("POST", f"{AGREEMENTS}/{AGREEMENT_ID}/confirm", status=204)
    with mock.client() as client:
        client.market.agreement_events(timeout=1)
        client.market.confirm_agreement(AGREEMENT_ID)
        client.market.confirm_agreement(AGREEMENT_ID, app_session_id="s1")
    assert mock.calls[0].query == {"maxEvents": "100", "timeout": "1"}
    assert mock.calls[1].query == {}
    assert mock.calls[2].query == {"appSessionId": "s1"}


def test_boolean_query_values_are_lowercase() -> None:
    mock = MockYagna()
    mock.add("GET", "/me", json={"identity": "0xabc"})
    with mock.client() as client:
        client.transport.request("root", "GET", "/me", params={"flag": True, "other": False})
    assert mock.calls[0].query == {"flag": "true", "other": "false"}


# -- observers ---------------------------------------------------------------------------------


def test_observers_receive_call_records() -> None:
    mock = MockYagna()
    mock.add("GET", "/me", status=503, times=1)
    mock.add("GET", "/me", raise_exc=requests.ConnectionError("Connection aborted."), times=1)
    mock.add("GET", "/me", json={"identity": "0xabc"})
    records: list[CallRecord] = []
    with mock.client() as client:
        client.transport.observers.append(records.append)
        client.identity.me()
    assert [(r.status, r.outcome, r.attempt) for r in records] == [
        (503, "error", 1),
        (None, "failed", 2),
        (200, "ok", 3),
    ]
    assert all((r.api, r.method, r.path) == ("root", "GET", "/me") for r in records)
    assert all(r.duration >= 0 for r in records)


# -- the app key never leaks -------------------------------------------------------------------


def _all_text(exc: BaseException) -> str:
    return "".join(
        [str(exc), repr(exc), *traceback.format_exception(exc), *(str(a) for a in exc.args)]
    )


def test_app_key_is_sent_as_bearer() -> None:
    mock = MockYagna()
    mock.add("GET", "/me", json={"identity": "0xabc"})
    with mock.client(app_key=KEY) as client:
        client.identity.me()
    assert mock.calls[0].headers["Authorization"] == f"Bearer {KEY}"


def test_app_key_not_in_reprs() -> None:
    config = ApiConfig(app_key=KEY)
    mock = MockYagna()
    with mock.client(app_key=KEY) as client:
        texts = [repr(config), str(config), repr(client), str(client), repr(client.config)]
    assert all(KEY not in t for t in texts)


def echo_key(request: MockRequest) -> MockResponse:
    """An error answer that echoes the request's key back, as a careless server might."""
    return MockResponse(
        401, json={"message": f"Invalid application key {request.headers['Authorization']}"}
    )


@pytest.mark.parametrize(
    "answer",
    [
        echo_key,
        lambda r: MockResponse(500, text=f"boom: {r.headers['Authorization']}"),
        lambda r: MockResponse(400, json={"detail": f"bad {KEY}", "internalError": KEY}),
        lambda r: MockResponse(200, text=f"not json {KEY}"),
        lambda r: MockResponse(raise_exc=requests.ConnectionError(f"aborted: Bearer {KEY}")),
        lambda r: MockResponse(raise_exc=requests.ReadTimeout(f"timed out {KEY}")),
    ],
)
def test_app_key_never_in_exceptions(answer: object) -> None:
    mock = MockYagna()
    mock.add("GET", "/me", handler=answer)  # type: ignore[arg-type]
    with mock.client(app_key=KEY) as client, pytest.raises(YagnaError) as info:
        client.identity.me()
    text = _all_text(info.value)
    assert KEY not in text
    assert "<redacted>" in text  # the echo was there, and was removed


def test_app_key_never_in_debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the api one included
    mock = MockYagna()
    mock.add("GET", "/me", handler=echo_key, times=1)
    mock.add("GET", "/me", status=503, times=1)
    mock.add("GET", "/me", raise_exc=requests.ConnectionError(f"aborted {KEY}"), times=1)
    mock.add("GET", "/me", json={"identity": "0xabc", "echo": KEY})
    with mock.client(app_key=KEY) as client:
        with pytest.raises(YagnaUnauthorizedError):
            client.identity.me()
        assert client.identity.me().identity == "0xabc"
    api_records = [r for r in caplog.records if r.name == "golem_actors.yagna.api"]
    assert len(api_records) == 4  # one line per attempt: 401, then 503, failed, 200
    assert KEY not in caplog.text
    assert all(KEY not in r.getMessage() for r in caplog.records)


def test_app_key_prefix_never_in_a_truncated_message() -> None:
    mock = MockYagna()
    mock.add("GET", "/me", status=400, json={"message": "x" * 490 + KEY})
    with mock.client(app_key=KEY) as client, pytest.raises(YagnaError) as info:
        client.identity.me()
    assert KEY[:10] not in _all_text(info.value)


def test_a_short_key_is_redacted_as_a_whole_token_only():
    assert (
        redact("Max retries exceeded; key x used", "x")
        == "Max retries exceeded; key <redacted> used"
    )
    assert redact("Bearer abc123xyz0", "abc123xyz0") == "Bearer <redacted>"
    assert redact("token=abc123xyz0abc", "abc123xyz0") == "token=<redacted>abc"
