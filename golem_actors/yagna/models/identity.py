"""Identity models: who an app key acts as, and the daemon's version."""

from __future__ import annotations

from dataclasses import dataclass

from golem_actors.yagna.models._base import Model

__all__ = ["Identity", "Version"]


@dataclass(frozen=True)
class Identity(Model):
    """``GET /me``: the node id an app key acts as."""

    identity: str
    name: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class Version(Model):
    """``GET /version/get``'s ``current`` entry."""

    version: str
    name: str | None = None
