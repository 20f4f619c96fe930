"""An activity's VPN links: frames between its provider's bus and the TAP in its container.

One ``VpnLink`` per network a Deploy names. It serves ``/public/vpn/<network>`` on the provider
daemon's bus as yagna's exe-unit does: ``VpnControl`` (the requestor adding and removing members)
on the prefix, frames on ``/raw``. A frame from the bus is answered at once (under central net the
sender's whole VPN waits for that reply, ``vpn-proof.md`` §7.2), then written to the TAP; a frame
the container sends is read from the TAP and pushed to ``/udp/net/<owner>/vpn/<network>/raw`` of
the member that owns its destination (``vpn.Routes``), as ``push_raw_as`` does.

The link lives as long as the activity; its TAP as long as the container (``attach`` when the
container's pid 1 is held, ``detach`` when it has ended): ``terminate`` and a new ``start`` give a
new container and a new TAP on the same link. A network already served on this daemon (another
activity of the same network here, or the requestor itself when it shares the provider's daemon)
cannot be served twice: frames for one address cannot reach two places, so the deploy fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from golem_actors.localnet import gsb as gsblib
from golem_actors.localnet.gsb.errors import CONFLICT
from golem_actors.localnet.tap import Tap, TapError
from golem_actors.localnet.vpn import MTU, NetSpec, Routes, VpnError, parse_control

__all__ = ["ActivityNetwork", "LinkStats", "VpnLink"]

log = logging.getLogger(__name__)

_JOIN = 5.0


@dataclass
class LinkStats:
    """Frames through one link, for logs and tests."""

    received: int = 0  # from the bus, written to the TAP
    sent: int = 0  # read from the TAP, pushed to a member (a broadcast counts once per member)
    dropped_in: int = 0  # from the bus with no TAP, or the TAP's queue full
    dropped_out: int = 0  # read from the TAP for nobody, or the bus gone
    learned: int = 0


class VpnLink:
    """One network of one activity: its bus addresses, its members, its TAP while there is one."""

    def __init__(self, spec: NetSpec, gsb: gsblib.GsbClient, own_id: str, ifname: str) -> None:
        self.spec, self.ifname = spec, ifname
        self.address = f"/public/vpn/{spec.network_id}"
        self.stats = LinkStats()
        own_id = own_id or spec.nodes.get(spec.node_ip, "")  # the deploy names us too
        self._gsb, self._own_id = gsb, own_id
        self._routes = Routes(spec, own_id)
        self._lock = threading.Lock()
        self._tap: Tap | None = None
        self._reader: threading.Thread | None = None
        self._wake_r: int | None = None
        self._wake_w: int | None = None
        self._registered: list[str] = []

    def members(self) -> dict[str, str]:
        with self._lock:
            return {str(ip): node for ip, node in self._routes.nodes().items()}

    # -- the bus ---------------------------------------------------------------------------

    def open(self) -> None:
        """Serve the network's addresses; ``VpnError`` if this daemon serves them already."""
        try:
            self._gsb.register(self.address, self._control)
            self._registered.append(self.address)
            self._gsb.register_sink(f"{self.address}/raw", self._ingress)
            self._registered.append(f"{self.address}/raw")
        except gsblib.GsbError as exc:
            self._unregister()
            net = self.spec.network_id
            if exc.code != CONFLICT:
                raise VpnError(f"cannot serve network {net} on the bus: {exc}") from exc
            raise VpnError(
                f"network {net} is already served on this provider's daemon (by another "
                "activity here, or by the requestor sharing the daemon): a daemon can be in a "
                "network once, so each instance needs a provider node (daemon) of its own"
            ) from exc

    def close(self) -> None:
        """Leave the bus and drop the TAP (the activity is gone)."""
        self.detach()
        self._unregister()

    def _unregister(self) -> None:
        for address in reversed(self._registered):
            with contextlib.suppress(gsblib.GsbError):
                self._gsb.unregister(address, timeout=2.0)
        self._registered = []

    def _control(self, call: gsblib.IncomingCall) -> Any:
        """``VpnControl`` from the requestor: members added (or moved) and removed."""
        try:
            control = parse_control(call.body)
        except VpnError as exc:
            raise gsblib.ReplyError({"badRequest": str(exc)}) from None
        if control.network_id != self.spec.network_id:
            why = f"network {control.network_id} is not served here"
            raise gsblib.ReplyError({"badRequest": why})
        with self._lock:
            if control.nodes is not None:
                refused = self._routes.add(control.nodes)
                removed = 0
            else:
                refused, removed = [], self._routes.remove(control.node_ids)
        log.info("vpn %s: %s (%d removed)%s", self.spec.network_id, control, removed,
                 f", refused: {refused}" if refused else "")  # fmt: skip
        return gsblib.ok(None)

    def _ingress(self, caller: str, frame: bytes) -> None:
        """A frame from the bus (on the bus reader thread: it has been answered already)."""
        with self._lock:
            if self._routes.learn(frame, caller):
                self.stats.learned += 1
            tap = self._tap
        if tap is not None and tap.write(frame):
            self.stats.received += 1
        else:
            self.stats.dropped_in += 1

    # -- the container's TAP -----------------------------------------------------------------

    def attach(self, pidfd: int) -> None:
        """Give the container (its held pid 1) its interface, and start reading from it."""
        self.detach()
        spec = self.spec
        tap = Tap.create(
            pidfd, name=self.ifname, mac=spec.mac, address=spec.node_ip,
            network=spec.network, mtu=MTU,
        )  # fmt: skip
        self._wake_r, self._wake_w = os.pipe()
        with self._lock:
            self._tap = tap
        self._reader = threading.Thread(
            target=self._egress, args=(tap, self._wake_r), name=f"vpn-{self.ifname}", daemon=True
        )
        self._reader.start()

    def detach(self) -> None:
        """The container has ended: stop reading and remove its interface."""
        with self._lock:
            tap, self._tap = self._tap, None
        if self._wake_w is not None:
            os.write(self._wake_w, b"x")
        if self._reader is not None:
            self._reader.join(_JOIN)
            self._reader = None
        for fd in (self._wake_r, self._wake_w):
            if fd is not None:
                os.close(fd)
        self._wake_r = self._wake_w = None
        if tap is not None:
            tap.close()

    def _egress(self, tap: Tap, wake: int) -> None:
        """Until detached: each frame the container sends, to the member(s) it is for."""
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(tap.fileno(), selectors.EVENT_READ)
                sel.register(wake, selectors.EVENT_READ)
                while all(key.fd != wake for key, _ in sel.select()):
                    while (frame := tap.read()) is not None:
                        self._send(frame)
        except (OSError, TapError) as exc:
            if not tap.closed:
                log.warning("vpn %s: reading the container's frames failed: %s", self.ifname, exc)

    def _send(self, frame: bytes) -> None:
        with self._lock:
            targets = self._routes.targets(frame)
        if not targets:
            self.stats.dropped_out += 1
        net = self.spec.network_id
        for node in targets:
            try:
                self._gsb.push(f"/udp/net/{node}/vpn/{net}/raw", frame, caller=self._own_id)
                self.stats.sent += 1
            except gsblib.GsbError:
                self.stats.dropped_out += 1


class ActivityNetwork:
    """Every VPN link of one activity; what the container calls when it starts and ends."""

    def __init__(self, specs: Sequence[NetSpec], gsb: gsblib.GsbClient, own_id: str) -> None:
        self.links = [VpnLink(spec, gsb, own_id, f"vpn{i}") for i, spec in enumerate(specs)]

    def open(self) -> None:
        opened: list[VpnLink] = []
        try:
            for link in self.links:
                link.open()
                opened.append(link)
        except BaseException:
            for link in opened:
                link.close()
            raise

    def attach(self, pidfd: int) -> None:
        try:
            for link in self.links:
                link.attach(pidfd)
        except BaseException:
            self.detach()
            raise

    def detach(self) -> None:
        for link in self.links:
            link.detach()

    def close(self) -> None:
        for link in self.links:
            link.close()
