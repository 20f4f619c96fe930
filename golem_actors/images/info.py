"""The Golem image registry's info API, as data: which URL to ask, what the answer means. Pure.

Both SDKs resolve an image named by tag (``golem/alpine:latest``) or by bare hash the same way
(yapapi ``payload/package.py::resolve_package_url``, golem-js ``WorkloadDemandDirector``)::

    GET <registry>/v1/image/info?count=true&tag=<tag>      (or &hash=<sha3-224 hex>)
    200 {"sha3": "<hex>", "http": "<url>", "https": "<url>", "size": <bytes>, ...}

and the demand gets ``hash:sha3:<sha3>:<http url>`` (the ``https`` one only when asked for; both
SDKs default to ``http``). The registry is ``https://registry.golem.network`` unless
``GOLEM_REGISTRY_URL`` says otherwise (golem-js reads the same variable). Fetching is I/O and lives
in :mod:`golem_actors.images.registry`; here is only what can be decided from strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from golem_actors.policy.payload import PayloadError, VmPayload, parse_task_package

__all__ = [
    "DEFAULT_REGISTRY_URL",
    "REGISTRY_URL_ENV",
    "ImageRegistryError",
    "info_url",
    "registry_url",
    "task_package_from_answer",
]

DEFAULT_REGISTRY_URL: Final = "https://registry.golem.network"
REGISTRY_URL_ENV: Final = "GOLEM_REGISTRY_URL"
_HEX = re.compile(r"[0-9a-fA-F]+")
_DETAIL_CHARS: Final = 200  # of a registry's error body, quoted in our message


class ImageRegistryError(PayloadError):
    """The registry cannot turn this image into a task package; the message says which and why."""


def registry_url(given: str | None, env: Mapping[str, str]) -> str:
    """The registry to ask: ``given``, else ``$GOLEM_REGISTRY_URL``, else the public one."""
    if given is not None:
        value, source = given, "registry_url"
    elif env.get(REGISTRY_URL_ENV):
        value, source = env[REGISTRY_URL_ENV], REGISTRY_URL_ENV
    else:
        return DEFAULT_REGISTRY_URL
    parts = urlsplit(value) if isinstance(value, str) else None
    if (
        parts is None
        or parts.scheme not in {"http", "https"}
        or not parts.netloc
        or parts.query
        or parts.fragment
        or any(c.isspace() for c in value)
    ):
        raise ImageRegistryError(
            f"{source} must be an http(s) URL like {DEFAULT_REGISTRY_URL}, got {value!r}"
        )
    return value.rstrip("/")


def info_url(registry: str, payload: VmPayload) -> str:
    """``GET`` this to learn the image of ``payload`` (which names it by tag or bare hash)."""
    if payload.image_tag is not None:
        query = {"count": "true", "tag": payload.image_tag}
    elif payload.image_hash is not None:
        query = {"count": "true", "hash": payload.image_hash}
    else:
        raise ImageRegistryError(f"{payload.image_name} is not looked up in a registry")
    return f"{registry}/v1/image/info?{urlencode(query)}"


def _detail(body: str) -> str:
    """What a registry's error body says: its message field if JSON, else the text, cut short."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        for key in ("message", "error", "detail"):
            said = parsed.get(key)
            if isinstance(said, str):
                return said[:_DETAIL_CHARS]
    return " ".join(body.split())[:_DETAIL_CHARS] or "no details"


def task_package_from_answer(
    registry: str, payload: VmPayload, status: int, body: str, *, use_https: bool = False
) -> str:
    """The ``hash:sha3:<hex>:<url>`` a registry answer means for ``payload``, or why not."""
    what = payload.image_name
    if status == 404:  # noqa: PLR2004 - the registry's "no such image"
        raise ImageRegistryError(
            f"{what} is not in the image registry {registry} ({_detail(body)})"
        )
    if status != 200:  # noqa: PLR2004
        raise ImageRegistryError(
            f"the image registry {registry} answered {status} for {what}: {_detail(body)}"
        )
    try:
        answer: Any = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise ImageRegistryError(
            f"the image registry {registry} did not answer {what} with a JSON object: "
            f"{_detail(body)}"
        )
    digest = answer.get("sha3")
    if not isinstance(digest, str) or not _HEX.fullmatch(digest):
        raise ImageRegistryError(
            f"the image registry {registry} gave {what} no hex 'sha3' (got {digest!r})"
        )
    field = "https" if use_https else "http"
    url = answer.get(field)
    if not isinstance(url, str) or not url:
        raise ImageRegistryError(
            f"the image registry {registry} gave {what} no '{field}' download URL"
        )
    if payload.image_hash is not None and digest.lower() != payload.image_hash:
        raise ImageRegistryError(
            f"the image registry {registry} answered {what} with another image (sha3 {digest})"
        )
    package = f"hash:sha3:{digest.lower()}:{url}"
    try:
        parse_task_package(package)
    except PayloadError as exc:
        raise ImageRegistryError(
            f"the image registry {registry} gave {what} an unusable answer: {exc}"
        ) from None
    return package
