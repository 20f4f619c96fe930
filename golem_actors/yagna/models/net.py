"""Net (VPN) and GSB-API binding models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from golem_actors.yagna.models._base import Model

__all__ = ["Network", "NetworkAddress", "NetworkNode", "ServiceBinding"]


@dataclass(frozen=True)
class Network(Model):
    id: str
    ip: str
    mask: str | None = None
    gateway: str | None = None


@dataclass(frozen=True)
class NetworkNode(Model):
    id: str
    ip: str


@dataclass(frozen=True)
class NetworkAddress(Model):
    ip: str


@dataclass(frozen=True)
class ServiceBinding(Model):
    """A GSB-API service bound through REST; its WebSocket lives at ``/services/{services_id}``."""

    services_id: str
    listen: dict[str, Any] | None = None
