"""A TAP device inside an activity's network namespace: the container's end of the Golem VPN.

The container (bwrap ``--unshare-net``) has a network namespace of its own holding only ``lo``.
``Tap.create`` adds the VPN interface to it while the container's pid 1 is still held before its
first instruction: a helper thread joins the namespace (``setns`` on the pid 1's pidfd, so a
recycled pid can never be hit), opens ``/dev/net/tun`` there, which makes the device in that
namespace, and configures it with plain ioctls (MAC ``a0:13:<ip>``, MTU, address and netmask,
which also gives the subnet route; no default route, so nothing outside the VPN is reachable)
and with IPv6 off (its router solicitations would only be dropped). The provider keeps the fd:
frames the container sends are read from it, frames for the container are written to it.

The device is not persistent: closing the fd removes it, and the provider's death closes the fd.
The open fd keeps the namespace alive after the container's processes have gone (the tun driver
holds a reference to it), so the owner closes it when the container ends.

Needs root, or CAP_NET_ADMIN with CAP_SYS_ADMIN (``vpn_unavailable`` says what is missing);
bubblewrap's namespaces are made by a child user namespace, over which root has every power.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import TypeVar

from golem_actors.localnet.bwrap import SandboxError

__all__ = ["Tap", "TapError", "in_netns", "vpn_unavailable"]

T = TypeVar("T")

_TUN = "/dev/net/tun"
_TUNSETIFF = 0x400454CA
_IFF_TAP, _IFF_NO_PI = 0x0002, 0x1000
_IFF_UP, _IFF_RUNNING = 0x1, 0x40
_SIOCGIFFLAGS, _SIOCSIFFLAGS = 0x8913, 0x8914
_SIOCSIFADDR, _SIOCSIFNETMASK = 0x8916, 0x891C
_SIOCSIFMTU, _SIOCSIFHWADDR = 0x8922, 0x8924
_ARPHRD_ETHER = 1
_CLONE_NEWNET = 0x40000000
_CAP_NET_ADMIN, _CAP_SYS_ADMIN = 12, 21
_SETUP_TIMEOUT = 10.0
_MAX_FRAME = 65536


class TapError(SandboxError):
    """The VPN interface could not be made or used."""


def vpn_unavailable() -> str | None:
    """Why containers here cannot get a VPN interface, or None if they can."""
    if not Path(_TUN).exists():
        return f"{_TUN} is missing (the tun module is not loaded)"
    try:
        status = Path("/proc/self/status").read_text()
        line = next(ln for ln in status.splitlines() if ln.startswith("CapEff:"))
        caps = int(line.split()[1], 16)
    except (OSError, StopIteration, ValueError, IndexError):
        return "cannot read this process's capabilities"
    needed = (1 << _CAP_NET_ADMIN) | (1 << _CAP_SYS_ADMIN)
    if caps & needed != needed:
        return "it needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to give a container a TAP device"
    return None


def _enter_netns(pidfd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(pidfd, _CLONE_NEWNET) != 0:
        why = os.strerror(ctypes.get_errno())
        raise TapError(f"cannot enter the container's network namespace: {why}")


def in_netns(pidfd: int, work: Callable[[], T], timeout: float = _SETUP_TIMEOUT) -> T:
    """Run ``work`` on a helper thread inside the network namespace of the process ``pidfd``
    names (only that thread moves; it ends with ``work``)."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            _enter_netns(pidfd)
            outcome.append(work())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name="netns-setup", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TapError(f"setting up the container's network took over {timeout} s")
    if failure:
        raise failure[0]
    return outcome[0]


def _ifreq(name: bytes, payload: bytes = b"") -> bytes:
    return struct.pack("16s", name) + payload.ljust(24, b"\0")


def _sockaddr(ip: IPv4Address) -> bytes:
    return struct.pack("HH4s8x", socket.AF_INET, 0, ip.packed)


def _configure(name: str, mac: bytes, address: IPv4Address, network: IPv4Network, mtu: int) -> int:
    """Inside the namespace: IPv6 off, the device made, addressed and up; returns its fd."""
    for scope in ("all", "default"):
        with contextlib.suppress(OSError):  # a kernel without IPv6 has no such file
            Path(f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6").write_text("1")
    fd = os.open(_TUN, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        raw = name.encode()
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH22x", raw, _IFF_TAP | _IFF_NO_PI))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            fcntl.ioctl(sock, _SIOCSIFHWADDR, _ifreq(raw, struct.pack("H6s", _ARPHRD_ETHER, mac)))
            fcntl.ioctl(sock, _SIOCSIFMTU, _ifreq(raw, struct.pack("i", mtu)))
            fcntl.ioctl(sock, _SIOCSIFADDR, _ifreq(raw, _sockaddr(address)))
            fcntl.ioctl(sock, _SIOCSIFNETMASK, _ifreq(raw, _sockaddr(network.netmask)))
            flags = struct.unpack_from("H", fcntl.ioctl(sock, _SIOCGIFFLAGS, _ifreq(raw)), 16)[0]
            up = struct.pack("H", flags | _IFF_UP | _IFF_RUNNING)
            fcntl.ioctl(sock, _SIOCSIFFLAGS, _ifreq(raw, up))
    except BaseException:
        os.close(fd)
        raise
    return fd


class Tap:
    """One TAP device in a container, seen from the provider through its fd (non-blocking)."""

    def __init__(self, fd: int, name: str) -> None:
        self._fd: int | None = fd
        self.name = name
        self._lock = threading.Lock()  # a write never hits an fd number reused after close

    @classmethod
    def create(
        cls,
        pidfd: int,
        *,
        name: str,
        mac: bytes,
        address: IPv4Address,
        network: IPv4Network,
        mtu: int,
    ) -> Tap:
        """Make the device in the namespace of ``pidfd``'s process, configured and up."""
        try:
            fd = in_netns(pidfd, lambda: _configure(name, mac, address, network, mtu))
        except OSError as exc:
            raise TapError(f"cannot make the VPN interface {name} ({address}): {exc}") from exc
        return cls(fd, name)

    def fileno(self) -> int:
        if self._fd is None:
            raise TapError(f"the VPN interface {self.name} is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd is None

    def read(self) -> bytes | None:
        """One frame the container sent, or None if none is waiting."""
        try:
            return os.read(self.fileno(), _MAX_FRAME)
        except BlockingIOError:
            return None

    def write(self, frame: bytes) -> bool:
        """Hand one frame to the container; False if its queue is full (dropped, as a NIC
        drops) or the device has gone."""
        with self._lock:
            if self._fd is None:
                return False
            try:
                os.write(self._fd, frame)
            except OSError:  # EAGAIN (queue full), EIO (device down), EINVAL (malformed)
                return False
            return True

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
