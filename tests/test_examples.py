"""Every example runs on localnet and does what its docstring says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest

from golem_actors import Golem, ServiceState
from golem_actors.cli.run import load_service
from golem_actors.localnet.network import LocalNet
from golem_actors.yagna import ApiConfig

pytestmark = [pytest.mark.yagna, pytest.mark.usefixtures("healthy_providers")]

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture
def golem(localnet: LocalNet) -> Iterator[Golem]:
    config = ApiConfig(app_key=localnet.app_key, api_url=localnet.api_url)
    with Golem(config=config, budget="2", settle_timeout_s=20) as session:
        yield session
    assert pykka.ActorRegistry.get_all() == []  # no actor outlives its run


def test_heartbeat_runs_and_its_process_survives_between_commands(golem: Golem) -> None:
    service = load_service(f"{EXAMPLES / 'heartbeat.py'}:Heartbeat")
    cluster = golem.run_service(service, 2, health_interval_s=1.0)
    assert cluster.wait_running(timeout=60), cluster.snapshots()
    # run() reads the heartbeat every 2 s and raises on a stale one: still running after
    # several checks means the background process kept beating between commands.
    handle = cluster.handles[0]
    assert not handle.wait_for(ServiceState.FAILED, ServiceState.PENDING, timeout=7)
    assert handle.restarts == 0


def test_kv_store_keeps_its_state_in_a_process(golem: Golem) -> None:
    service = load_service(f"{EXAMPLES / 'kv_store.py'}:KvStore")
    cluster = golem.run_service(service, 1, health_interval_s=1.0)
    assert cluster.wait_running(timeout=60), cluster.snapshots()
    handle = cluster.handles[0]
    # run() sets and reads back a counter every 2 s, raising if the store lost it.
    assert not handle.wait_for(ServiceState.FAILED, ServiceState.PENDING, timeout=7)
    assert handle.restarts == 0
