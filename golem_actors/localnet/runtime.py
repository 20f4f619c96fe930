"""An activity's runtime: its state machine and the commands it runs, in a bubblewrap sandbox.

What ``ya-runtime-vm`` plus the exe-unit's supervisor are to a real provider. The state machine
is the real exe-unit's (``exe-unit/src/exe_unit.rs``): ``deploy`` only when Initialized, ``start``
only when Deployed, everything else once Ready, one stateful command at a time (another gets
``Busy``), and ``terminate`` stops the other batches and returns to Initialized. Unlike the real
one, a failed command leaves the state where it was (a failed deploy can be retried), and only
the deploy/start transitions and stable states are reported to yagna, not a round trip per run.

``deploy`` makes the sandbox (volumes, image); ``start`` starts its container, the running
machine a VM is on the real network: processes one ``run`` starts in the background keep running
beside later commands until ``terminate`` (or the activity's end) stops the container. Transfers
run in the provider with the container paused, so nothing in it can swap a path while the
provider resolves and opens it.

A deploy naming VPN networks (``net``, and ``hosts``) opens the activity's links on the bus
first (``networks``, from the exe-unit), then gives its sandbox an ``/etc/hosts`` and a hook
that puts the VPN's interfaces into each container it starts; the links close with the activity.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from golem_actors.errors import GolemActorsError
from golem_actors.images.gvmi import GvmiError
from golem_actors.localnet.batches import Batch, CommandState, StreamedOutput, format_output
from golem_actors.localnet.bwrap import HOSTNAME, OnOutput
from golem_actors.localnet.constraints import flatten_properties
from golem_actors.localnet.gftp import GftpTransfers
from golem_actors.localnet.images import ImageError, image_config
from golem_actors.localnet.sandbox import (
    Limits,
    RunResult,
    Sandbox,
    SandboxError,
    SandboxNetwork,
)
from golem_actors.localnet.transfers import TransferError, transfer
from golem_actors.localnet.vpn import NetSpec, VpnError, hosts_file, parse_hosts, parse_networks
from golem_actors.yagna.models import Agreement

__all__ = [
    "TASK_PACKAGE",
    "ActivityRuntime",
    "NetworkFactory",
    "NetworkLike",
    "RuntimeSettings",
    "SandboxLike",
    "bwrap_sandbox",
    "limits_of",
]

log = logging.getLogger(__name__)

TASK_PACKAGE = "golem.srv.comp.task_package"
DEFAULT_CWD = "/golem/work"  # a tarball image's, or the host's; a GVMI's is its WorkingDir or /
_STATEFUL = ("deploy", "start", "run", "transfer")
_HINTS = {
    "Initialized": "deploy it first",
    "Deployed": "start it first",
    "Ready": "it is deployed and started already",
}
_ATEND = {"atEnd": {"format": "str"}}  # without a capture spec the whole output is kept
_DEFAULT_CAPTURE = {"stdout": _ATEND, "stderr": _ATEND}


class SandboxLike(Protocol):
    """What the runtime uses of ``sandbox.Sandbox`` (tests substitute a fake)."""

    def host_path(self, container_path: str) -> Path: ...
    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cwd: str = "/golem/work",
        on_output: OnOutput | None = None,
    ) -> RunResult: ...
    def cancel(self) -> None: ...
    def start(self) -> bool: ...
    def stop(self) -> None: ...
    def paused(self) -> contextlib.AbstractContextManager[None]: ...
    @property
    def cpu_seconds(self) -> float: ...
    def destroy(self) -> None: ...


class SandboxFactory(Protocol):
    def __call__(
        self,
        activity_dir: Path,
        rootfs: Path | None,
        limits: Limits,
        env: Mapping[str, str] | None,
        volumes: Sequence[str] | None,
        /,
        *,
        network: SandboxNetwork | None = None,
    ) -> SandboxLike: ...


class NetworkLike(Protocol):
    """An activity's VPN links (``vpnlink.ActivityNetwork``): a container hook, closed last."""

    def attach(self, pidfd: int) -> None: ...
    def detach(self) -> None: ...
    def close(self) -> None: ...


#: Opens the links of a deploy's networks on the bus; raises ``VpnError`` if it cannot.
NetworkFactory = Callable[[Sequence[NetSpec]], NetworkLike]


def bwrap_sandbox(
    activity_dir: Path,
    rootfs: Path | None,
    limits: Limits,
    env: Mapping[str, str] | None,
    volumes: Sequence[str] | None,
    *,
    network: SandboxNetwork | None = None,
) -> SandboxLike:
    return Sandbox(
        activity_dir, rootfs=rootfs, limits=limits, env=env, volumes=volumes, network=network
    )


@dataclass(frozen=True)
class RuntimeSettings:
    """Per provider: where activity volumes live, how images resolve, the command time limit."""

    activities_dir: Path
    resolve_image: Callable[[str | None], Path | None]  # task_package -> rootfs (None: host)
    command_timeout: float = 600.0
    make_sandbox: SandboxFactory = bwrap_sandbox


def _positive(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    return float(value) if ok else None


def limits_of(agreement: Agreement) -> Limits:
    """The offer's resources, as far as the sandbox can enforce them."""
    offer = flatten_properties(agreement.offer.properties)
    threads = _positive(offer.get("golem.inf.cpu.threads"))
    mem = _positive(offer.get("golem.inf.mem.gib"))
    storage = _positive(offer.get("golem.inf.storage.gib"))
    return Limits(
        cpu_threads=int(threads) if threads else None,
        mem_bytes=int(mem * 2**30) if mem else None,
        file_size_bytes=int(storage * 2**30) if storage else None,
    )


class CommandError(GolemActorsError):
    """A command failed; ``message`` is its result message, ``code`` its return code."""

    def __init__(self, message: str, code: int = -1) -> None:
        super().__init__(message)
        self.message, self.code = message, code


class ActivityRuntime:
    """One activity's state and sandbox; ``execute`` runs a command from a batch thread."""

    def __init__(
        self,
        activity_dir: Path,
        agreement: Agreement,
        settings: RuntimeSettings,
        *,
        report_state: Callable[[str, str | None], None],
        abort_others: Callable[[Batch], None],
        stopping: threading.Event,
        command_timeout: float,
        gftp: GftpTransfers | None = None,
        networks: NetworkFactory | None = None,
    ) -> None:
        self.dir = activity_dir
        self._gftp = gftp
        self._networks = networks
        self._network: NetworkLike | None = None
        demand = flatten_properties(agreement.demand.properties)
        self.task_package: str | None = demand.get(TASK_PACKAGE)
        self.command_timeout = command_timeout
        self._limits = limits_of(agreement)
        self._settings = settings
        self._report_state, self._abort_others = report_state, abort_others
        self._stopping = stopping
        self._lock = threading.Lock()
        self._state: tuple[str, str | None] = ("Initialized", None)
        self._sandbox: SandboxLike | None = None
        self._cwd = DEFAULT_CWD

    @property
    def state(self) -> tuple[str, str | None]:
        return self._state

    def cpu_seconds(self) -> float:
        sandbox = self._sandbox
        return sandbox.cpu_seconds if sandbox is not None else 0.0

    def cancel(self) -> None:
        """Kill whatever runs in the sandbox now and stop its container (terminate, stop,
        crash): the processes left in the background die with it."""
        if self._sandbox is not None:
            self._sandbox.cancel()
            try:
                self._sandbox.stop()
            except SandboxError as exc:
                log.warning("stopping the container in %s failed: %s", self.dir, exc)

    def leave_network(self) -> None:
        """Close the activity's VPN links (it ends, or crashed)."""
        network, self._network = self._network, None
        if network is not None:
            network.close()

    def destroy(self) -> None:
        """Remove the sandbox and its volumes (the activity is gone)."""
        self.leave_network()
        try:
            if self._sandbox is not None:
                self._sandbox.destroy()
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
        except (SandboxError, OSError) as exc:
            log.warning("removing the sandbox in %s failed: %s", self.dir, exc)

    def execute(self, batch: Batch, index: int, command: Any) -> tuple[CommandState, int]:
        """Run command ``index`` of ``batch``; never raises. Its result and return code."""
        captured: dict[str, Any] = {}
        try:
            self._dispatch(batch, index, command, captured)
        except CommandError as exc:
            return CommandState(ok=False, message=exc.message, **captured), exc.code
        except Exception as exc:  # a bug or an OS failure still ends the command with a result
            log.exception("command %d of batch %s failed unexpectedly", index, batch.batch_id)
            message = f"internal error in the localnet exe-unit: {exc!r}"
            return CommandState(ok=False, message=message, **captured), -1
        return CommandState(ok=True, **captured), 0

    def _dispatch(self, batch: Batch, index: int, command: Any, captured: dict[str, Any]) -> None:
        if not isinstance(command, dict) or len(command) != 1:
            raise CommandError(f"malformed ExeScript command: {command!r}")
        name, body = next(iter(command.items()))
        if name == "terminate":
            self._terminate(batch)
        elif name in _STATEFUL:
            self._stateful(batch, index, name, body or {}, captured)
        else:
            raise CommandError(f"ExeScript command {name!r} is not supported by localnet")

    def _stateful(
        self, batch: Batch, index: int, name: str, body: dict[str, Any], captured: dict[str, Any]
    ) -> None:
        current, target = self._enter(name)
        ok = False
        try:
            if name == "deploy":
                self._deploy(body)
            elif name == "start":
                self._start()
            elif name == "run":
                self._run(batch, index, body, captured)
            elif name == "transfer":
                self._transfer(body)
            ok = True
        finally:
            with self._lock:
                unchanged = self._state == (current, target)
                if unchanged:
                    self._state = (target if ok else current, None)
        if not unchanged:
            raise CommandError(f"Unexpected state: the activity was terminated during {name}")
        if target != current:
            self._report_state(target if ok else current, None)

    def _enter(self, name: str) -> tuple[str, str]:
        with self._lock:
            current, pending = self._state
            if pending is not None:
                raise CommandError(f"Busy: StatePair({current}, {pending})")
            if current == "Initialized":
                target = "Deployed" if name == "deploy" else None
            elif current == "Deployed":
                target = "Ready" if name == "start" else None
            else:
                target = None if name in ("deploy", "start") else current
            if target is None:
                hint = _HINTS.get(current, "")
                raise CommandError(f"Invalid state: StatePair({current}, None): {name}: {hint}")
            self._state = (current, target)
        if target != current:
            self._report_state(current, target)
        return current, target

    def _deploy(self, body: dict[str, Any]) -> None:
        deploy_env = body.get("env") or {}
        if not isinstance(deploy_env, dict):
            raise CommandError(f"deploy: env must be an object, got {deploy_env!r}")
        try:
            rootfs = self._settings.resolve_image(self.task_package)
            # A GVMI's config applies as in the VM runtime: Env for every process (the deploy's
            # env on top), WorkingDir (or /) as every command's directory, its own Volumes.
            config = image_config(rootfs) if rootfs is not None else None
            if self._sandbox is None:
                env = {**(config.env_map if config else {}), **deploy_env} or None
                volumes = config.volumes if config else None
                network = self._network_of(body)
                self._sandbox = self._settings.make_sandbox(
                    self.dir, rootfs, self._limits, env, volumes, network=network
                )
                self._cwd = (config.working_dir or "/") if config else DEFAULT_CWD
        except VpnError as exc:
            self.leave_network()
            raise CommandError(f"deploy: {exc}") from exc
        except (ImageError, GvmiError, SandboxError, OSError) as exc:
            self.leave_network()
            raise CommandError(f"deploy failed: {exc}") from exc
        log.info("deployed %s in %s", self.task_package or "the host image", self.dir)

    def _network_of(self, body: dict[str, Any]) -> SandboxNetwork | None:
        """The deploy's networks opened on the bus, and its hosts as the container's file."""
        specs, hosts = parse_networks(body.get("net")), parse_hosts(body.get("hosts"))
        if not specs and not hosts:
            return None
        if specs and self._networks is None:
            raise VpnError("this provider cannot join VPN networks (no vpn capability)")
        self.dir.mkdir(parents=True, exist_ok=True)
        etc_hosts = self.dir / "etc-hosts"  # outside the volumes: the container cannot reach it
        etc_hosts.write_text(hosts_file(hosts, HOSTNAME))
        if specs and self._networks is not None:
            self._network = self._networks(specs)
        return SandboxNetwork(hook=self._network, etc_hosts=etc_hosts)

    def _start(self) -> None:
        try:
            persistent = self._sandboxed().start()
        except SandboxError as exc:
            raise CommandError(f"start failed: {exc}") from exc
        if self._network is not None and not persistent:
            raise CommandError("start failed: a VPN needs the activity's container (python3)")
        how = "in its container" if persistent else "each in a sandbox of its own"
        log.info("started %s: commands run %s", self.dir.name, how)

    def _run(
        self, batch: Batch, index: int, body: dict[str, Any], captured: dict[str, Any]
    ) -> None:
        entry_point, args = body.get("entry_point"), body.get("args") or []
        if not isinstance(entry_point, str) or not all(isinstance(a, str) for a in args):
            raise CommandError(f"run needs an entry_point and string args, got {body!r}")
        capture = body.get("capture") or _DEFAULT_CAPTURE
        streams = {
            name: out
            for name in ("stdout", "stderr")
            if (out := StreamedOutput.of(capture.get(name))) is not None
        }

        def printed(name: str, data: bytes, *, final: bool = False) -> None:
            """A stream capture sends what the command prints as it prints it."""
            out = streams.get(name)
            if out is not None and (value := out.chunk(data, final=final)) is not None:
                batch.output(index, name, value)

        try:
            result = self._sandboxed().run(
                [entry_point, *args],
                timeout=self.command_timeout,
                cwd=self._cwd,
                on_output=printed if streams else None,
            )
        except SandboxError as exc:
            raise CommandError(f"run failed: {exc}") from exc
        for name in streams:
            printed(name, b"", final=True)  # what an incomplete character held back
        for stream, data in (("stdout", result.stdout), ("stderr", result.stderr)):
            spec = capture.get(stream)  # a capture without this stream discards it
            captured[stream] = format_output(spec, data)[0] if spec else None
        if result.timed_out:
            limit = f"{self.command_timeout:g} s"
            raise CommandError(f"command timed out after {limit} (this provider's limit)")
        if self._stopping.is_set() or batch.aborted:
            raise CommandError("command interrupted: the activity was terminated")
        if result.exit_code != 0:
            code = result.exit_code
            raise CommandError(f"ExeScript command exited with code {code}", code)

    def _transfer(self, body: dict[str, Any]) -> None:
        sandbox = self._sandboxed()
        try:
            with sandbox.paused():  # host_path's answer holds only while nothing runs
                transfer(
                    str(body.get("from")),
                    str(body.get("to")),
                    host_path=sandbox.host_path,
                    deadline=time.monotonic() + self.command_timeout,
                    cancel=self._stopping,
                    fmt=body.get("format"),
                    gftp=self._gftp,
                )
        except TransferError as exc:
            raise CommandError(str(exc)) from exc
        except SandboxError as exc:
            raise CommandError(f"transfer failed: {exc}") from exc

    def _terminate(self, batch: Batch) -> None:
        """Stop every other batch and the container with its processes; back to Initialized."""
        with self._lock:
            self._state = ("Initialized", None)
        self._abort_others(batch)
        self.cancel()
        self._report_state("Initialized", None)

    def _sandboxed(self) -> SandboxLike:
        if self._sandbox is None:
            raise CommandError("the activity has no sandbox; deploy it first")
        return self._sandbox
