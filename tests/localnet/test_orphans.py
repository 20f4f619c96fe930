"""A localnet whose owner is killed with SIGKILL does not leave yagna or providers behind."""

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
net = LocalNet(providers=1, data_dir=Path(sys.argv[1]))
net.start()
pids = [net.node.pid, *(p.pid for p in net.providers.values())]
print(json.dumps(pids), flush=True)
time.sleep(300)
"""


def test_killing_the_owner_stops_yagna_and_the_providers(tmp_path: Path) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        pids = json.loads(owner.stdout.readline())
        assert len(pids) == 2
        assert all(psutil.pid_exists(pid) for pid in pids)
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)

        def all_gone() -> bool:
            return not any(
                psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                for pid in pids
            )

        wait_for("yagna and the provider to exit", all_gone, timeout=30)
    finally:
        if owner.poll() is None:
            owner.kill()
        for pid in pids if "pids" in locals() else []:
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGKILL)
