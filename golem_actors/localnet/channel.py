"""One command in an activity's container, from the provider's side of its socket to the init.

The provider sends the request (one JSON line), reads the command's stdout and stderr pipes
while the init's messages (``initd.py``) say how it goes, and sends ``kill`` at its timeout or
on ``cancel``. The command ends when the init reports that its own process exited; what it left
in a pipe is read at once, and a pipe that background processes still hold is handed to the
container (``Hooks.adopt``), which drains it from then on.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from golem_actors.localnet import bwrap
from golem_actors.localnet.bwrap import (
    KILL_GRACE,
    SETUP_TIMEOUT,
    OnOutput,
    RunResult,
    SandboxError,
)

__all__ = ["ContainerCommand", "Hooks"]

_DRAIN_LIMIT = 4 * 2**20  # read after a command's end before the container takes a pipe over
_MAX_MESSAGE = 2**20  # the init's messages are a few dozen bytes


@dataclass(frozen=True)
class Hooks:
    """What a command needs of its container."""

    stop: Callable[[], object]  # a killed command would not end: stop the whole container
    gone: Callable[[], str]  # why the container is gone (the init's socket closed)
    adopt: Callable[[int], bool]  # drain this pipe from now on; False: close it yourself


class ContainerCommand:
    """A command's socket to the init, and how it was ended."""

    def __init__(self, chan: socket.socket, started: float) -> None:
        self.chan, self.started = chan, started
        self.send_lock = threading.Lock()  # the request and a kill never interleave
        self.killed = self.timed_out = self.sent = False

    def kill(self) -> None:
        """Have the init kill the command's tree (its session and descendants)."""
        with self.send_lock:
            self.killed = True
            if self.sent:  # else it is never sent at all
                with contextlib.suppress(OSError):
                    self.chan.send(b"kill\n")

    def run(
        self,
        request: dict[str, Any],
        pipes: tuple[int, int],
        deadline: float | None,
        hooks: Hooks,
        on_output: OnOutput | None = None,
    ) -> RunResult:
        """Send ``request``, read ``pipes`` (stdout, stderr; closed or adopted here) and the
        init's messages until the command ends; kill it at ``deadline``. ``on_output`` is told
        what it prints as it comes."""
        bufs = {fd: _Output(name, on_output) for fd, name in zip(pipes, _NAMES, strict=True)}
        open_fds = set(pipes)
        try:
            with self.send_lock:
                if not self.killed:  # cancelled before it was sent: it never runs
                    self.chan.settimeout(SETUP_TIMEOUT)
                    self.chan.sendall(json.dumps(request).encode() + b"\n")
                    self.chan.settimeout(0.0)  # non-blocking from now on
                    self.sent = True
            if self.sent:
                end = self._wait_end(bufs, open_fds, deadline, hooks)
            else:
                end = {"exit": -signal.SIGKILL, "cpu": 0.0}
            for fd, buf in bufs.items():
                if fd in open_fds and not _drain(fd, buf) and hooks.adopt(fd):
                    open_fds.discard(fd)  # background processes hold it: the container's now
        finally:
            for fd in open_fds:
                os.close(fd)
        code = -signal.SIGKILL if self.killed else int(end["exit"])
        wall = time.monotonic() - self.started
        out, err = (bytes(bufs[fd]) for fd in pipes)
        return RunResult(code, out, err, end["cpu"], wall, self.timed_out)

    def _wait_end(
        self,
        bufs: dict[int, _Output],
        open_fds: set[int],
        deadline: float | None,
        hooks: Hooks,
    ) -> dict[str, float]:
        chan_fd, lines = self.chan.fileno(), bytearray()
        grace: float | None = None
        with selectors.DefaultSelector() as sel:
            for fd in (*bufs, chan_fd):
                sel.register(fd, selectors.EVENT_READ)
            while True:
                now = time.monotonic()
                if deadline is not None and now >= deadline and not self.killed:
                    self.timed_out = True
                    self.kill()
                if self.killed and grace is None:
                    grace = now + KILL_GRACE
                if grace is not None and now >= grace:
                    hooks.stop()  # its tree would not die: nothing is trustworthy any more
                    raise SandboxError("a killed command did not end; the container was stopped")
                limit = grace or deadline
                for key, _ in sel.select(None if limit is None else max(0.0, limit - now)):
                    if key.fd == chan_fd:
                        end = self._messages(lines, hooks)
                        if end is not None:
                            return end
                    elif not _read_into(key.fd, bufs[key.fd]):
                        sel.unregister(key.fd)
                        open_fds.discard(key.fd)
                        os.close(key.fd)

    def _messages(self, lines: bytearray, hooks: Hooks) -> dict[str, float] | None:
        """Read the init's messages; the command's end once the init reports it."""
        chunk = self.chan.recv(65536)
        if not chunk:  # the init is gone, and the container with it
            if self.killed:
                return {"exit": -signal.SIGKILL, "cpu": 0.0}
            raise SandboxError(hooks.gone())
        lines += chunk
        if len(lines) > _MAX_MESSAGE:
            raise SandboxError("the container's init sent an oversized message")
        while b"\n" in lines:
            line, _, rest = bytes(lines).partition(b"\n")
            lines[:] = rest
            end = _message(line)
            if end is not None:
                return end
        return None


def _message(line: bytes) -> dict[str, float] | None:
    """The end of a command (``exit``), None while it runs; a set-up failure raises.

    The init runs with the commands' privileges, so a command may have taken it over: what it
    says is checked, never trusted to be well-formed. (Its cpu figure is the command's own, for
    the result; usage billing reads the container's processes from the host, not from it.)
    """
    try:
        message = json.loads(line)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        raise SandboxError(f"the container's init sent a malformed message: {line[:200]!r}")
    if "error" in message:
        raise SandboxError(f"the sandbox could not start the command: {message['error']}")
    if "exit" not in message:
        return None
    exit_code, cpu = message["exit"], message.get("cpu", 0.0)
    if type(exit_code) is not int or type(cpu) not in (int, float) or not cpu >= 0:
        raise SandboxError(f"the container's init sent a malformed message: {line[:200]!r}")
    return {"exit": float(exit_code), "cpu": float(cpu)}


_NAMES = ("stdout", "stderr")


class _Output(bytearray):
    """A command's stdout or stderr, kept up to ``MAX_OUTPUT`` and told to ``on_output``."""

    def __init__(self, name: str, on_output: OnOutput | None) -> None:
        super().__init__()
        self.name, self.on_output = name, on_output

    def add(self, chunk: bytes) -> None:
        kept = chunk[: max(0, bwrap.MAX_OUTPUT - len(self))]
        self += kept
        if kept and self.on_output is not None:
            self.on_output(self.name, kept)


def _read_into(fd: int, buf: _Output) -> bool:
    """Read a chunk of ``fd`` into ``buf`` (up to ``MAX_OUTPUT``); False at its end."""
    chunk = os.read(fd, 65536)
    buf.add(chunk)
    return bool(chunk)


def _drain(fd: int, buf: _Output) -> bool:
    """Read what an ended command left in a pipe; True at its end, False if background
    processes still hold it (and may write more)."""
    os.set_blocking(fd, False)
    taken = 0
    while taken < _DRAIN_LIMIT:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return False
        if not chunk:
            return True
        taken += len(chunk)
        buf.add(chunk)
    return False
