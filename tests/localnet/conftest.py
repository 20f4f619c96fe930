"""A local network for the localnet tests: the real yagna plus three provider processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from golem_actors.localnet.network import LocalNet
from golem_actors.yagna import ApiConfig, YagnaClient
from golem_actors.yagna.models import Allocation


@pytest.fixture(scope="session")
def localnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    with LocalNet(providers=3, data_dir=tmp_path_factory.mktemp("localnet")) as net:
        yield net


@pytest.fixture
def client(localnet: LocalNet) -> Iterator[YagnaClient]:
    with YagnaClient(ApiConfig(app_key=localnet.app_key, api_url=localnet.api_url)) as yagna:
        yield yagna


@pytest.fixture
def allocation(client: YagnaClient) -> Iterator[Allocation]:
    created = client.payment.create_allocation("100")
    yield created
    client.payment.release_allocation(created.allocation_id)


@pytest.fixture
def healthy_providers(localnet: LocalNet) -> Iterator[None]:
    """Faults injected by one test never leak into the next; crashed providers come back."""
    yield
    for name, provider in localnet.providers.items():
        if provider.state.startswith("exited"):
            localnet.restart_provider(name)
        else:
            localnet.clear_faults(name)
