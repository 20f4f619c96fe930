"""One socket to a GSB router and the bookkeeping that lives and dies with it.

A ``GsbClient`` outlives its connections (``reconnect()`` replaces one): everything that is only
valid on one socket — the router's Hello, the FIFO of register/unregister waiters, the calls in
flight — is kept here, so that dropping a connection fails exactly what was waiting on it.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from golem_actors.localnet.gsb.codec import Hello, encode_frame
from golem_actors.localnet.gsb.errors import GsbConnectionError, GsbError

__all__ = ["Connection", "Waiter", "open_socket"]

Waiter = queue.Queue[tuple[int, str] | GsbError]  # a register/unregister reply (code, message)


@dataclass
class Connection:
    """The client's lock guards ``ctl``, ``pending`` and ``lost``; ``lock`` serializes writes."""

    sock: socket.socket
    lock: threading.Lock = field(default_factory=threading.Lock)
    hello: Hello | None = None
    hello_seen: threading.Event = field(default_factory=threading.Event)
    ctl: deque[tuple[str, Waiter]] = field(default_factory=deque)
    pending: dict[str, queue.Queue[Any]] = field(default_factory=dict)
    lost: bool = False
    reader: threading.Thread | None = None

    def send(self, packet: Any) -> None:
        frame = encode_frame(packet)
        with self.lock:
            self.sock.sendall(frame)

    def shut(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # close() alone leaves a blocked recv's socket up
        self.sock.close()


def open_socket(url: str, timeout: float) -> socket.socket:
    """``tcp://host:port`` or ``unix:/path`` (yagna's ``GSB_URL`` forms)."""
    try:
        if url.startswith("unix:"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(url.removeprefix("unix:").removeprefix("//"))
            except OSError:
                sock.close()
                raise
            return sock
        if not url.startswith("tcp://"):
            raise GsbConnectionError(f"unsupported GSB_URL {url!r}")
        host, _, port = url.removeprefix("tcp://").rstrip("/").rpartition(":")
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    except (OSError, ValueError) as e:
        raise GsbConnectionError(f"cannot connect to GSB at {url}: {e}") from e
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
