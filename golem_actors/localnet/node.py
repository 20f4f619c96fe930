"""Start and stop a real yagna daemon (from the ``golem-node`` wheel) for a local Golem network.

The daemon runs in central-net mode with itself as the hub, bound to loopback only, so it works
with no Golem network in reach. Facts this relies on (``shared/notes/real-yagna-offline.md``):

- the hub address regex only accepts a port of at most 4 digits, so the GSB port is <= 9999;
- an identity created while the daemon runs is bound to the net only after a restart, so new
  identities are created first and the daemon is restarted once;
- allocations need ``YAGNA_DEV_SKIP_ALLOCATION_VALIDATION=1`` offline (no chain to check funds on).

A node may also join another node's hub (``hub_gsb_url``): localnet runs one daemon per provider
node that way, as the real network does. Its default identity is then the provider's, reused
across runs from its data dir like its ports (when they are still free).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import requests

from golem_actors.errors import GolemActorsError
from golem_actors.extras import install_hint
from golem_actors.localnet.orphans import die_with_parent

__all__ = ["NodeError", "NodeIdentity", "YagnaNode", "find_yagna", "free_port", "is_yagna"]

log = logging.getLogger(__name__)

_STATE_FILE = "localnet-identities.json"
_MAX_HUB_PORT = 9999


class NodeError(GolemActorsError, RuntimeError):
    """The daemon could not be started, queried or stopped; the message says what to do."""


@dataclass(frozen=True)
class NodeIdentity:
    """One identity on the node and the app key that acts as it (kept out of ``repr``)."""

    name: str
    node_id: str
    app_key: str = field(repr=False)


def find_yagna() -> Path:
    """The ``yagna`` binary installed by ``golem-node`` next to this Python, or on PATH."""
    beside = Path(sys.executable).parent / "yagna"
    if beside.is_file():
        return beside
    found = shutil.which("yagna")
    if found:
        return Path(found)
    raise NodeError(
        "the yagna daemon was not found (localnet runs it from the golem-node package): install "
        f"it with `{install_hint('localnet')}`, or put a yagna binary on PATH"
    )


#: Ports are picked below Linux's ephemeral range (32768 and up by default): a port the kernel
#: hands out for outgoing connections could be taken between our probe and yagna's bind.
_BELOW_EPHEMERAL = 32767


def free_port(*, max_port: int = _BELOW_EPHEMERAL, host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now, probed at random from 2000 to ``max_port``."""
    for _ in range(200):
        port = random.randint(2000, max_port)  # noqa: S311 - not security related
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise NodeError(f"no free TCP port below {max_port} on {host}")


class YagnaNode:
    """One yagna daemon process: start, add identities, stop. Use it as a context manager."""

    def __init__(
        self,
        data_dir: Path,
        *,
        api_port: int | None = None,
        gsb_port: int | None = None,
        hub_gsb_url: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        binary: Path | None = None,
        death_signal: signal.Signals = signal.SIGINT,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.death_signal = death_signal  # what the daemon gets when its owner dies
        self.binary = binary or find_yagna()
        self.hub_gsb_url = hub_gsb_url
        self.extra_env = dict(extra_env or {})
        self._process: subprocess.Popen[bytes] | None = None
        self._state = self._load_state()
        # The same ports as last time if they are free: `localnet up`'s export lines stay valid.
        ports = self._state.get("ports", {})
        self.api_port = api_port or _reuse(ports.get("api")) or free_port()
        # Only a hub's GSB port must have <= 4 digits; a joining node's may be any.
        gsb_max = _BELOW_EPHEMERAL if hub_gsb_url else _MAX_HUB_PORT
        self.gsb_port = gsb_port or _reuse(ports.get("gsb"), gsb_max) or free_port(max_port=gsb_max)

    # -- addresses --------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def gsb_url(self) -> str:
        return f"tcp://127.0.0.1:{self.gsb_port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "yagna.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def node_id(self) -> str | None:
        """The default identity's node id, known once the daemon has been started once."""
        node_id: str | None = self._state.get("default_id")
        return node_id

    @property
    def state(self) -> str:
        """``running``, ``stopped`` (SIGSTOP: frozen, like a partitioned node), ``exited (rc)``
        or ``not started``."""
        if self._process is None:
            return "not started"
        code = self._process.poll()
        if code is not None:
            return f"exited ({code})"
        try:
            fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1]
        except (OSError, IndexError):
            return "running"
        return "stopped" if fields.split()[0] in "tT" else "running"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def requestor(self) -> NodeIdentity:
        """The default identity, whose app key is auto-configured at every start."""
        node_id = self._state.get("default_id")
        if not node_id:
            raise NodeError("the node has not been started yet")
        return NodeIdentity("requestor", node_id, self._state["default_key"])

    def identity(self, name: str) -> NodeIdentity:
        entry = self._state["identities"].get(name)
        if entry is None:
            raise NodeError(f"no identity named {name!r} on this node")
        return NodeIdentity(name, entry["node_id"], entry["app_key"])

    # -- lifecycle --------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """The environment the daemon and its CLI run with (includes the auto-configured key)."""
        hub = self.hub_gsb_url.removeprefix("tcp://") if self.hub_gsb_url else None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("YAGNA_", "YA_", "GSB_"))}
        env.update(
            {
                "YAGNA_DATADIR": str(self.data_dir),
                "YAGNA_API_URL": self.api_url,
                "GSB_URL": self.gsb_url,
                "YA_NET_TYPE": "central",
                "CENTRAL_NET_HOST": hub or f"127.0.0.1:{self.gsb_port}",
                "YAGNA_AUTOCONF_APPKEY": self._state["default_key"],
                "YAGNA_DEV_SKIP_ALLOCATION_VALIDATION": "1",
                "YAGNA_METRICS_URL": "http://127.0.0.1:9/",
                "RUST_BACKTRACE": "0",
                "RUST_LOG": os.environ.get("GOLEM_LOCALNET_RUST_LOG", "warn"),
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, *, timeout: float = 30.0) -> None:
        """Start the daemon and wait until ``/me`` answers with the requestor key."""
        self.spawn()
        self.wait_ready(timeout=timeout)

    def spawn(self) -> None:
        """Start the daemon process without waiting for it (``wait_ready`` does).

        Call it from the thread that owns the network: the daemon's parent-death signal fires
        when *that thread* ends (``orphans``). Waiting may happen on any thread.
        """
        if self._process is not None and self._process.poll() is None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._kill_stale()
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                [str(self.binary), "service", "run", "--disable-metrics-push"],
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal is ours to forward, in order
                preexec_fn=die_with_parent(self.death_signal),  # noqa: PLW1509 - prctl, getppid only
            )
        (self.data_dir / "daemon.pid").write_text(str(self._process.pid))

    def wait_router(self, *, timeout: float = 30.0) -> None:
        """Wait until the spawned daemon's bus router accepts connections (well before its
        REST API answers): nodes joining this one as their hub can be started then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.gsb_port), timeout=1),
            ):
                return
            time.sleep(0.01)
        raise NodeError(f"yagna's bus did not listen on {self.gsb_url} within {timeout} s")

    def wait_ready(self, *, timeout: float = 30.0) -> None:
        """Wait until the spawned daemon answers ``/me``; stop it and raise if it does not."""
        try:
            me = self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        ports = {"api": self.api_port, "gsb": self.gsb_port}
        if self._state.get("default_id") != me["identity"] or self._state.get("ports") != ports:
            self._state["default_id"] = me["identity"]
            self._state["ports"] = ports
            self._save_state()
        log.info("yagna up at %s (gsb %s), pid %s", self.api_url, self.gsb_url, self.pid)

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGINT, then SIGKILL if the daemon has not exited within ``timeout``."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.send_signal(signal.SIGCONT)  # a frozen (SIGSTOPped) daemon must run to exit
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning(
                    "yagna pid %s ignored SIGINT for %.0f s; killing it", process.pid, timeout
                )
                process.kill()
                process.wait(5)
        (self.data_dir / "daemon.pid").unlink(missing_ok=True)

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the running daemon (a fault: SIGKILL, SIGSTOP, SIGCONT)."""
        if self._process is None or self._process.poll() is not None:
            raise NodeError(f"the yagna of {self.data_dir} is not running")
        self._process.send_signal(sig)
        if sig == signal.SIGKILL:
            self._process.wait(10)

    def restart(self, *, timeout: float = 30.0) -> None:
        self.stop()
        self.start(timeout=timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- identities -------------------------------------------------------------------------

    def ensure_identities(self, names: Sequence[str]) -> dict[str, NodeIdentity]:
        """Make sure each named identity exists with an app key; restart once if any is new.

        Identities live in the data dir, so with a reused data dir this costs nothing.
        """
        created = False
        for name in names:
            if name in self._state["identities"]:
                continue
            info = self.cli("id", "create", "--no-password", name)
            node_id = _unwrap(info)["nodeId"]
            key = self.cli("app-key", "create", "--id", node_id, name)
            self._state["identities"][name] = {"node_id": node_id, "app_key": _unwrap(key)}
            self._save_state()
            created = True
        if created:
            self.restart()  # a new identity is bound to the central net only after a restart
        return {name: self.identity(name) for name in names}

    def cli(self, *args: str, timeout: float = 30.0) -> Any:
        """Run ``yagna --json <args>`` against this node and return the decoded answer."""
        try:
            done = subprocess.run(
                [str(self.binary), "--json", *args],
                env=self.environment(),
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise NodeError(f"`yagna {args[0]}` did not answer within {timeout} s") from None
        if done.returncode != 0:
            raise NodeError(f"`yagna {' '.join(args[:2])}` failed: {done.stderr.decode()[-500:]}")
        text = done.stdout.decode().strip()
        try:
            return json.loads(text)
        except ValueError:
            return text

    # -- internals --------------------------------------------------------------------------

    def _wait_ready(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {self._state['default_key']}"}
        with requests.Session() as session:
            session.trust_env = False
            while time.monotonic() < deadline:
                self._check_alive()
                try:
                    response = session.get(f"{self.api_url}/me", headers=headers, timeout=1)
                except requests.RequestException:
                    time.sleep(0.05)
                    continue
                if response.status_code == 200:  # noqa: PLR2004
                    me: dict[str, Any] = response.json()
                    return me
                time.sleep(0.05)
        raise NodeError(
            f"yagna did not answer on {self.api_url} within {timeout} s\n{self._tail()}"
        )

    def _check_alive(self) -> None:
        if self._process is None or self._process.poll() is not None:
            raise NodeError(f"yagna exited during start-up; see {self.log_path}\n{self._tail()}")

    def _tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _kill_stale(self) -> None:
        """A daemon left behind by a killed run holds the data dir's lock: stop it first."""
        pid_file = self.data_dir / "daemon.pid"
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            return
        if is_yagna(pid):
            log.warning("stopping a yagna (pid %s) left behind in %s", pid, self.data_dir)
            os.kill(pid, signal.SIGKILL)
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.05)
        pid_file.unlink(missing_ok=True)

    def _load_state(self) -> dict[str, Any]:
        path = self.data_dir / _STATE_FILE
        try:
            state: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            state = {}
        except ValueError as exc:
            raise NodeError(
                f"{path} is not valid JSON ({exc}); remove it to start afresh"
            ) from None
        state.setdefault("default_key", secrets.token_hex(16))
        state.setdefault("identities", {})
        return state

    def _save_state(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / _STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, indent=2))
        tmp.chmod(0o600)  # it holds app keys
        tmp.replace(path)


def is_yagna(pid: object) -> bool:
    """Whether ``pid`` is a running yagna now: a pid read from a file may have been reused."""
    try:
        return isinstance(pid, int) and b"yagna" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _reuse(port: Any, max_port: int = _BELOW_EPHEMERAL) -> int | None:
    """``port`` if it is a port number below ``max_port`` that is free now, else None."""
    if not isinstance(port, int) or not 0 < port <= max_port:
        return None
    with socket.socket() as sock:
        # As yagna binds: a port whose old connections linger in TIME_WAIT is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return None
    return port


def _unwrap(answer: Any) -> Any:
    """yagna's CLI wraps some answers as ``{"Ok": ...}``."""
    if isinstance(answer, dict) and set(answer) == {"Ok"}:
        return answer["Ok"]
    return answer
