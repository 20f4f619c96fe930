"""The registry's info API as data: the URL asked, and what each answer means. Pure."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from golem_actors.images.info import (
    DEFAULT_REGISTRY_URL,
    REGISTRY_URL_ENV,
    ImageRegistryError,
    info_url,
    registry_url,
    task_package_from_answer,
)
from golem_actors.policy.payload import PayloadError, VmPayload

HASH = "9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae"
OTHER = "d646d7b93083d817846c2ae5c62c72ca0507782385a2e29291a3d376"
REG = "http://127.0.0.1:8000"
HTTP_URL = "http://registry.example/download/alpine.gvmi"
HTTPS_URL = "https://registry.example/download/alpine.gvmi"
TAG = VmPayload(image_tag="golem/alpine:latest")
BY_HASH = VmPayload(image_hash=HASH)


def answer(**fields: object) -> str:
    body: dict[str, object] = {"sha3": HASH, "http": HTTP_URL, "https": HTTPS_URL, "size": 10}
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None})


def test_the_registry_is_the_public_one_unless_the_env_or_the_caller_say_otherwise() -> None:
    assert registry_url(None, {}) == DEFAULT_REGISTRY_URL == "https://registry.golem.network"
    assert registry_url(None, {REGISTRY_URL_ENV: "http://127.0.0.1:9/"}) == "http://127.0.0.1:9"
    env = {REGISTRY_URL_ENV: "http://env.example"}
    assert registry_url("https://given.example/reg/", env) == "https://given.example/reg"
    assert registry_url(None, {REGISTRY_URL_ENV: ""}) == DEFAULT_REGISTRY_URL


@pytest.mark.parametrize(
    ("given", "env", "named"),
    [
        ("ftp://x", {}, "registry_url"),
        ("registry.golem.network", {}, "registry_url"),
        ("http://", {}, "registry_url"),
        ("http://x/?a=b", {}, "registry_url"),
        ("http://x /y", {}, "registry_url"),
        (None, {REGISTRY_URL_ENV: "nope"}, REGISTRY_URL_ENV),
    ],
)
def test_a_bad_registry_url_is_refused_naming_where_it_came_from(given, env, named) -> None:
    with pytest.raises(ImageRegistryError, match=f"{named} must be an http"):
        registry_url(given, env)


def test_info_url_asks_like_the_sdks_with_count_and_tag_or_hash() -> None:
    by_tag = urlsplit(info_url(REG, TAG))
    assert f"{by_tag.scheme}://{by_tag.netloc}{by_tag.path}" == f"{REG}/v1/image/info"
    assert parse_qs(by_tag.query) == {"count": ["true"], "tag": ["golem/alpine:latest"]}
    assert parse_qs(urlsplit(info_url(REG, BY_HASH)).query) == {"count": ["true"], "hash": [HASH]}
    with pytest.raises(ImageRegistryError, match="not looked up"):
        info_url(REG, VmPayload())


def test_an_answer_becomes_the_task_package_with_the_http_url_by_default() -> None:
    assert task_package_from_answer(REG, TAG, 200, answer()) == f"hash:sha3:{HASH}:{HTTP_URL}"
    https = task_package_from_answer(REG, TAG, 200, answer(), use_https=True)
    assert https == f"hash:sha3:{HASH}:{HTTPS_URL}"
    upper = task_package_from_answer(REG, BY_HASH, 200, answer(sha3=HASH.upper()))
    assert upper == f"hash:sha3:{HASH}:{HTTP_URL}"


def test_an_unknown_tag_names_the_tag_the_registry_and_its_message() -> None:
    body = json.dumps({"message": "image not found"})
    with pytest.raises(ImageRegistryError) as caught:
        task_package_from_answer(REG, TAG, 404, body)
    text = str(caught.value)
    assert "image tag golem/alpine:latest" in text
    assert REG in text
    assert "image not found" in text
    assert isinstance(caught.value, PayloadError)  # callers catching payload errors see it too


@pytest.mark.parametrize(
    ("status", "body", "problem"),
    [
        (500, "internal error\n", "answered 500 for image tag golem/alpine:latest: internal error"),
        (200, "<html>", "did not answer image tag golem/alpine:latest with a JSON object"),
        (200, "[1]", "with a JSON object"),
        (200, answer(sha3=None), "no hex 'sha3'"),
        (200, answer(sha3="xyz"), "no hex 'sha3'"),
        (200, answer(http=None), "no 'http' download URL"),
        (200, answer(http="ftp://x/y"), "unusable answer"),
        (200, answer(sha3=HASH[:10]), "unusable answer"),
    ],
)
def test_bad_answers_are_errors_naming_the_image_and_the_problem(status, body, problem) -> None:
    with pytest.raises(ImageRegistryError, match=problem):
        task_package_from_answer(REG, TAG, status, body)


def test_an_answer_for_another_hash_is_a_mismatch() -> None:
    with pytest.raises(ImageRegistryError, match=f"image hash {HASH} with another image .*{OTHER}"):
        task_package_from_answer(REG, BY_HASH, 200, answer(sha3=OTHER))
