"""Security: the app key never leaks, and every server binds 127.0.0.1 unless told otherwise.

Sandbox escapes on localnet's providers are tested where the sandbox is:
``tests/localnet/test_sandbox.py`` (``test_host_path_refuses_escapes``: ``..`` paths, absolute
paths, symlinks out of the volumes and into another activity's; ``test_other_activities_and_the_
host_are_not_visible``; ``test_no_network``; ``test_the_system_is_read_only_and_tmp_private``) and
``tests/localnet/test_exeunit.py`` (``test_sandbox_escapes_through_exescript_are_refused``: the same
through transfers and commands of a real ExeScript). They are not repeated here.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from golem_actors.golem import Golem
from golem_actors.localnet.apifaults import ApiFaultProxy, FaultPlan
from golem_actors.localnet.images import ImageStore
from golem_actors.localnet.network import LocalNet
from golem_actors.localnet.registry import serve_registry
from golem_actors.metrics import Metrics
from golem_actors.status import StatusServer
from golem_actors.storage.http import HttpStorage
from golem_actors.yagna import ApiConfig, YagnaClient, YagnaError
from golem_actors.yagna.retry import RetryPolicy
from tests.waiting import wait_for

EXAMPLES = Path(__file__).parent.parent / "examples"


def _bound(url: str) -> tuple[str, int]:
    match = re.fullmatch(r"http://([^:/]+):(\d+)/?", url)
    assert match, url
    return match.group(1), int(match.group(2))


def _listening_on(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex((host, port)) == 0


# -- servers bind loopback by default ---------------------------------------------------------


def _assert_loopback_only(url: str, sockname: tuple[object, ...]) -> None:
    host, port = _bound(url)
    assert host == "127.0.0.1", url
    assert sockname[0] == "127.0.0.1", sockname  # the socket itself, not only what is printed
    assert _listening_on("127.0.0.1", port)


def test_http_storage_binds_loopback() -> None:
    storage = HttpStorage()
    try:
        _assert_loopback_only(storage.base_url, storage._server.server_address[:2])
    finally:
        storage.close()


def test_the_status_server_binds_loopback() -> None:
    golem = Golem(config=ApiConfig(app_key="k", api_url="http://127.0.0.1:9"))
    server = StatusServer(golem, metrics=Metrics())  # metrics unbound: no session needed
    try:
        _assert_loopback_only(server.url, server._server.server_address[:2])
    finally:
        server.close()


def test_the_image_store_binds_loopback(tmp_path: Path) -> None:
    server, url = serve_registry(ImageStore(tmp_path))
    try:
        _assert_loopback_only(url, server.server_address[:2])
    finally:
        server.shutdown()
        server.server_close()


def test_the_fault_proxy_binds_loopback() -> None:
    with ApiFaultProxy("http://127.0.0.1:9", FaultPlan()) as proxy:
        _assert_loopback_only(proxy.url, proxy._server.server_address[:2])


@pytest.mark.yagna
def test_localnet_serves_only_on_loopback(localnet: LocalNet) -> None:
    for url in (localnet.api_url, localnet.images_url):
        assert url is not None
        assert _bound(url)[0] == "127.0.0.1", url


# -- the app key never leaks ------------------------------------------------------------------


@pytest.fixture
def api_debug() -> Iterator[None]:
    api_log = logging.getLogger("golem_actors.yagna.api")
    level = api_log.level
    api_log.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        api_log.setLevel(level)


@pytest.mark.yagna
@pytest.mark.usefixtures("api_debug")
def test_failed_calls_never_show_the_key(
    localnet: LocalNet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = localnet.app_key
    config = ApiConfig(app_key=key, api_url=localnet.api_url)
    assert key not in repr(config)
    seen: list[str] = []
    with YagnaClient(config) as client:
        with pytest.raises(YagnaError) as missing:  # an answer with an error
            client.market.get_agreement("no-such-agreement")
        seen.append("".join(traceback.format_exception(missing.value)))
    with YagnaClient(ApiConfig(app_key=key, api_url="http://127.0.0.1:9")) as client:
        with pytest.raises(YagnaError) as refused:  # no answer at all
            client.identity.me()
        seen.append("".join(traceback.format_exception(refused.value)))
    # Through the fault proxy: a malformed answer and a reset (the proxy logs no headers).
    plan = FaultPlan(rate=1.0, seed=1, kinds=("malformed", "reset"))
    with ApiFaultProxy(localnet.api_url, plan) as proxy:
        config = ApiConfig(app_key=key, api_url=proxy.url)
        with YagnaClient(config, retry=RetryPolicy(attempts=1)) as client:
            for _ in range(4):
                with pytest.raises(YagnaError) as faulted:
                    client.identity.me()
                seen.append("".join(traceback.format_exception(faulted.value)))
    assert all(text.strip() for text in seen)
    for text in seen:
        assert key not in text
    assert key not in caplog.text
    assert any("/me" in r.getMessage() for r in caplog.records), "the calls were not logged"


@pytest.mark.yagna
@pytest.mark.usefixtures("healthy_providers")
def test_a_real_run_never_shows_the_key(localnet: LocalNet, tmp_path: Path) -> None:
    """A whole CLI run at DEBUG with every call logged, /status and /metrics read while it
    runs, and its run directory: the key appears nowhere."""
    key = localnet.app_key
    env = {k: v for k, v in os.environ.items() if not k.startswith("YAGNA_")}
    env["YAGNA_APPKEY"] = key
    argv = [sys.executable, "-m", "golem_actors.cli", "--log-level", "DEBUG", "--debug-api"]
    argv += ["run", f"{EXAMPLES / 'heartbeat.py'}:Heartbeat", "-n", "1", "--duration", "6"]
    argv += ["--metrics-port", "0", "--yagna", localnet.api_url, "--budget", "1", "--no-table"]
    argv += ["--run-dir", str(tmp_path / "run")]
    output = tmp_path / "output.txt"
    with output.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            url = wait_for(
                "the status server's address",
                lambda: (m := re.search(r"/status on (http://\S+)", output.read_text())) and m[1],
                timeout=60,
            )
            assert _bound(url)[0] == "127.0.0.1"

            def metrics_with_an_instance() -> requests.Response | None:
                page = requests.get(f"{url}/metrics", timeout=10)
                return page if page.ok and "golem_service_instances" in page.text else None

            pages = [
                requests.get(f"{url}/status", timeout=10),
                wait_for("an instance in /metrics", metrics_with_an_instance, timeout=60),
            ]
            assert process.wait(90) == 0, output.read_text()[-2000:]
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    text = output.read_text()
    assert "market POST /demands -> 201" in text  # every call was logged, at DEBUG
    assert "invoices accepted 1" in text  # a real run, paid
    assert all(page.ok and page.text for page in pages)
    for page in pages:
        assert key not in page.text
    assert key not in text
    for path in (tmp_path / "run").rglob("*"):
        assert key.encode() not in path.read_bytes(), path
