"""The localnet exe-unit: one per activity, inside the provider process, on its GSB connection.

It serves ``/public/exeunit/<activity>`` the way yagna's own exe-unit does (one registration;
the router's prefix lookup brings ``Exec``, ``GetExecBatchResults``, ``StreamExecBatchResults``,
``GetRunningCommand``, ``GetState`` and ``GetUsage``), so a stock requestor cannot tell it from a
real provider. ``Exec`` answers at once and runs the batch on its own thread through the
activity's ``ActivityRuntime`` (state machine, sandbox, commands); result polls wait on the
batch (true long-polls: many in flight, answered out of order from the GSB client's handler pool).

A deploy with VPN networks opens the activity's links on the same bus (``vpnlink.py``), if the
agreed offer has the ``vpn`` capability, as yagna's exe-unit requires.

Fault knobs (read on every use): ``hang`` holds calls and commands, ``exec_delay`` slows each
command, ``crash_exeunit_at_command`` kills the sandbox, leaves the bus and stops usage reports
(``alive`` turns False) when that command starts; ``crash_at="exec"`` kills the whole provider.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from golem_actors.localnet import gsb as gsblib
from golem_actors.localnet.batches import Batch
from golem_actors.localnet.constraints import flatten_properties
from golem_actors.localnet.faults import Faults
from golem_actors.localnet.gftp import GftpTransfers
from golem_actors.localnet.runtime import ActivityRuntime, RuntimeSettings
from golem_actors.localnet.vpn import NetSpec
from golem_actors.localnet.vpnlink import ActivityNetwork
from golem_actors.yagna.models import Agreement

__all__ = ["CAPABILITIES", "TIMEOUT_PROPERTY", "ExeUnit", "RuntimeSettings", "exeunit_factory"]

log = logging.getLogger(__name__)

#: A demand may lower (never raise) the provider's per-command time limit; localnet only.
TIMEOUT_PROPERTY = "localnet.exeunit.command-timeout-sec"
CAPABILITIES = "golem.runtime.capabilities"
HANG_LIMIT = 120.0  # a call held by ``hang`` is answered at last (long after its caller gave up)
MAX_POLL = 600.0  # the longest results long-poll served
MAX_BATCHES = 1000  # finished batches kept per activity for late result polls
JOIN_TIMEOUT = 5.0


def exeunit_factory(
    settings: RuntimeSettings,
) -> Callable[[str, Agreement, gsblib.GsbClient, Callable[[], Faults]], ExeUnit]:
    """The provider's ``ExeUnitFactory``."""

    def make(
        activity_id: str, agreement: Agreement, gsb: gsblib.GsbClient, faults: Callable[[], Faults]
    ) -> ExeUnit:
        return ExeUnit(activity_id, agreement, gsb, faults, settings)

    return make


def _command_state(command: Any) -> dict[str, Any]:
    """``ExeScriptCommandState`` of a running command (``params`` only where meaningful)."""
    if not isinstance(command, Mapping) or not command:
        return {"command": "unknown"}
    name, body = next(iter(command.items()))
    state: dict[str, Any] = {"command": str(name)}
    if not isinstance(body, Mapping):
        return state
    if name == "run":
        state["params"] = [body.get("entry_point", ""), *body.get("args", [])]
    elif name == "transfer":
        state["params"] = [body.get("from", ""), body.get("to", "")]
    return state


class ExeUnit:
    """One activity's exe-unit. ``start()`` joins the bus, ``stop()`` cleans everything up."""

    def __init__(
        self,
        activity_id: str,
        agreement: Agreement,
        gsb: gsblib.GsbClient,
        faults: Callable[[], Faults],
        settings: RuntimeSettings,
    ) -> None:
        self.activity_id = activity_id
        self.address = f"/public/exeunit/{activity_id}"
        self._gsb, self._faults = gsb, faults
        asked = flatten_properties(agreement.demand.properties).get(TIMEOUT_PROPERTY)
        limit = settings.command_timeout
        if isinstance(asked, int | float) and not isinstance(asked, bool) and asked > 0:
            limit = min(limit, float(asked))
        self._provider_id = agreement.provider_id or ""
        capabilities = flatten_properties(agreement.offer.properties).get(CAPABILITIES) or ()
        self._lock = threading.Lock()
        self._batches: dict[str, Batch] = {}
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()  # stop() or a crash: wakes every wait
        self.runtime = ActivityRuntime(
            settings.activities_dir / activity_id,
            agreement,
            settings,
            report_state=self._report_state,
            abort_others=self._abort_others,
            stopping=self._stopping,
            command_timeout=limit,
            # GFTP only to and from the requestor: a call to a node that is not connected
            # would never return and would wedge the hub (see localnet.gftp).
            gftp=GftpTransfers(gsb, frozenset(filter(None, [agreement.requestor_id]))),
            networks=self._open_networks if "vpn" in capabilities else None,
        )
        self._crashed: str | None = None
        self._closed = False
        self._started = time.monotonic()

    # -- what the provider uses -------------------------------------------------------------

    def start(self) -> None:
        self._gsb.register(self.address, self.handle)

    @property
    def alive(self) -> bool:
        """False once crashed: the provider then stops reporting usage, as for a dead process."""
        return self._crashed is None

    def cpu_seconds(self) -> float:
        return self.runtime.cpu_seconds()

    def stop(self) -> None:
        """Cancel running commands, leave the bus, wait for the batch threads, remove volumes."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._halt()
        if self._crashed is None:
            self._unregister()
        deadline = time.monotonic() + JOIN_TIMEOUT
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.runtime.destroy()

    def _halt(self) -> None:
        self._stopping.set()
        with self._lock:
            batches = list(self._batches.values())
        for batch in batches:
            batch.aborted = True
            batch.wake()
        self.runtime.cancel()

    def _unregister(self) -> None:
        with contextlib.suppress(gsblib.GsbError):
            self._gsb.unregister(self.address, timeout=2.0)

    def _crash(self, index: int) -> None:
        self._crashed = f"the exe-unit crashed at command {index} (fault injected)"
        log.warning("exe-unit %s: %s", self.activity_id, self._crashed)
        self._unregister()  # off the bus first, as a dead process: pollers woken next find no one
        self._halt()
        self.runtime.leave_network()

    def _open_networks(self, specs: Sequence[NetSpec]) -> ActivityNetwork:
        network = ActivityNetwork(specs, self._gsb, self._provider_id)
        network.open()
        log.info("exe-unit %s: in VPN %s", self.activity_id,
                 ", ".join(f"{s.network_id} as {s.node_ip}" for s in specs))  # fmt: skip
        return network

    # -- GSB --------------------------------------------------------------------------------

    def handle(self, call: gsblib.IncomingCall) -> Any:
        """Serve one call on ``/public/exeunit/<activity>/<Method>`` (from the GSB pool)."""
        self._hold_while_hung()
        body = call.body if isinstance(call.body, dict) else {}
        activity_id = body.get("activityId", body.get("activity_id", self.activity_id))
        if activity_id != self.activity_id:
            raise gsblib.ReplyError({"service": f"Forbidden! Invalid activity id: {activity_id}"})
        method = call.address.rpartition("/")[2]
        if method == "Exec":
            return self._exec(body)
        if method == "GetExecBatchResults":
            return self._results(body)
        if method == "StreamExecBatchResults":
            return self._stream(self._batch(body.get("batch_id"), stream=True))
        if method == "GetRunningCommand":
            return self._running()
        if method == "GetState":
            state = list(self.runtime.state)
            return gsblib.ok({"state": state, "reason": None, "errorMessage": None})
        if method == "GetUsage":
            usage = [time.monotonic() - self._started, self.cpu_seconds()]
            return gsblib.ok({"currentUsage": usage, "timestamp": int(time.time())})
        raise gsblib.ReplyError({"badRequest": f"unknown exe-unit method {method!r}"})

    def _hold_while_hung(self) -> None:
        """A hung provider answers nothing: hold the call (bounded) like a frozen process."""
        deadline = time.monotonic() + HANG_LIMIT
        while self._faults().hang and time.monotonic() < deadline:
            if self._stopping.wait(0.1):
                break

    def _exec(self, body: dict[str, Any]) -> Any:
        if self._faults().crash_at == "exec":
            log.warning("exe-unit %s: crashing the provider at exec (fault)", self.activity_id)
            os._exit(137)
        script, batch_id = body.get("exeScript"), str(body.get("batchId", ""))
        if not isinstance(script, list) or not batch_id:
            raise gsblib.ReplyError({"badRequest": "Exec needs a batchId and an exeScript list"})
        batch = Batch(batch_id, script)
        with self._lock:
            if batch_id in self._batches:
                raise gsblib.ReplyError({"badRequest": f"Batch {batch_id} already exists"})
            if self._stopping.is_set():
                raise gsblib.ReplyError({"activity": self._crashed or "the activity is stopping"})
            self._batches[batch_id] = batch
            self._forget_old_batches()
            thread = threading.Thread(
                target=self._run_batch, args=(batch,), name=f"exeunit-{batch_id[:8]}", daemon=True
            )
            self._threads.add(thread)
        thread.start()
        return gsblib.ok(batch_id)

    def _forget_old_batches(self) -> None:
        for old_id in list(self._batches)[: max(0, len(self._batches) - MAX_BATCHES)]:
            if self._batches[old_id].finished:
                del self._batches[old_id]

    def _batch(self, batch_id: Any, *, stream: bool = False) -> Batch:
        with self._lock:
            batch = self._batches.get(str(batch_id))
        if batch is None:
            error = {"badRequest": f"Unknown batch: {batch_id}"}
            raise gsblib.ReplyError(error if stream else {"notFound": f"batch_id = {batch_id}"})
        return batch

    def _results(self, body: dict[str, Any]) -> Any:
        batch = self._batch(body.get("batchId"))
        index = body.get("commandIndex")
        try:
            batch.check_index(index)
        except IndexError as exc:
            raise gsblib.ReplyError({"badRequest": str(exc)}) from None
        timeout = min(float(body.get("timeout") or 0.0), MAX_POLL)
        done = batch.wait(index, timeout, self._stopping)
        if self._crashed is not None:
            raise gsblib.ReplyError({"activity": self._crashed})
        if not done and index is not None:
            raise gsblib.ReplyError("timeout")
        return gsblib.ok(batch.results(index))

    def _stream(self, batch: Batch) -> gsblib.Streamed:
        def chunks() -> Any:
            seen = 0
            limit = self.runtime.command_timeout * len(batch.script) + 60.0
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline:
                events, ended = batch.events_after(seen, 1.0, self._stopping)
                seen += len(events)
                yield from (gsblib.ok(event) for event in events)
                if ended or self._stopping.is_set():
                    return

        return gsblib.Streamed(chunks())

    def _running(self) -> Any:
        with self._lock:
            batches = list(self._batches.values())
        running = [
            _command_state(batch.script[index])
            for batch in batches
            if (index := batch.running) is not None
        ]
        if not running:
            message = f"No running command within activity: {self.activity_id}"
            raise gsblib.ReplyError({"notFound": message})
        return gsblib.ok(running)

    # -- the batch worker -------------------------------------------------------------------

    def _run_batch(self, batch: Batch) -> None:
        try:
            for index, command in enumerate(batch.script):
                self._hold_while_hung()
                faults = self._faults()
                if faults.exec_delay:
                    self._stopping.wait(faults.exec_delay)
                if batch.aborted or self._stopping.is_set():
                    break
                if faults.crash_exeunit_at_command == index:
                    self._crash(index)
                    break
                batch.started(index)
                state, code = self.runtime.execute(batch, index, command)
                batch.finish(index, state, code)
                if not state.ok:
                    log.info("exe-unit %s: batch %s command %d failed: %s",
                             self.activity_id, batch.batch_id, index, state.message)  # fmt: skip
                    break
        except Exception:
            log.exception("exe-unit %s: batch %s failed", self.activity_id, batch.batch_id)
        finally:
            batch.end()
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _abort_others(self, batch: Batch) -> None:
        """``terminate``: every other unfinished batch stops after its current command."""
        with self._lock:
            others = [b for b in self._batches.values() if b is not batch and not b.finished]
        for other in others:
            other.aborted = True

    def _report_state(self, state: str, pending: str | None) -> None:
        body = {
            "activityId": self.activity_id,
            "state": {"state": [state, pending]},
            "timeout": None,
            "credentials": None,
        }
        try:
            self._gsb.call("/local/activity/SetActivityState", body, timeout=5.0)
        except gsblib.GsbError as exc:
            log.warning("exe-unit %s: reporting state %s failed: %s", self.activity_id, state, exc)
