"""Net API v2 (``/net-api/v2``): VPN networks, their nodes and the requestor's addresses."""

from __future__ import annotations

from typing import Any

from golem_actors.yagna.models import Network, NetworkAddress, NetworkNode
from golem_actors.yagna.transport import Transport

__all__ = ["NetApi"]

_API = "net"


class NetApi:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._t.request(_API, method, path, **kwargs)

    def create_network(
        self, ip: str, mask: str | None = None, gateway: str | None = None
    ) -> Network:
        body: dict[str, Any] = {"ip": ip}
        if mask is not None:
            body["mask"] = mask
        if gateway is not None:
            body["gateway"] = gateway
        return Network.from_json(self._call("POST", "/vpn/net", json=body))

    def networks(self) -> list[Network]:
        return [Network.from_json(n) for n in self._call("GET", "/vpn/net")]

    def get_network(self, network_id: str) -> Network:
        return Network.from_json(self._call("GET", f"/vpn/net/{network_id}"))

    def remove_network(self, network_id: str) -> None:
        self._call("DELETE", f"/vpn/net/{network_id}")

    def addresses(self, network_id: str) -> list[NetworkAddress]:
        data = self._call("GET", f"/vpn/net/{network_id}/addresses")
        return [NetworkAddress.from_json(a) for a in data]

    def add_address(self, network_id: str, ip: str) -> None:
        self._call("POST", f"/vpn/net/{network_id}/addresses", json={"ip": ip})

    def nodes(self, network_id: str) -> list[NetworkNode]:
        return [NetworkNode.from_json(n) for n in self._call("GET", f"/vpn/net/{network_id}/nodes")]

    def add_node(self, network_id: str, node_id: str, ip: str) -> None:
        self._call("POST", f"/vpn/net/{network_id}/nodes", json={"id": node_id, "ip": ip})

    def remove_node(self, network_id: str, node_id: str) -> None:
        self._call("DELETE", f"/vpn/net/{network_id}/nodes/{node_id}")
