"""Shared fixtures: a real yagna daemon (from golem-node), started once per test session.

`localnet` is a whole local network (yagna plus provider processes), also started once.

The daemon runs in central-net self-hub mode on loopback with a temporary data dir, a requestor
identity (auto-configured key) and a provider identity with its own key. It is always stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from golem_actors.localnet.network import LocalNet
from golem_actors.localnet.node import NodeIdentity, YagnaNode
from golem_actors.yagna import ApiConfig, YagnaClient


@dataclass(frozen=True)
class RealYagna:
    node: YagnaNode
    requestor_id: NodeIdentity
    provider_id: NodeIdentity

    def client(self, who: NodeIdentity, **kwargs: object) -> YagnaClient:
        config = ApiConfig(app_key=who.app_key, api_url=self.node.api_url)
        return YagnaClient(config, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def real_yagna(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealYagna]:
    data_dir: Path = tmp_path_factory.mktemp("yagna")
    node = YagnaNode(data_dir)
    node.start()
    try:
        provider = node.ensure_identities(["provider"])["provider"]
        yield RealYagna(node, node.requestor, provider)
    finally:
        node.stop()


@pytest.fixture
def requestor(real_yagna: RealYagna) -> Iterator[YagnaClient]:
    with real_yagna.client(real_yagna.requestor_id) as client:
        yield client


@pytest.fixture
def provider(real_yagna: RealYagna) -> Iterator[YagnaClient]:
    with real_yagna.client(real_yagna.provider_id) as client:
        yield client


@pytest.fixture(scope="session")
def localnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    """One local Golem network for the whole session: yagna plus four provider processes."""
    with LocalNet(providers=4, data_dir=tmp_path_factory.mktemp("localnet")) as net:
        yield net


@pytest.fixture
def healthy_providers(localnet: LocalNet) -> Iterator[None]:
    """Faults injected by one test never leak into the next; crashed providers (and their
    nodes' daemons, killed or paused) come back."""
    yield
    for name, provider in localnet.providers.items():
        daemon = localnet.daemons.node(name).state
        if provider.state.startswith("exited") or daemon != "running":
            localnet.restart_provider(name)
        else:
            localnet.clear_faults(name)
