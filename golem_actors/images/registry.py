"""Ask a Golem image registry what a tag or bare hash stands for: the I/O half of image lookup.

A ``RegistryResolver`` is the ``ImageResolver`` a ``Golem`` session uses by default. It asks each
image once and keeps the answer for the session, so every demand (and every renewal of one)
names the same image; failures are not kept, so a later call may succeed. What the URL is and
what an answer means is decided in :mod:`golem_actors.images.info`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping

import requests

from golem_actors.images.info import (
    ImageRegistryError,
    info_url,
    registry_url,
    task_package_from_answer,
)
from golem_actors.policy.payload import VmPayload

__all__ = ["RegistryResolver"]

log = logging.getLogger(__name__)


class RegistryResolver:
    """Resolves ``VmPayload(image_tag=...)`` / ``VmPayload(image_hash=...)`` through a registry.

    ``url`` defaults to ``$GOLEM_REGISTRY_URL``, else ``https://registry.golem.network``;
    ``use_https`` picks the registry's https download URL instead of the http one (as both SDKs
    default to http).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        use_https: bool = False,
        timeout_s: float = 15.0,
        session: requests.Session | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.url = registry_url(url, os.environ if env is None else env)
        self.use_https = use_https
        self.timeout_s = timeout_s
        self._session = session or requests.Session()
        self._cache: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def __call__(self, payload: VmPayload) -> str:
        key = (
            ("tag", payload.image_tag)
            if payload.image_tag is not None
            else ("hash", payload.image_hash or "")
        )
        with self._lock:  # one lookup per image, even when clusters start at once
            cached = self._cache.get(key)
            if cached is None:
                cached = self._cache[key] = self._fetch(payload)
        return cached

    def _fetch(self, payload: VmPayload) -> str:
        url = info_url(self.url, payload)
        try:
            response = self._session.get(url, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise ImageRegistryError(
                f"the image registry {self.url} is unreachable, so {payload.image_name} cannot "
                f"be resolved ({type(exc).__name__}); set GOLEM_REGISTRY_URL or "
                "Golem(registry_url=...) to use another"
            ) from exc
        package = task_package_from_answer(
            self.url, payload, response.status_code, response.text, use_https=self.use_https
        )
        log.info("%s resolved by %s to %s", payload.image_name, self.url, package)
        return package

    def close(self) -> None:
        self._session.close()
