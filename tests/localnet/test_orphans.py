"""A localnet whose owner is killed with SIGKILL leaves no daemon or provider behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.waiting import wait_for

pytestmark = pytest.mark.yagna

OWNER = """
import json, sys, time
from pathlib import Path
from golem_actors.localnet.network import LocalNet
net = LocalNet(providers=2, data_dir=Path(sys.argv[1]), shared_daemon=sys.argv[2] == "shared")
net.start()
if sys.argv[3] == "pause":
    net.pause_daemon("provider-2")  # a frozen daemon heeds no SIGINT
pids = [*net.daemons.pids(), *(p.pid for p in net.providers.values())]
print(json.dumps(pids), flush=True)
time.sleep(300)
"""


@pytest.mark.parametrize(
    ("topology", "fault", "processes"),
    [
        ("own", "none", 5),  # the hub, two provider nodes' daemons, two agents
        ("own", "pause", 5),
        ("shared", "none", 3),  # one daemon, two agents
    ],
)
def test_killing_the_owner_stops_every_daemon_and_provider(
    tmp_path: Path, topology: str, fault: str, processes: int
) -> None:
    errors = tmp_path / "owner.stderr"
    with errors.open("w") as stderr:
        owner = subprocess.Popen(
            [sys.executable, "-c", OWNER, str(tmp_path / "net"), topology, fault],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        assert line, f"the owner failed to start its network:\n{errors.read_text()[-3000:]}"
        pids = json.loads(line)
        assert len(set(pids)) == processes
        assert all(psutil.pid_exists(pid) for pid in pids)
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)

        def all_gone() -> bool:
            return not any(
                psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                for pid in pids
            )

        wait_for("the daemons and the providers to exit", all_gone, timeout=30)
    finally:
        if owner.poll() is None:
            owner.kill()
        for pid in pids if "pids" in locals() else []:
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGKILL)
