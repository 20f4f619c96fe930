"""What one provider process is told at start: its spec and the daemon it speaks to."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from golem_actors.localnet.offer import ProviderSpec

__all__ = ["ProviderConfig"]


@dataclass(frozen=True)
class ProviderConfig:
    """Everything a provider process needs; written to a 0600 file (it holds the app key).

    ``api_url`` and ``gsb_url`` name the yagna the provider's identity lives in: its offers,
    agreements and activities go through the REST API, its activity state and usage reports and
    its exe-units' services through the bus.
    """

    spec: ProviderSpec
    api_url: str
    app_key: str
    node_id: str
    gsb_url: str
    state_dir: str
    command_timeout: float = 600.0  # the longest a single ExeScript command may run
    image_dir: str | None = None  # default: <data dir>/images, shared by the network's providers

    def to_json(self) -> dict[str, Any]:
        spec = asdict(self.spec)
        for key in ("price_duration_sec", "price_cpu_sec", "start_price"):
            spec[key] = str(spec[key])
        return {**asdict(self), "spec": spec}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProviderConfig:
        spec = dict(data["spec"])
        spec["capabilities"] = tuple(spec.get("capabilities", ()))
        for key in ("price_duration_sec", "price_cpu_sec", "start_price"):
            spec[key] = Decimal(spec[key])
        return cls(**{**data, "spec": ProviderSpec(**spec)})
