"""Answer, on the hub's bus, for provider nodes that have left the network.

The requestor's yagna is its own central-net hub, and that combination has a routing loop
(yagna 0.17.6, ``shared/notes/vpn-proof.md`` §7.5, reproduced here by killing a provider node's
daemon): the hub's router sends a call for ``/net/<gone node>`` to the longest prefix it knows,
``/net``, which is the hub daemon's own forwarder, which sends it back to the router, forever.
The caller never gets an answer and the hub burns a core per lost call until the node returns.

A real hub is a bare router, where such a call fails at once ("endpoint address not found").
localnet gets the same: while a provider node's daemon is dead (or frozen long enough for the
router to drop it), a small client of the hub's router registers ``/net/<its node id>`` and
fails every call to it. The node's daemon re-registers that address when it reconnects, so the
tombstone goes first.
"""

from __future__ import annotations

import logging
import threading
from typing import NoReturn

from golem_actors.errors import GolemActorsError
from golem_actors.localnet.gsb import GsbClient, GsbError, IncomingCall

__all__ = ["NodeGoneError", "Tombstones"]

log = logging.getLogger(__name__)


class NodeGoneError(GolemActorsError, RuntimeError):
    """The answer a caller gets for a node that has left (a GSB failure, as from a router)."""


class Tombstones:
    """The ``/net/<node id>`` addresses of gone nodes, held on the hub's router."""

    def __init__(self, hub_gsb_url: str) -> None:
        self.hub_gsb_url = hub_gsb_url
        self._client: GsbClient | None = None
        self._buried: set[str] = set()
        self._lock = threading.Lock()

    @property
    def buried(self) -> frozenset[str]:
        return frozenset(self._buried)

    def bury(self, node_id: str) -> bool:
        """Fail calls to ``node_id`` from now on; False while its daemon still holds the
        address (a frozen daemon the router has not dropped yet): try again later."""
        with self._lock:
            if node_id in self._buried:
                return True
            try:
                self._connected().register(f"/net/{node_id}", _gone)
            except GsbError as exc:
                log.debug("cannot bury %s yet: %s", node_id, exc)
                return False
            self._buried.add(node_id)
        log.info("node %s left the network: calls to it fail at once", node_id)
        return True

    def unbury(self, node_id: str) -> None:
        """Give the address back, for the node's daemon to register when it reconnects."""
        with self._lock:
            if node_id not in self._buried or self._client is None:
                return
            self._buried.discard(node_id)
            try:
                self._client.unregister(f"/net/{node_id}")
            except GsbError as exc:
                log.warning("releasing %s's address on the hub failed: %s", node_id, exc)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            self._buried.clear()
        if client is not None:
            client.close()

    def _connected(self) -> GsbClient:
        if self._client is None:
            client = GsbClient(self.hub_gsb_url, name="localnet-tombstones", max_handlers=4)
            client.connect()
            self._client = client
        return self._client


def _gone(call: IncomingCall) -> NoReturn:
    node_id = call.address.split("/")[2]
    raise NodeGoneError(f"node {node_id} is not connected to the network")


def _not_a_failure(record: logging.LogRecord) -> bool:
    """The bus client logs a handler's exception as a failure; a tombstone's is its answer."""
    return not (record.exc_info and isinstance(record.exc_info[1], NodeGoneError))


logging.getLogger(GsbClient.__module__).addFilter(_not_a_failure)
