"""GSB-API (``/gsb-api/v1``): bind a bus address to a REST-managed WebSocket service.

localnet's exe-unit speaks yagna's native bus instead (it must report usage); this API is here for
clients that only have REST, and so that the binding lifecycle is tested against the real daemon.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from golem_actors.yagna.models import ServiceBinding
from golem_actors.yagna.transport import Transport

__all__ = ["GsbApi"]

_API = "gsb"


class GsbApi:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def bind(self, address: str, components: Sequence[str]) -> ServiceBinding:
        """Bind ``address`` (e.g. ``/public/exeunit/<id>``) for the named message components."""
        body = {"listen": {"on": address, "components": list(components)}}
        data: Any = self._t.request(_API, "POST", "/services", json=body)
        return ServiceBinding.from_json(data)

    def unbind(self, services_id: str) -> None:
        self._t.request(_API, "DELETE", f"/services/{services_id}")

    def websocket_url(self, services_id: str) -> str:
        """The ``ws://`` URL the bound service's messages arrive on."""
        base = self._t.config.base_url(_API)
        return base.replace("http", "ws", 1) + f"/services/{services_id}"
