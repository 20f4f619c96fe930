"""Running a stock Golem requestor (golem-js, yapapi) as a subprocess, and checking what it left.

A stock client is run exactly as a user would run it against ``golem-actors localnet up``: its
environment is the export lines ``golem-actors localnet env`` prints, nothing else of ours. The
run is bounded; a client that overruns is killed with its whole process group and the test fails
with the tail of its output. Afterwards yagna itself (the requestor's REST API) is asked whether
the client settled: activity destroyed, agreement terminated, invoice accepted.

A new stock scenario (a golem-js VPN with a TCP proxy, say) is a script beside the others
(``js/`` or ``py/``) and a test module beside these, using the same fixtures (conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from golem_actors.localnet.network import LocalNet
from golem_actors.yagna import YagnaClient
from golem_actors.yagna.models import Invoice
from tests.waiting import wait_for

STOCK = Path(__file__).resolve().parent
REPO = STOCK.parents[1]
GOLEM_ACTORS = Path(sys.executable).parent / "golem-actors"
#: what ``golem-actors localnet env`` must print, and all a stock client is told
ENV_NAMES = ("YAGNA_API_URL", "YAGNA_APPKEY", "GOLEM_REGISTRY_URL")
_TAIL = 4000


def printed_env(net: LocalNet) -> dict[str, str]:
    """The variables of the ``export K=V`` lines ``golem-actors localnet env`` prints."""
    out = subprocess.run(
        [str(GOLEM_ACTORS), "localnet", "env", "--data-dir", str(net.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    env = {}
    for line in out.splitlines():
        name, sep, value = line.removeprefix("export ").partition("=")
        if line.startswith("export ") and sep:
            env[name] = value
    assert sorted(env) == sorted(ENV_NAMES), f"`localnet env` printed {sorted(env)}"
    assert env["YAGNA_API_URL"] == net.api_url
    return env


def client_env(printed: Mapping[str, str], **extra: str) -> dict[str, str]:
    """A clean environment for the client: the printed variables, PATH, HOME, and ``extra``.

    Nothing else of the test process leaks in (no YAGNA_* of a developer's own daemon, no
    PYTHONPATH pointing at this repository).
    """
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    return {**keep, **printed, **extra}


@dataclass(frozen=True)
class StockRun:
    """What a finished stock client printed; ``report`` is its last stdout line, parsed as JSON."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def report(self) -> dict[str, Any]:
        lines = self.stdout.strip().splitlines()
        assert lines, f"the client printed nothing on stdout\n{self.describe()}"
        parsed = json.loads(lines[-1])
        assert isinstance(parsed, dict), lines[-1]
        return parsed

    def describe(self) -> str:
        return (
            f"exit {self.returncode} after {self.seconds:.1f} s\n"
            f"--- stdout (tail)\n{self.stdout[-_TAIL:]}\n--- stderr (tail)\n{self.stderr[-_TAIL:]}"
        )


def run_stock(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, timeout: float
) -> StockRun:
    """Run a stock client to its end, within ``timeout`` seconds; it must exit 0."""
    started = time.monotonic()
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group: a timeout ends its children too
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=10)
        run = StockRun(-9, stdout, stderr, time.monotonic() - started)
        raise AssertionError(f"the stock client overran {timeout:g} s\n{run.describe()}") from None
    finally:
        if process.poll() is None:  # an exception in between: never leave it running
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    run = StockRun(process.returncode, stdout, stderr, time.monotonic() - started)
    assert run.returncode == 0, run.describe()
    return run


def settled(client: YagnaClient, agreement_id: str, *, timeout: float = 30.0) -> Invoice:
    """Wait until yagna shows the agreement terminated and its one invoice accepted; return it."""
    assert client.market.get_agreement(agreement_id).state == "Terminated"
    for activity_id in client.activity.activities(agreement_id):
        assert client.activity.get_state(activity_id).current == "Terminated", activity_id

    def accepted() -> Invoice | None:
        invoices = [i for i in client.payment.invoices() if i.agreement_id == agreement_id]
        assert len(invoices) <= 1, invoices
        return invoices[0] if invoices and invoices[0].status == "ACCEPTED" else None

    invoice = wait_for(f"the invoice of agreement {agreement_id} accepted", accepted, timeout)
    assert invoice.amount > 0
    return invoice
