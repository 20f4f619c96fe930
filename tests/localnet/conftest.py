"""Fixtures of the localnet tests; the `localnet` network itself is in tests/conftest.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from golem_actors.localnet.images import ImageStore
from golem_actors.localnet.network import LocalNet
from golem_actors.localnet.registry import serve_registry
from golem_actors.yagna import ApiConfig, YagnaClient
from golem_actors.yagna.models import Allocation
from tests.localnet.test_exeunit import Files


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
def registry(tmp_path: Path) -> Iterator[tuple[ImageStore, str]]:
    """An empty image store and its registry on loopback: ``(store, GOLEM_REGISTRY_URL)``."""
    store = ImageStore(tmp_path / "store")
    server, url = serve_registry(store)
    yield store, url
    server.shutdown()
    server.server_close()


@pytest.fixture
def blob_server() -> Iterator[Files]:
    """A requestor's HTTP file server: GET serves ``files`` (any bytes), PUT fills ``uploads``."""
    server = Files()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)
