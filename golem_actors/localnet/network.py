"""``LocalNet``: yagna daemons plus N provider processes, started, watched and stopped together.

    with LocalNet(providers=3) as net:
        client = YagnaClient(ApiConfig(app_key=net.app_key, api_url=net.api_url))
        net.set_faults("provider-2", hang=True)
        net.kill_daemon("provider-3")  # a partition: provider-3's node vanishes

The requestor's node (its yagna is the hub) and one node per provider (a yagna of its own
joined to the hub, and the provider agent talking only to it), as on the real network
(``daemons``); ``shared_daemon=True`` puts every provider identity in the hub's daemon instead.
``start()`` returns once the requestor's node sees every provider's offer.

The data directory is reused between runs (identities are created once), and locked while a
network runs in it, so a second ``localnet up`` on the same directory fails with a clear message
instead of killing the first one's daemon. ``localnet.json`` in it describes the running network
for ``golem-actors localnet status``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Self

from golem_actors.datadir import default_data_dir
from golem_actors.errors import GolemActorsError
from golem_actors.localnet.agents import ProviderProcess
from golem_actors.localnet.daemons import DAEMON_SIGNALS, Daemons
from golem_actors.localnet.faults import FaultFile, Faults
from golem_actors.localnet.images import ImageStore
from golem_actors.localnet.node import NodeError, YagnaNode
from golem_actors.localnet.offer import ProviderSpec
from golem_actors.localnet.offerwatch import AGENT_STARTED, OfferWatch
from golem_actors.localnet.orphans import die_with_parent
from golem_actors.localnet.provider.config import ProviderConfig
from golem_actors.localnet.registry import serve_registry
from golem_actors.yagna import ApiConfig

__all__ = [
    "LocalNet",
    "LocalNetError",
    "ProviderProcess",
    "default_data_dir",
    "default_specs",
]

log = logging.getLogger(__name__)

STATE_FILE = "localnet.json"


class LocalNetError(GolemActorsError, RuntimeError):
    """localnet could not start or be controlled; the message says what to do."""


def default_specs(count: int, **overrides: Any) -> list[ProviderSpec]:
    """``provider-1`` ... ``provider-N`` with different prices and sizes, so scoring can choose."""
    if count < 1:
        raise ValueError(f"a local network needs at least one provider, got {count}")
    specs = []
    for i in range(count):
        step = Decimal(i % 4)
        specs.append(
            ProviderSpec(
                name=f"provider-{i + 1}",
                cpu_threads=2 + 2 * (i % 3),
                mem_gib=4.0 * (1 + i % 2),
                price_duration_sec=(Decimal("0.00002") * (1 + step / 2)).normalize(),
                price_cpu_sec=(Decimal("0.0001") * (1 + step / 4)).normalize(),
                start_price=(Decimal("0.001") * (1 + step)).normalize(),
                **overrides,
            )
        )
    return specs


class LocalNet:
    """A local Golem network. Use as a context manager; ``stop()`` stops every process."""

    def __init__(
        self,
        providers: int | Sequence[ProviderSpec] = 3,
        *,
        data_dir: Path | None = None,
        provider_log_level: str = "INFO",
        shared_daemon: bool = False,
    ) -> None:
        self.specs = default_specs(providers) if isinstance(providers, int) else list(providers)
        names = [s.name for s in self.specs]
        if len(set(names)) != len(names):
            raise LocalNetError(f"provider names must be unique, got {names}")
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.daemons = Daemons(self.data_dir, names, shared=shared_daemon)
        self.node: YagnaNode = self.daemons.hub  # the requestor's node
        # Seconds each phase of start() took: daemons, agents (to ready), offers (to the hub).
        self.startup: dict[str, float] = {}
        self.providers: dict[str, ProviderProcess] = {}
        self._log_level = provider_log_level
        self._lock_file: IO[str] | None = None
        self._watcher: threading.Thread | None = None
        self.images = ImageStore(self.data_dir / "images")
        self._image_server: Any = None
        self.images_url: str | None = None
        self._stopping = threading.Event()

    # -- what clients need ------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return self.node.api_url

    @property
    def app_key(self) -> str:
        """The requestor's app key (keep it out of logs)."""
        return self.node.requestor.app_key

    @property
    def requestor_id(self) -> str:
        return self.node.requestor.node_id

    def env(self) -> dict[str, str]:
        env = {"YAGNA_API_URL": self.api_url, "YAGNA_APPKEY": self.app_key}
        return env | ({"GOLEM_REGISTRY_URL": self.images_url} if self.images_url else {})

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, *, timeout: float = 60.0) -> None:
        """Every daemon, then every provider agent; returns once the requestor's node sees
        every provider's offer. ``startup`` then has each phase's seconds."""
        started = deadline = time.monotonic()
        deadline += timeout
        self._lock_data_dir()
        try:
            # The store's registry on loopback: tags and hashes resolve as on the real network.
            self._image_server, self.images_url = serve_registry(self.images)
            self.daemons.start_hub(deadline)
            specs = {spec.name: spec for spec in self.specs}
            with self._offer_watch() as watch:  # before any offer is published
                for name in self.daemons.ready_nodes(deadline):  # an agent per node once up
                    node_id = self.daemons.endpoint(name).node_id
                    state_dir = self.data_dir / "providers" / name
                    self.providers[name] = ProviderProcess(specs[name], node_id, state_dir)
                    self._spawn(self.providers[name])
                self.startup["daemons"] = time.monotonic() - started
                self.providers = {name: self.providers[name] for name in specs}  # in order
                for provider in self.providers.values():
                    self._wait_ready(provider, deadline)
                self.startup["agents"] = time.monotonic() - started - self.startup["daemons"]
                self.startup["offers"] = self._wait_offers(watch, self.providers, deadline)
        except BaseException:
            self.stop()
            raise
        self._watcher = threading.Thread(target=self._watch, name="localnet-watch", daemon=True)
        self._watcher.start()
        self.write_state()

    def stop(self, *, timeout: float = 15.0) -> None:
        """SIGTERM every provider (they unsubscribe and invoice), then stop the daemons."""
        self._stopping.set()
        self.daemons.thaw()
        running = [
            p.process for p in self.providers.values() if p.process and p.process.poll() is None
        ]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("provider pid %s did not stop in time; killing it", process.pid)
                process.kill()
                process.wait(5)
        self.daemons.stop()
        if self._image_server is not None:
            self._image_server.shutdown()
            self._image_server.server_close()
            self._image_server = None
        with contextlib.suppress(OSError):
            (self.data_dir / STATE_FILE).unlink()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- fault knobs ------------------------------------------------------------------------

    def provider(self, name: str) -> ProviderProcess:
        try:
            return self.providers[name]
        except KeyError:
            known = ", ".join(self.providers) or "none"
            raise LocalNetError(f"no provider named {name!r} (known: {known})") from None

    def set_faults(self, name: str, **knobs: Any) -> Faults:
        """Change a running provider's fault knobs (see ``Faults``); returns the new knobs."""
        provider = self.provider(name)
        fault_file = FaultFile(provider.state_dir / "faults.json")
        faults = fault_file.read().with_changes(**knobs)
        fault_file.write(faults)
        return faults

    def clear_faults(self, name: str) -> None:
        FaultFile(self.provider(name).state_dir / "faults.json").write(Faults())

    def kill(self, name: str) -> None:
        """Crash a provider now (SIGKILL): its offer, agreements and activities are orphaned."""
        provider = self.provider(name)
        if provider.process and provider.process.poll() is None:
            provider.process.kill()
            provider.process.wait(5)
        self.write_state()

    def restart_provider(self, name: str, *, timeout: float = 30.0) -> None:
        """A fresh agent (and its node's daemon, if that was killed or paused), fault-free;
        returns once the requestor's node sees its offer."""
        provider = self.provider(name)
        deadline = time.monotonic() + timeout
        if provider.process and provider.process.poll() is None:
            provider.process.terminate()
            provider.process.wait(15)
        self.clear_faults(name)
        self.daemons.restart_node(name, timeout=timeout)
        self._spawn(provider)
        self._wait_ready(provider, deadline)
        with self._offer_watch() as watch:
            self._wait_offers(watch, {name: provider}, deadline)
        self.write_state()

    def kill_daemon(self, name: str) -> None:
        """SIGKILL provider ``name``'s daemon: its node vanishes from the network, as in a
        partition seen from the requestor (its agent then fails on its own)."""
        self._signal_daemon(name, "kill")

    def pause_daemon(self, name: str) -> None:
        """SIGSTOP provider ``name``'s daemon: its node stops answering but keeps its state."""
        self._signal_daemon(name, "pause")

    def resume_daemon(self, name: str) -> None:
        """SIGCONT a paused daemon: the partition heals."""
        self._signal_daemon(name, "resume")

    def _signal_daemon(self, name: str, action: str) -> None:
        self.provider(name)  # a clear error for an unknown name
        if self.daemons.shared:
            raise LocalNetError(
                f"{name} has no daemon of its own (the network runs one shared daemon)"
            )
        try:
            self.daemons.signal(name, DAEMON_SIGNALS[action])
        except NodeError as exc:
            raise LocalNetError(f"cannot {action} {name}'s daemon: {exc}") from None
        self.write_state()

    # -- state ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The network as ``localnet status --json`` prints it (no app keys)."""
        return {
            "pid": os.getpid(),
            "data_dir": str(self.data_dir),
            "api_url": self.api_url,
            "gsb_url": self.node.gsb_url,
            "yagna_pid": self.node.pid,
            "shared_daemon": self.daemons.shared,
            "requestor_id": self.node.requestor.node_id,
            "images_url": self.images_url,
            "registry_url": self.images_url,
            "providers": [
                {**p.status(), "daemon": self.daemons.status(p.name)}
                for p in self.providers.values()
            ],
        }

    def write_state(self) -> None:
        path = self.data_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status(), indent=2))
        tmp.replace(path)

    # -- internals --------------------------------------------------------------------------

    def _lock_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock = (self.data_dir / "localnet.lock").open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise LocalNetError(
                f"a local network is already running in {self.data_dir}; see "
                f"`golem-actors localnet status`, or pass another --data-dir"
            ) from None
        self._lock_file = lock

    def _spawn(self, provider: ProviderProcess) -> None:
        provider.state_dir.mkdir(parents=True, exist_ok=True)
        FaultFile(provider.state_dir / "faults.json").write(Faults())
        (provider.state_dir / "status.json").unlink(missing_ok=True)
        endpoint = self.daemons.endpoint(provider.name)  # its own node's daemon
        provider.started_ms = time.time_ns() // 1_000_000
        extra = {**provider.spec.extra_properties, AGENT_STARTED: provider.started_ms}
        config = ProviderConfig(
            spec=dataclasses.replace(provider.spec, extra_properties=extra),
            api_url=endpoint.api_url,
            app_key=endpoint.app_key,
            node_id=provider.node_id,
            gsb_url=endpoint.gsb_url,
            state_dir=str(provider.state_dir),
        )
        config_path = provider.state_dir / "config.json"
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(config.to_json(), out)
        with (provider.state_dir / "provider.log").open("ab") as log_file:
            provider.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "golem_actors.localnet.provider",
                    str(config_path),
                    "--log-level",
                    self._log_level,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),  # noqa: PLW1509 - only prctl and getppid run there
            )

    def _wait_ready(self, provider: ProviderProcess, deadline: float) -> None:
        status_path = provider.state_dir / "status.json"
        while time.monotonic() < deadline:
            if provider.process is None or provider.process.poll() is not None:
                tail = (provider.state_dir / "provider.log").read_text(errors="replace")[-2000:]
                raise LocalNetError(f"provider {provider.name} exited during start-up:\n{tail}")
            with contextlib.suppress(OSError, ValueError):
                if json.loads(status_path.read_text()).get("state") == "ready":
                    return
            time.sleep(0.02)
        raise LocalNetError(f"provider {provider.name} was not ready in time; see {status_path}")

    def _offer_watch(self) -> OfferWatch:
        config = ApiConfig(app_key=self.app_key, api_url=self.api_url)
        return OfferWatch(config, {spec.subnet for spec in self.specs})

    def _wait_offers(
        self, watch: OfferWatch, providers: dict[str, ProviderProcess], deadline: float
    ) -> float:
        """Until the requestor's node matches every one of ``providers``' offers; seconds."""
        started = time.monotonic()
        missing = watch.missing({p.node_id: p.started_ms for p in providers.values()}, deadline)
        if missing:
            names = ", ".join(sorted(p.name for p in providers.values() if p.node_id in missing))
            raise LocalNetError(
                f"the requestor's node did not see the offers of {names} in time; see their "
                f"provider.log and yagna/yagna.log under {self.data_dir / 'providers'}"
            )
        return time.monotonic() - started

    def _watch(self) -> None:
        """Keep ``localnet.json`` current and log providers and daemons that exit on their own."""
        seen: dict[str, str] = {}
        while not self._stopping.wait(0.5):
            for provider in self.providers.values():
                states = {provider.name: provider.state}
                if not self.daemons.shared:
                    states[f"{provider.name}'s yagna"] = self.daemons.node(provider.name).state
                for who, state in states.items():
                    if state.startswith("exited") and seen.get(who) != state:
                        log.warning("%s %s", who, state)
                    seen[who] = state
            with contextlib.suppress(OSError, NodeError):
                self.daemons.settle()  # also after faults from another process (the CLI)
                self.write_state()
