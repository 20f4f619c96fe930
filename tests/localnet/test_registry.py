"""localnet's registry, with raw HTTP: the Golem registry's info and download API over the store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import requests

from golem_actors.images.build import build_gvmi
from golem_actors.images.gvmi import ContainerConfig
from golem_actors.localnet.images import Image, ImageStore
from golem_actors.localnet.registry import INFO_PATH
from tests.localnet.test_images import tiny_rootfs


@pytest.fixture
def images(tmp_path: Path, registry: tuple[ImageStore, str]) -> tuple[Image, Image]:
    store, _ = registry
    root = tiny_rootfs(tmp_path / "root")
    gvmi = build_gvmi(root, tmp_path / "app.gvmi", ContainerConfig(env=("A=1",))).path
    return store.add(gvmi, tag="golem/app:1.0"), store.add(root, tag="plain")


def info(url: str, **params: str) -> requests.Response:
    return requests.get(url + INFO_PATH, params=params, timeout=10)


def test_info_by_tag_and_by_hash(registry: tuple[ImageStore, str], images: tuple[Image, Image]):
    _, url = registry
    gvmi, plain = images
    for params in ({"tag": "golem/app:1.0", "count": "true"}, {"hash": gvmi.hash, "dev": "true"}):
        answer = info(url, **params)
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.json() == {
            "sha3": gvmi.hash,
            "tag": "golem/app:1.0",
            "http": f"{url}/download/{gvmi.hash}",
            "https": f"{url}/download/{gvmi.hash}",  # no TLS on loopback: the same URL
            "size": gvmi.size,
            "format": "gvmi",
        }
    assert info(url, hash=gvmi.hash.upper()).json()["sha3"] == gvmi.hash
    for tag in ("plain", "plain:latest"):  # a bare name is name:latest
        body = info(url, tag=tag).json()
        assert (body["sha3"], body["tag"], body["format"]) == (plain.hash, "plain:latest", "tar")


def test_downloads_are_the_files(registry: tuple[ImageStore, str], images: tuple[Image, Image]):
    _, url = registry
    for image in images:
        got = requests.get(info(url, hash=image.hash).json()["http"], timeout=10)
        assert got.status_code == 200
        assert hashlib.sha3_224(got.content).hexdigest() == image.hash
        assert got.content == image.path.read_bytes()
        legacy = requests.get(f"{url}/images/{image.path.name}", timeout=10)
        assert legacy.content == got.content
        head = requests.head(f"{url}/download/{image.hash}", timeout=10)  # yapapi checks URLs
        assert head.status_code == 200
        assert int(head.headers["Content-Length"]) == image.size
        assert head.content == b""
    gvmi, plain = images
    assert requests.get(f"{url}/images/{gvmi.hash}.tar", timeout=10).status_code == 404
    assert requests.get(f"{url}/images/{plain.hash}.gvmi", timeout=10).status_code == 404


def test_unknown_tags_and_hashes_are_404_with_a_json_error(
    registry: tuple[ImageStore, str], images: tuple[Image, Image]
):
    _, url = registry
    gvmi, _ = images
    zeros = "0" * 56
    for params, error in [
        ({"tag": "golem/app:2.0"}, "image not found: tag 'golem/app:2.0'"),
        ({"tag": "golem/app"}, "image not found: tag 'golem/app'"),  # :latest is not tagged
        ({"hash": zeros, "count": "true"}, f"image not found: hash '{zeros}'"),
        ({"hash": "not-a-hash"}, "image not found: hash 'not-a-hash'"),
    ]:
        answer = info(url, **params)
        assert answer.status_code == 404, params
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.json() == {"error": error}
    for params in ({}, {"count": "true"}, {"tag": "golem/app:1.0", "hash": gvmi.hash}):
        answer = info(url, **params)
        assert answer.status_code == 400
        assert "exactly one of tag" in answer.json()["error"]
    for path in (f"/download/{zeros}", "/download/", "/v1/image", "/"):
        missing = requests.get(url + path, timeout=10)
        assert missing.status_code == 404
        assert "error" in missing.json()
    assert requests.post(url + INFO_PATH, timeout=10).status_code == 501  # read-only


def test_a_provider_resolves_what_the_registry_names(
    tmp_path: Path, registry: tuple[ImageStore, str], images: tuple[Image, Image]
):
    _, url = registry
    body = info(url, tag="golem/app:1.0").json()
    provider = ImageStore(tmp_path / "provider")
    rootfs = provider.rootfs(f"hash:sha3:{body['sha3']}:{body['http']}", timeout=30)
    assert rootfs is not None
    assert (rootfs / "etc" / "issue").read_text() == "tiny image\n"
    stored = provider.get(body["sha3"])
    assert stored is not None
    assert (stored.kind, stored.source) == ("gvmi", body["http"])
