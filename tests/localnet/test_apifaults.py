"""The API fault proxy: each fault kind does what it says, seeded, and binds 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from golem_actors.localnet.apifaults import KINDS, ApiFaultProxy, FaultPlan


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits: list[str] = []  # noqa: RUF012 - one upstream per test module run

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def upstream() -> Iterator[str]:
    _Upstream.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def get(url: str, timeout: float = 5.0) -> requests.Response:
    return requests.get(url, timeout=timeout)


def test_no_faults_is_transparent_and_local(upstream: str) -> None:
    with ApiFaultProxy(upstream) as proxy:
        assert proxy.url.startswith("http://127.0.0.1:")
        answer = get(proxy.url + "/x?y=1")
        assert answer.json() == {"path": "/x?y=1"}
    assert _Upstream.hits == ["/x?y=1"]


@pytest.mark.parametrize(
    ("kind", "forwarded", "check"),
    [
        ("error", False, lambda r: r.status_code == 503),
        ("error_after", True, lambda r: r.status_code == 500),
        ("malformed", True, lambda r: r.status_code == 200 and r.text.startswith('{"this is"')),
        ("slow", True, lambda r: r.json() == {"path": "/p"}),
    ],
)
def test_answering_kinds(upstream: str, kind: str, forwarded: bool, check: Any) -> None:
    with ApiFaultProxy(upstream, FaultPlan(rate=1, kinds=(kind,), slow_s=0.2)) as proxy:
        assert check(get(proxy.url + "/p"))
        assert proxy.stats.faults[kind] == 1
    assert bool(_Upstream.hits) is forwarded


@pytest.mark.parametrize(
    ("kind", "forwarded"), [("reset", False), ("lost", True), ("timeout", True)]
)
def test_connection_kinds(upstream: str, kind: str, forwarded: bool) -> None:
    plan = FaultPlan(rate=1, kinds=(kind,), hang_s=0.3)
    with ApiFaultProxy(upstream, plan) as proxy, pytest.raises(requests.ConnectionError):
        get(proxy.url + "/p")
    assert bool(_Upstream.hits) is forwarded  # lost and timeout: it happened, no one was told


def test_per_path_rates_and_seeded_draws(upstream: str) -> None:
    plan = FaultPlan(rate=0.0, seed=5, kinds=("error",), paths=((r"^/pay", 0.5),))
    outcomes = []
    for _ in range(2):
        with ApiFaultProxy(upstream, plan) as proxy:
            outcomes.append([get(proxy.url + "/pay").status_code for _ in range(20)])
            assert all(get(proxy.url + "/market").status_code == 200 for _ in range(5))
    assert outcomes[0] == outcomes[1]  # the same seed, the same faults
    assert {200, 503} == set(outcomes[0])


@pytest.mark.parametrize(
    ("plan", "problem"),
    [
        ({"rate": 1.5}, "probability"),
        ({"kinds": ("explode",)}, "fault kinds"),
        ({"paths": (("(", 0.1),)}, "missing"),
        ({"hang_s": -1}, ">= 0"),
    ],
)
def test_bad_plans_are_refused(plan: dict[str, Any], problem: str) -> None:
    with pytest.raises(Exception, match=problem):
        FaultPlan(**plan)


def test_all_kinds_are_known() -> None:
    assert set(FaultPlan().kinds) == set(KINDS)
