"""The init (pid 1) of an activity's container, which starts the commands run in it.

It runs inside the sandbox under the image's own ``python3`` (3.8 or later, standard library
only), started by the provider as ``python3 -I -S /dev/fd/N golem-init CTL LIMITS`` (N: a pipe
holding this file), so it is written for that Python, not the provider's. Being pid 1 it reaps
every process the container's commands leave behind; beyond that it only starts commands:

- ``CTL`` is one end of a ``SOCK_SEQPACKET`` socket pair; the provider holds the other. The
  init says ``{"ready": ...}`` on it once, then gets one ``run`` message per command carrying
  three descriptors: a stream socket private to that command and the write ends of its stdout
  and stderr pipes. The provider closing ``CTL`` ends the container (pid 1 exits; the kernel
  kills the rest of the pid namespace).
- On the command's socket the provider sends one JSON line (``argv``, ``env``, ``cwd``) and
  perhaps ``kill`` later. The init answers ``{"started": pid}`` or ``{"error": why}`` (it could
  not be set up: a bad ``cwd``, no fork) and, when the command's own process ends,
  ``{"exit": code, "cpu": seconds}``; what the command left in the background lives on.
- ``kill``, or the provider closing the command's socket, SIGKILLs the command's tree: its
  session and every descendant of its main process, never the container's other processes.
- A command runs in a new session under ``LIMITS`` (``[[RLIMIT_*, value], ...]``) with the
  signal dispositions Python changed restored; the init itself runs without those limits so
  that it can always start a command.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import resource
import select
import signal
import socket
import sys
from pathlib import Path
from typing import Any, NoReturn

MIN_PYTHON = (3, 8)
REQUEST_TIMEOUT = 10.0  # the provider writes a request at once; this bounds a wedged one
_KILL_ROUNDS = 1000
_SIGNALS_TO_RESTORE = ("SIGPIPE", "SIGXFSZ", "SIGXFZ", "SIGINT", "SIGCHLD")


class SetupError(Exception):
    """A command that could not be set up; the message goes back to the provider."""


class InitCommand:
    def __init__(self, chan: socket.socket, pid: int) -> None:
        self.chan, self.pid = chan, pid


class Init:
    def __init__(self, ctl: socket.socket, limits: list[tuple[int, int]]) -> None:
        self.ctl, self.limits = ctl, limits
        self.commands: dict[int, InitCommand] = {}  # by the main process's pid
        self.by_fd: dict[int, InitCommand] = {}  # by the command's socket
        self.wake_r, wake_w = os.pipe()
        for fd in (self.wake_r, wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(wake_w)  # SIGCHLD wakes the poll below
        signal.signal(signal.SIGCHLD, _ignore)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # no KeyboardInterrupt from `kill -INT 1`
        self.poll = select.poll()
        self.poll.register(ctl, select.POLLIN)
        self.poll.register(self.wake_r, select.POLLIN)

    def serve(self) -> None:
        version = list(sys.version_info[:3])
        self.ctl.send(json.dumps({"ready": os.getpid(), "python": version}).encode())
        while True:
            for fd, _ in self.poll.poll():
                if fd == self.ctl.fileno():
                    if not self.accept():
                        return  # the provider is gone: so is the container
                elif fd == self.wake_r:
                    _drain(self.wake_r)
                elif fd in self.by_fd:
                    self.control(self.by_fd[fd])
            self.reap()

    def accept(self) -> bool:
        size = socket.CMSG_SPACE(3 * array.array("i").itemsize)
        data, ancdata, _, _ = self.ctl.recvmsg(64, size, socket.MSG_CMSG_CLOEXEC)
        fds = array.array("i")
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        if not data or len(fds) != 3:  # noqa: PLR2004 - the channel, stdout and stderr
            for fd in fds:
                os.close(fd)
            return bool(data)
        self.start(socket.socket(fileno=fds[0]), fds[1], fds[2])
        return True

    def start(self, chan: socket.socket, out: int, err: int) -> None:
        try:
            request, rest = _read_request(chan)
            pid = self.spawn(request, out, err)
        except SetupError as exc:
            _send(chan, {"error": str(exc)})
            chan.close()
            return
        finally:
            os.close(out)
            os.close(err)
        command = InitCommand(chan, pid)
        self.commands[pid] = command
        self.by_fd[chan.fileno()] = command
        chan.settimeout(0.0)  # non-blocking
        self.poll.register(chan, select.POLLIN)
        _send(chan, {"started": pid})
        if b"kill" in rest:
            self.kill(pid)

    def spawn(self, request: Any, out: int, err: int) -> int:
        try:
            argv, env, cwd = request["argv"], request["env"], request["cwd"]
        except (TypeError, KeyError) as exc:
            raise SetupError(f"malformed request: {exc!r}") from None
        report_r, report_w = os.pipe()  # both close-on-exec: EOF once the command runs
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(report_r)
            os.close(report_w)
            raise SetupError(f"cannot start the command: {exc.strerror}") from None
        if pid == 0:
            os.close(report_r)
            _child((argv, env, cwd), (out, err), report_w, self.limits)
        os.close(report_w)
        why = _read_all(report_r)
        os.close(report_r)
        if why:
            raise SetupError(why.decode(errors="replace"))
        return pid

    def control(self, command: InitCommand) -> None:
        try:
            data = command.chan.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the provider gave up on it: end it, forget the socket
            self.kill(command.pid)
            self.poll.unregister(command.chan)
            del self.by_fd[command.chan.fileno()]
            command.chan.close()
        elif b"kill" in data:
            self.kill(command.pid)

    def kill(self, root: int) -> None:
        """SIGKILL ``root``'s session and descendants until none is left alive."""
        if root not in self.commands:
            return  # it ended already
        signalled: set[int] = set()
        for _ in range(_KILL_ROUNDS):
            victims = _tree_of(root) - signalled - {os.getpid()}
            if not victims:
                return
            for pid in victims:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            signalled |= victims  # a process with SIGKILL pending forks no more

    def reap(self) -> None:
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            command = self.commands.pop(pid, None)
            if command is None:
                continue  # something the commands left behind (or a failed set-up)
            cpu = usage.ru_utime + usage.ru_stime
            if self.by_fd.pop(command.chan.fileno(), None) is not None:
                _send(command.chan, {"exit": _exit_code(status), "cpu": cpu})
                self.poll.unregister(command.chan)
                command.chan.close()


def _child(
    request: tuple[list[str], dict[str, str], str],
    outputs: tuple[int, int],
    report: int,
    limits: list[tuple[int, int]],
) -> NoReturn:
    """The forked child: set the command up and exec it; never returns into the server."""
    argv, env, cwd = request
    out, err = outputs
    try:
        os.setsid()
        for name in _SIGNALS_TO_RESTORE:
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        try:
            os.chdir(cwd)
        except OSError as exc:
            os.write(report, f"chdir {cwd}: {exc.strerror}".encode())
            os._exit(126)
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for which, value in limits:
            resource.setrlimit(which, (value, value))
        try:
            os.execvpe(argv[0], argv, env)  # noqa: S606 - argv as given, never a shell
        except OSError as exc:
            os.write(2, f"{argv[0]}: {exc.strerror}\n".encode())
    except BaseException as exc:  # noqa: BLE001 - report anything, then exit
        with contextlib.suppress(BaseException):
            os.write(report, f"cannot start the command: {exc!r}".encode())
    os._exit(127)


def _tree_of(root: int) -> set[int]:
    """Live processes in ``root``'s session, and every descendant of ``root`` or of those."""
    table: dict[int, tuple[str, int, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                table[int(entry.name)] = (fields[0], int(fields[1]), int(fields[3]))
            except (OSError, IndexError, ValueError):
                continue
    members = {pid for pid, (_, _, sid) in table.items() if sid == root} | {root}
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    pending, tree = list(members), set()
    while pending:
        pid = pending.pop()
        if pid not in tree:
            tree.add(pid)
            pending += children.get(pid, [])
    return {pid for pid in tree if pid in table and table[pid][0] not in "ZXx"}


def _read_request(chan: socket.socket) -> tuple[Any, bytes]:
    chan.settimeout(REQUEST_TIMEOUT)
    buf = b""
    try:
        while b"\n" not in buf:
            chunk = chan.recv(1 << 16)
            if not chunk:
                raise SetupError("the request ended early")
            buf += chunk
    except OSError as exc:
        raise SetupError(f"cannot read the request: {exc!r}") from None
    line, _, rest = buf.partition(b"\n")
    try:
        return json.loads(line), rest
    except ValueError as exc:
        raise SetupError(f"malformed request: {exc}") from None


def _read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    return data


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 4096):
            pass


def _send(chan: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the provider gave up on the command
        chan.sendall(json.dumps(message).encode() + b"\n")


def _exit_code(status: int) -> int:
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return -1


def _ignore(signum: int, frame: object) -> None:
    """A handler, so that SIGCHLD reaches the wakeup fd (an ignored one would not)."""


def main(argv: list[str]) -> int:
    if sys.version_info < MIN_PYTHON:
        sys.stderr.write("golem-init: Python 3.8 or later is needed\n")
        return 3
    for entry in list(Path("/proc/self/fd").iterdir()):  # nothing it got reaches a command
        if int(entry.name) > 2:  # noqa: PLR2004 - stdin, stdout and stderr
            with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
                os.set_inheritable(int(entry.name), False)  # noqa: FBT003
    ctl = socket.socket(fileno=int(argv[2]))
    limits = [(int(which), int(value)) for which, value in json.loads(argv[3])]
    Init(ctl, limits).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
