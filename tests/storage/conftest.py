"""A ``Golem`` session on localnet whose files move by GFTP (the default storage)."""

from __future__ import annotations

from collections.abc import Iterator

import pykka
import pytest

from golem_actors import Golem
from golem_actors.localnet.network import LocalNet
from golem_actors.storage.gftp import GftpStorage
from golem_actors.yagna import ApiConfig


@pytest.fixture
def golem(localnet: LocalNet) -> Iterator[Golem]:
    config = ApiConfig(app_key=localnet.app_key, api_url=localnet.api_url)
    with Golem(config=config, budget="2", settle_timeout_s=20, storage="gftp") as session:
        storage = session.storage.current
        assert isinstance(storage, GftpStorage)
        yield session
    assert storage._closed.is_set()  # the session closed the storage it opened
    assert pykka.ActorRegistry.get_all() == []
