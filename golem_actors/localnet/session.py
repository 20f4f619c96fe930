"""Join the localnet already running in a data directory, or start one for as long as needed.

``golem-actors run`` and ``golem-actors localnet run`` both use it, so a network started with
``golem-actors localnet up`` in another terminal is shared (and a fault can be injected into it
there), and one started here is stopped here.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from golem_actors.localnet.network import STATE_FILE, LocalNet

__all__ = ["Endpoint", "localnet_endpoint", "running_endpoint"]


@dataclass(frozen=True)
class Endpoint:
    """Where a localnet's yagna answers, and the requestor's app key."""

    api_url: str
    app_key: str
    registry_url: str | None = None  # the image registry (GOLEM_REGISTRY_URL)

    def env(self) -> dict[str, str]:
        env = {"YAGNA_API_URL": self.api_url, "YAGNA_APPKEY": self.app_key}
        return env | ({"GOLEM_REGISTRY_URL": self.registry_url} if self.registry_url else {})


def running_endpoint(data_dir: Path) -> Endpoint | None:
    """The endpoint of the localnet running in ``data_dir``, or None (absent, or a stale file).

    A running network holds ``localnet.lock``: a state file nobody holds the lock of is stale.
    """
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
        keys = json.loads((data_dir / "yagna" / "localnet-identities.json").read_text())
    except (OSError, ValueError):
        return None
    with (data_dir / "localnet.lock").open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            registry = state.get("registry_url")
            return Endpoint(
                api_url=state["api_url"], app_key=keys["default_key"], registry_url=registry
            )
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


@contextmanager
def localnet_endpoint(
    data_dir: Path, providers: int, say: Callable[[str], None] = lambda _: None
) -> Iterator[Endpoint]:
    """The running localnet of ``data_dir``, or a new one of ``providers`` nodes (then stopped)."""
    running = running_endpoint(data_dir)
    if running is not None:
        say(f"# using the local network already running in {data_dir}")
        yield running
        return
    started = time.monotonic()
    with LocalNet(providers=providers, data_dir=data_dir) as net:
        took = time.monotonic() - started
        say(f"# localnet: {providers} providers up in {took:.1f} s ({data_dir})")
        yield Endpoint(api_url=net.api_url, app_key=net.app_key, registry_url=net.images_url)
