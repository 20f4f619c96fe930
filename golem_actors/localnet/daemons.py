"""The yagna daemons of a local network: the requestor's node (the hub) and one per provider node.

As on the real network every provider node runs its own daemon, joined to the requestor's node
by central net (``CENTRAL_NET_HOST`` = the hub's GSB port), and its agent and exe-units talk only
to it: offers, ExeScripts, debit notes and invoices cross daemons. Each node's data dir keeps its
identity (the daemon's default one) and ports across runs.

With ``shared=True`` every provider identity lives in the hub's daemon instead (the layout of
localnet part 1): one daemon for any number of providers, for runs too large for a daemon each
(~130 MB of RSS and ~1 s of CPU to start, per daemon), at the cost of fidelity (nothing
crosses a net hop, and one identity's fault is every identity's fault).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from golem_actors.localnet.node import NodeError, YagnaNode, is_yagna
from golem_actors.localnet.nodelay import build_shim, preload_env
from golem_actors.localnet.tombstones import Tombstones

__all__ = ["DAEMON_SIGNALS", "Daemons", "NodeEndpoint", "signal_node"]

#: How provider nodes' daemons differ from yagna's defaults:
#: - a fresh offer is held back 5 s before it is broadcast (to batch several), likewise an
#:   unsubscription; a local node has one offer: send it at once;
#: - the market's subscriptions live in memory, so a daemon that was killed forgets its offer
#:   while the requestor's node keeps it (for its 1 h lifetime), and requestors counter a dead
#:   offer. On disk, the restarted agent finds and unsubscribes it, as after an agent crash.
PROVIDER_NODE_ENV = {
    "OFFER_BROADCAST_DELAY": "50ms",
    "UNSUB_BROADCAST_DELAY": "50ms",
    "MARKET_MEMORY_USE_DISK": "1",
}

#: The daemon faults: a node that vanishes (a partition seen from the requestor), one that
#: freezes, and the freeze lifted.
DAEMON_SIGNALS = {"kill": signal.SIGKILL, "pause": signal.SIGSTOP, "resume": signal.SIGCONT}


@dataclass(frozen=True)
class NodeEndpoint:
    """Where one provider reaches yagna, and as whom (``app_key`` stays out of ``repr``)."""

    api_url: str
    gsb_url: str
    node_id: str
    app_key: str = field(repr=False)


class Daemons:
    """Start, watch and stop the network's daemons; the hub first, the provider nodes together."""

    def __init__(self, data_dir: Path, names: Sequence[str], *, shared: bool = False) -> None:
        self.data_dir = data_dir
        self.names = list(names)
        self.shared = shared
        self.shim = build_shim(data_dir / "cache")
        env = preload_env(self.shim)
        self.hub = YagnaNode(data_dir / "yagna", extra_env=env)
        self.tombstones = Tombstones(self.hub.gsb_url)
        self.nodes: dict[str, YagnaNode] = {}
        if not shared:
            self.nodes = {
                name: YagnaNode(
                    self.node_dir(name),
                    hub_gsb_url=self.hub.gsb_url,
                    extra_env={**env, **PROVIDER_NODE_ENV},
                    # A node frozen by the pause fault would never act on SIGINT: if the owner
                    # dies, only SIGKILL is sure to end it (sqlite keeps its data dir sound).
                    death_signal=signal.SIGKILL,
                )
                for name in self.names
            }

    def node_dir(self, name: str) -> Path:
        return self.data_dir / "providers" / name / "yagna"

    def node(self, name: str) -> YagnaNode:
        """The daemon serving provider ``name`` (the hub, with a shared daemon)."""
        if self.shared:
            return self.hub
        try:
            return self.nodes[name]
        except KeyError:
            raise NodeError(f"no provider node named {name!r}") from None

    def endpoint(self, name: str) -> NodeEndpoint:
        if self.shared:
            who = self.hub.identity(name)
            return NodeEndpoint(self.hub.api_url, self.hub.gsb_url, who.node_id, who.app_key)
        node = self.nodes[name]
        me = node.requestor  # a provider node's default identity is the provider's
        return NodeEndpoint(node.api_url, node.gsb_url, me.node_id, me.app_key)

    # -- lifecycle --------------------------------------------------------------------------

    def start_hub(self, deadline: float) -> None:
        """Spawn the hub and, as soon as its router listens (the first thing yagna does), every
        provider node's daemon; return once the hub answers, while the nodes keep starting
        (``ready_nodes``). Call from the thread owning the network: the daemons'
        parent-death signal is tied to it. The caller stops everything on failure."""
        self.hub.spawn()
        if self.nodes:
            self.hub.wait_router(timeout=deadline - time.monotonic())
            for node in self.nodes.values():
                node.spawn()
        self.hub.wait_ready(timeout=deadline - time.monotonic())
        if self.shared:
            self.hub.ensure_identities(self.names)  # restarts the hub if any is new

    def ready_nodes(self, deadline: float) -> Iterator[str]:
        """Provider names as their nodes' daemons answer (all at once with a shared one)."""
        if self.shared:
            yield from self.names
            return
        with ThreadPoolExecutor(len(self.nodes), thread_name_prefix="yagna-up") as pool:
            waits = {
                pool.submit(node.wait_ready, timeout=max(1.0, deadline - time.monotonic())): name
                for name, node in self.nodes.items()
            }
            for done in as_completed(waits):
                done.result()
                yield waits[done]

    def restart_node(self, name: str, *, timeout: float = 30.0) -> None:
        """Bring a provider node's daemon back (after a kill); a paused one is continued."""
        node = self.node(name)
        if node.state == "stopped":
            self.signal(name, signal.SIGCONT)
        if not node.running:
            node.stop()  # reap it: its state is "not started" until it runs again
            if node.node_id is not None:
                self.tombstones.unbury(node.node_id)  # its daemon registers the address itself
            node.start(timeout=timeout)

    def signal(self, name: str, sig: signal.Signals) -> None:
        """A fault: SIGKILL (the node leaves), SIGSTOP (it freezes), SIGCONT (it thaws)."""
        node = self.node(name)
        node.send_signal(sig)
        self.settle()

    def thaw(self) -> None:
        """Continue every paused node: its agent's goodbyes (on stop) need an answering daemon."""
        for node in self.nodes.values():
            if node.state == "stopped":
                node.send_signal(signal.SIGCONT)

    def settle(self) -> None:
        """Tombstones for the nodes gone (dead, or frozen and dropped by the hub's router),
        none for those running; call it when a daemon's state may have changed."""
        for node in self.nodes.values():
            state, node_id = node.state, node.node_id
            if node_id is None:
                continue
            if state == "stopped" or state.startswith("exited"):
                self.tombstones.bury(node_id)
            elif state == "running":
                self.tombstones.unbury(node_id)

    def stop(self) -> None:
        """Every daemon at once (each takes ~2 s to exit on SIGINT). Stop the agents first:
        their goodbyes (unsubscribe, invoices) cross their node and the hub."""
        self.tombstones.close()
        daemons = [self.hub, *self.nodes.values()]
        with ThreadPoolExecutor(len(daemons), thread_name_prefix="yagna-down") as pool:
            list(pool.map(lambda node: node.stop(), daemons))

    # -- state ------------------------------------------------------------------------------

    def status(self, name: str) -> dict[str, Any]:
        """Provider ``name``'s daemon as ``localnet status --json`` shows it."""
        node = self.node(name)
        return {
            "pid": node.pid,
            "state": node.state,
            "api_url": node.api_url,
            "gsb_url": node.gsb_url,
            "shared": self.shared,
        }

    def pids(self) -> list[int]:
        """Every daemon's pid, the hub's first."""
        daemons = [self.hub, *self.nodes.values()]
        return [node.pid for node in daemons if node.pid is not None]


def signal_node(state: dict[str, Any], name: str, action: str) -> int:
    """Send provider ``name``'s daemon the signal of ``action`` (``DAEMON_SIGNALS``) from a
    process other than the network's owner (``localnet fault``), by the pid in the network's
    status (``state``); returns that pid."""
    entry = next((p for p in state["providers"] if p["name"] == name), None)
    if entry is None:
        names = ", ".join(p["name"] for p in state["providers"])
        raise NodeError(f"no provider named {name!r} (running: {names})")
    daemon = entry.get("daemon") or {}
    if daemon.get("shared", True):
        raise NodeError(f"{name} has no daemon of its own (the network runs one shared daemon)")
    pid = daemon.get("pid")
    if not isinstance(pid, int) or not is_yagna(pid):  # never signal a reused pid
        raise NodeError(f"{name}'s daemon is not running (pid {pid})")
    os.kill(pid, DAEMON_SIGNALS[action])
    return pid
