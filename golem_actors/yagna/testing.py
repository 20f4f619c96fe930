"""A test double at the client boundary: a ``requests`` adapter that serves canned yagna answers.

Like httpx's ``MockTransport``: the code under test uses a real ``YagnaClient``, and only the
bytes on the wire are scripted. Real behaviour is pinned by the integration tests against the real
daemon; this lets the logic above the client be tested fast and deterministically.

    routes = MockYagna()
    routes.add("GET", "/me", json={"identity": "0xabc"})
    client = routes.client()
"""

from __future__ import annotations

import json as jsonlib
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict

from golem_actors.yagna.client import YagnaClient
from golem_actors.yagna.config import ApiConfig
from golem_actors.yagna.retry import RetryPolicy

__all__ = ["MockRequest", "MockResponse", "MockYagna"]

MOCK_URL = "http://yagna.mock"


@dataclass(frozen=True)
class MockRequest:
    method: str
    path: str  # the full path, e.g. /market-api/v1/demands
    query: dict[str, str]
    body: Any  # decoded JSON, or None
    headers: Mapping[str, str]


@dataclass
class MockResponse:
    status: int = 200
    json: Any = None
    text: str | None = None  # raw body instead of JSON (e.g. to test malformed answers)
    raise_exc: BaseException | None = None  # raised instead of answering (connection faults)


Handler = Callable[[MockRequest], MockResponse]


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    times: int | None  # None: forever


@dataclass
class MockYagna(requests.adapters.BaseAdapter):
    """Routes by method and path regex (full match); unmatched calls answer 404 and are recorded."""

    routes: list[_Route] = field(default_factory=list)
    calls: list[MockRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def add(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        json: Any = None,
        text: str | None = None,
        raise_exc: BaseException | None = None,
        handler: Handler | None = None,
        times: int | None = None,
    ) -> None:
        """Answer ``method path`` (a regex) with a fixed response or a handler, ``times`` times."""
        if handler is None:
            response = MockResponse(status, json, text, raise_exc)

            def fixed(_: MockRequest) -> MockResponse:
                return response

            handler = fixed
        with self._lock:
            self.routes.append(_Route(method, re.compile(path), handler, times))

    def client(self, app_key: str = "mock-app-key", **kwargs: Any) -> YagnaClient:
        """A ``YagnaClient`` whose every call lands here (no sleeping between retries)."""
        session = requests.Session()
        session.mount(MOCK_URL, self)
        kwargs.setdefault("sleep", lambda _s: None)
        kwargs.setdefault("retry", RetryPolicy())
        return YagnaClient(ApiConfig(app_key=app_key, api_url=MOCK_URL), session=session, **kwargs)

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **_: Any
    ) -> requests.Response:
        url = urlsplit(request.url or "")
        raw = request.body
        if isinstance(raw, bytes):
            raw = raw.decode()
        mock_request = MockRequest(
            method=request.method or "GET",
            path=url.path,
            query=dict(parse_qsl(url.query)),
            body=jsonlib.loads(raw) if raw else None,
            headers=dict(request.headers),
        )
        with self._lock:
            self.calls.append(mock_request)
            route = self._match(mock_request)
        answer = (
            route.handler(mock_request) if route else MockResponse(404, {"message": "no route"})
        )
        if answer.raise_exc is not None:
            raise answer.raise_exc
        return self._build(request, answer)

    def _match(self, request: MockRequest) -> _Route | None:
        for route in self.routes:
            if route.method == request.method and route.pattern.fullmatch(request.path):
                if route.times is not None:
                    route.times -= 1
                    if route.times == 0:
                        self.routes.remove(route)
                return route
        return None

    @staticmethod
    def _build(request: requests.PreparedRequest, answer: MockResponse) -> requests.Response:
        response = requests.Response()
        response.status_code = answer.status
        if answer.text is not None:
            content = answer.text.encode()
        elif answer.json is None:
            content = b""
        else:
            content = jsonlib.dumps(answer.json).encode()
        response._content = content  # noqa: SLF001
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        response.request = request
        response.url = request.url or ""
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass
