"""Where yagna is and how to authenticate, read the way the official clients read it.

``YAGNA_API_URL`` is the base; each API can be overridden on its own (``YAGNA_MARKET_URL`` ...),
exactly like yapapi, so an existing Golem setup works unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from golem_actors.errors import GolemActorsError

__all__ = ["DEFAULT_API_URL", "ApiConfig", "ConfigError"]

DEFAULT_API_URL = "http://127.0.0.1:7465"

_API_PATHS = {
    "market": "/market-api/v1",
    "activity": "/activity-api/v1",
    "payment": "/payment-api/v1",
    "net": "/net-api/v2",
    "gsb": "/gsb-api/v1",
}


class ConfigError(GolemActorsError, ValueError):
    """The yagna configuration is unusable; the message names the setting."""


def _check_url(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL like {DEFAULT_API_URL}, got {url!r}")
    return url.rstrip("/")


@dataclass(frozen=True)
class ApiConfig:
    """Connection settings for one yagna daemon. The app key is kept out of ``repr``."""

    app_key: str = field(repr=False)
    api_url: str = DEFAULT_API_URL
    market_url: str | None = None
    activity_url: str | None = None
    payment_url: str | None = None
    net_url: str | None = None
    gsb_url: str | None = None

    def __post_init__(self) -> None:
        if not self.app_key or not self.app_key.strip():
            raise ConfigError(
                "YAGNA_APPKEY is empty: create one with `yagna app-key create requestor`"
            )
        object.__setattr__(self, "api_url", _check_url("YAGNA_API_URL", self.api_url))
        for api in _API_PATHS:
            value = getattr(self, f"{api}_url")
            if value is not None:
                object.__setattr__(
                    self, f"{api}_url", _check_url(f"YAGNA_{api.upper()}_URL", value)
                )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: str) -> ApiConfig:
        """Read ``YAGNA_APPKEY``, ``YAGNA_API_URL`` and the per-API overrides."""
        env = os.environ if env is None else env
        values: dict[str, str | None] = {
            "app_key": env.get("YAGNA_APPKEY", ""),
            "api_url": env.get("YAGNA_API_URL") or DEFAULT_API_URL,
        }
        for api in _API_PATHS:
            values[f"{api}_url"] = env.get(f"YAGNA_{api.upper()}_URL") or None
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def base_url(self, api: str) -> str:
        """The base URL of one API (``market``, ``activity``, ``payment``, ``net``, ``gsb``).

        ``root`` is the daemon itself (``/me``, ``/version``).
        """
        if api == "root":
            return self.api_url
        override: str | None = getattr(self, f"{api}_url")
        return override if override is not None else self.api_url + _API_PATHS[api]
