"""RegistryResolver against a fake registry on 127.0.0.1: tag, hash, unknown tag, registry down."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from golem_actors.golem import Golem, GolemError
from golem_actors.images.info import REGISTRY_URL_ENV, ImageRegistryError
from golem_actors.images.registry import RegistryResolver
from golem_actors.policy.demand import DemandSpec, build_demand
from golem_actors.policy.payload import TASK_PACKAGE, VmPayload
from golem_actors.yagna import ApiConfig

HASH = "9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae"
TAG = "golem/alpine:latest"
NOWHERE = ApiConfig(app_key="k", api_url="http://127.0.0.1:9")


class FakeRegistry:
    """Knows one image, by tag and by hash; records every query it was sent."""

    def __init__(self) -> None:
        self.queries: list[dict[str, list[str]]] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                registry.queries.append(query)
                known = query.get("tag") == [TAG] or query.get("hash") == [HASH]
                if url.path != "/v1/image/info" or not known:
                    self._json(404, {"message": f"image not found: {url.query}"})
                    return
                base = registry.url
                self._json(
                    200,
                    {
                        "sha3": HASH,
                        "http": f"{base}/download/alpine.gvmi",
                        "https": "https://registry.example/download/alpine.gvmi",
                        "size": 1234,
                        "tag": TAG,
                    },
                )

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        if not self.thread.is_alive():
            return  # closed already (the "registry down" test closes it early)
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    fake = FakeRegistry()
    try:
        yield fake
    finally:
        fake.close()


def test_a_tag_resolves_once_per_resolver(registry: FakeRegistry) -> None:
    resolver = RegistryResolver(registry.url)
    package = f"hash:sha3:{HASH}:{registry.url}/download/alpine.gvmi"
    assert resolver(VmPayload(image_tag=TAG)) == package
    assert resolver(VmPayload(image_tag=TAG, min_mem_gib=2)) == package  # cached: same image
    assert registry.queries == [{"count": ["true"], "tag": [TAG]}]


def test_a_bare_hash_resolves_and_https_is_picked_on_request(registry: FakeRegistry) -> None:
    resolver = RegistryResolver(registry.url, use_https=True)
    package = resolver(VmPayload(image_hash=HASH))
    assert package == f"hash:sha3:{HASH}:https://registry.example/download/alpine.gvmi"
    assert registry.queries == [{"count": ["true"], "hash": [HASH]}]


def test_a_demand_carries_the_resolved_image(registry: FakeRegistry) -> None:
    platform = "erc20-holesky-tglm"
    demand = build_demand(
        DemandSpec(VmPayload(image_tag=TAG)),
        now=dt.datetime.now(dt.UTC),
        decoration_properties={f"golem.com.payment.platform.{platform}.address": "0xaa"},
        decoration_constraints=[],
        image_resolver=RegistryResolver(registry.url),
    )
    assert demand.properties[TASK_PACKAGE].startswith(f"hash:sha3:{HASH}:{registry.url}/")


def test_an_unknown_tag_names_the_tag_and_is_not_cached(registry: FakeRegistry) -> None:
    resolver = RegistryResolver(registry.url)
    for _ in range(2):
        with pytest.raises(ImageRegistryError, match=r"image tag nobody/nothing:1 is not in"):
            resolver(VmPayload(image_tag="nobody/nothing:1"))
    assert len(registry.queries) == 2  # a failure is asked again next time


def test_a_registry_that_is_down_is_named(registry: FakeRegistry) -> None:
    url = registry.url
    registry.close()  # nothing listens on its port any more
    resolver = RegistryResolver(url, timeout_s=5)
    with pytest.raises(ImageRegistryError, match=f"registry {url} is unreachable.*image tag {TAG}"):
        resolver(VmPayload(image_tag=TAG))


def test_golem_uses_the_registry_it_is_given_or_the_env_names(
    registry: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = f"hash:sha3:{HASH}:{registry.url}/download/alpine.gvmi"
    golem = Golem(config=NOWHERE, registry_url=registry.url)
    assert golem.demand.image_resolver(VmPayload(image_tag=TAG)) == package
    monkeypatch.setenv(REGISTRY_URL_ENV, registry.url)
    assert Golem(config=NOWHERE).demand.image_resolver(VmPayload(image_hash=HASH)) == package
    with pytest.raises(GolemError, match="registry_url must be an http"):
        Golem(config=NOWHERE, registry_url="registry.golem.network")
    monkeypatch.setenv(REGISTRY_URL_ENV, "not a url")
    with pytest.raises(GolemError, match=f"{REGISTRY_URL_ENV} must be an http"):
        Golem(config=NOWHERE)
