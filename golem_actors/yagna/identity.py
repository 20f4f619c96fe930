"""Identity endpoints at the daemon's root: ``/me`` and ``/version/get``."""

from __future__ import annotations

from golem_actors.yagna.models import Identity, Version
from golem_actors.yagna.transport import Transport

__all__ = ["IdentityApi"]


class IdentityApi:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def me(self) -> Identity:
        """Who the app key acts as; the cheapest call that proves the key and the daemon work."""
        return Identity.from_json(self._t.request("root", "GET", "/me"))

    def version(self) -> Version:
        data = self._t.request("root", "GET", "/version/get")
        return Version.from_json(data["current"] if isinstance(data, dict) else data)
