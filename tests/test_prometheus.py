"""A real Prometheus (Debian's ``prometheus`` package) scrapes a localnet service run.

The test starts its own ``prometheus`` binary on 127.0.0.1 with a temporary config and storage,
scraping every second, and always stops it. Two Heartbeat instances run, one provider is killed so
that an instance restarts elsewhere, then the session stops and pays; every check goes through
Prometheus's HTTP API, as a dashboard would.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from golem_actors import Golem
from golem_actors.cli.run import load_service
from golem_actors.localnet.network import LocalNet
from golem_actors.metrics import Metrics
from golem_actors.policy.supervision import Backoff, SupervisorPolicy
from golem_actors.status import StatusServer
from golem_actors.yagna import ApiConfig
from tests.test_dashboard import dashboard_queries
from tests.waiting import wait_for

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]

HEARTBEAT = Path(__file__).parent.parent / "examples" / "heartbeat.py"
INSTALL_HINT = "Debian's prometheus is not installed: run `bash .ci/bootstrap test`"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Prometheus:
    """One ``prometheus`` server process scraping ``target`` every second."""

    def __init__(self, workdir: Path, target: str) -> None:
        binary = shutil.which("prometheus")
        assert binary is not None, INSTALL_HINT
        self.url = f"http://127.0.0.1:{_free_port()}"
        config = workdir / "prometheus.yml"
        config.write_text(
            textwrap.dedent(
                f"""
                global:
                  scrape_interval: 1s
                  scrape_timeout: 1s
                  evaluation_interval: 1s
                scrape_configs:
                  - job_name: golem-actors
                    static_configs:
                      - targets: ["{target}"]
                """
            )
        )
        self.log = (workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def ready(self) -> bool:
        assert self.process.poll() is None, f"prometheus exited: {self.process.returncode}"
        try:
            return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def series(self, promql: str) -> list[dict[str, Any]]:
        """The query's result now (Prometheus rejects a malformed query with a 400)."""
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        assert answer.status_code == 200, f"{promql}: {answer.text}"
        body: dict[str, Any] = answer.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def query(self, promql: str) -> float | None:
        """The query's single value now, or None while it has no result."""
        result = self.series(promql)
        assert len(result) <= 1, f"{promql} has {len(result)} series: {result}"
        return float(result[0]["value"][1]) if result else None

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.log.close()


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[[str], Prometheus]]:
    started: list[Prometheus] = []

    def start(target: str) -> Prometheus:
        server = Prometheus(tmp_path, target)
        started.append(server)
        wait_for("prometheus to be ready", server.ready, timeout=60)
        return server

    yield start
    for server in started:
        server.close()


def test_prometheus_sees_instances_restarts_and_payments(
    localnet: LocalNet, start_prometheus: Callable[[str], Prometheus]
) -> None:
    config = ApiConfig(app_key=localnet.app_key, api_url=localnet.api_url)
    golem = Golem(config=config, budget="5", settle_timeout_s=30)
    golem.start()
    metrics = Metrics()
    metrics.bind(golem)
    server = StatusServer(golem, metrics=metrics)
    try:
        prom = start_prometheus(server.url.removeprefix("http://"))

        def seen(promql: str, want: Callable[[float], bool]) -> Callable[[], bool]:
            return lambda: (value := prom.query(promql)) is not None and want(value)

        policy = SupervisorPolicy(service="Heartbeat", backoff=Backoff(min_s=0.1, max_s=1.0))
        heartbeat = load_service(f"{HEARTBEAT}:Heartbeat")
        cluster = golem.run_service(heartbeat, 2, health_interval_s=1.0, policy=policy)
        assert cluster.wait_running(timeout=90), cluster.snapshots()
        running = 'sum(golem_service_instances{service="Heartbeat",state="running"})'
        wait_for("Prometheus to see 2 running", seen(running, lambda v: v == 2), timeout=30)
        assert prom.query('up{job="golem-actors"}') == 1
        status = requests.get(f"{server.url}/status", timeout=10)
        assert [i["state"] for i in status.json()["instances"]] == ["running", "running"]
        assert localnet.app_key not in status.text
        assert prom.query("golem_agreements_active") == 2
        assert prom.query('golem_build_info{version!=""}') == 1

        victim = cluster.handles[0].snapshot().provider_name
        assert victim is not None
        localnet.kill(victim)
        restarts = 'sum(golem_supervisor_restarts_total{service="Heartbeat"})'
        wait_for("Prometheus to see the restart", seen(restarts, lambda v: v >= 1), timeout=90)
        wait_for("2 running again", seen(running, lambda v: v == 2), timeout=90)
        # The restart's reason is a closed-set label, and the backoff it waited was recorded.
        reasons = prom.query('count(golem_supervisor_restarts_total{service="Heartbeat"} > 0)')
        assert reasons is not None
        assert reasons >= 1
        backoffs = 'golem_supervisor_backoff_seconds_count{service="Heartbeat"}'
        assert (prom.query(backoffs) or 0) >= 1
        assert (prom.query("sum(golem_yagna_api_requests_total)") or 0) > 0
        # Every dashboard query is valid PromQL here, and the instance panel has data.
        for promql in dashboard_queries():
            prom.series(promql)
        assert prom.series(dashboard_queries()[0])

        golem.stop()  # terminates both agreements, accepts the invoices, releases the budget
        wait_for(
            "Prometheus to see an accepted invoice",
            seen("golem_invoices_accepted_total", lambda v: v >= 1),
            timeout=30,
        )
        wait_for(
            "Prometheus to see the money",
            seen("golem_budget_glm - golem_budget_left_glm", lambda v: v > 0),
            timeout=30,
        )
        assert (prom.query("golem_invoices_accepted_glm_total") or 0) > 0
        assert prom.query("golem_agreements_active") == 0
        assert prom.query('sum(golem_service_instances{state="running"})') == 0
        assert (prom.query("golem_agreement_negotiation_seconds_count") or 0) >= 3
    finally:
        golem.stop()
        server.close()
        metrics.unbind()
