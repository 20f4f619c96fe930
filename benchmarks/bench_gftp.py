"""GFTP's figures beside the HTTP storage's, in one run: MB/s both ways and the requestor's RSS.

    python benchmarks/bench_gftp.py [--sizes 1,100] [--rounds 2] [--daemons 2]

The requestor (this process) serves files with ``GftpStorage`` through yagna's GSB API on its
daemon A, and with ``HttpStorage`` on loopback. The provider side is localnet's exe-unit code
(``transfer`` with ``GftpTransfers``), in a child process on the native bus of its own daemon B
joined to A's hub (``--daemons 1``: on A, as localnet runs today). "down" is requestor ->
provider (``ctx.send_file``), "up" provider -> requestor (``download_file``); a transfer is timed
in the child from its first call to the file in place, its hash checked. The requestor's peak RSS
above idle is sampled every 10 ms while GFTP moves the largest file.

Targets: 100 MiB >= 15 MB/s down and >= 25 MB/s up (issue 13: localnet GFTP), >= 15 MB/s each
way with RSS peak < 64 MiB above idle (issue 14: GFTP storage). Ends with name=value pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from golem_actors.storage.gftp import GftpStorage
from golem_actors.storage.gftp_wire import sha3_file
from golem_actors.storage.http import HttpStorage, Slot, Storage
from golem_actors.yagna import ApiConfig

MIB = 1 << 20


def exeunit_side(gsb_url: str, node: str, volumes: Path) -> None:
    """The child: one JSON request per stdin line, one JSON answer per stdout line."""
    from golem_actors.localnet.gftp import GftpTransfers  # noqa: PLC0415 - child only
    from golem_actors.localnet.gsb import GsbClient  # noqa: PLC0415
    from golem_actors.localnet.transfers import TransferError, transfer  # noqa: PLC0415

    def host_path(path: str) -> Path:
        return volumes / path.removeprefix("/golem/")

    with GsbClient(gsb_url, name="bench-exeunit") as bus:
        gftp = GftpTransfers(bus, frozenset({node}))
        for line in sys.stdin:
            ask = json.loads(line)
            began = time.perf_counter()
            try:
                transfer(ask["from"], ask["to"], host_path=host_path, gftp=gftp,
                         deadline=time.monotonic() + 600, cancel=threading.Event())  # fmt: skip
                answer: dict[str, Any] = {"seconds": time.perf_counter() - began}
            except TransferError as exc:
                answer = {"error": str(exc)}
            print(json.dumps(answer), flush=True)


class Child:
    def __init__(self, gsb_url: str, node: str, volumes: Path) -> None:
        argv = [sys.executable, __file__, "--exeunit", gsb_url, node, str(volumes)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def move(self, src: str, dst: str) -> float:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"from": src, "to": dst}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline() or '{"error": "the child died"}')
        if "error" in answer:
            raise RuntimeError(f"{src} -> {dst}: {answer['error']}")
        return float(answer["seconds"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class PeakRss:
    """This process's RSS, sampled every 10 ms between ``start`` and ``stop``."""

    def __init__(self) -> None:
        self._me = psutil.Process()
        self._stop = threading.Event()
        self.peak = 0
        self._thread: threading.Thread | None = None

    def now(self) -> int:
        return int(self._me.memory_info().rss)

    def start(self) -> None:
        self._stop.clear()
        self.peak = self.now()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        return self.peak

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.now())


class CpuShares:
    """CPU seconds each process spent, per direction of the largest GFTP transfer."""

    def __init__(self, procs: dict[str, int | None]) -> None:
        self._procs = {k: psutil.Process(pid) for k, pid in procs.items() if pid}
        self.spent: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        return {k: sum(p.cpu_times()[:2]) for k, p in self._procs.items()}

    def measure(self, direction: str, work: Any) -> Any:
        before = self._now()
        result = work()
        for k, v in self._now().items():
            key = f"cpu_{direction}_{k}_s"
            self.spent[key] = self.spent.get(key, 0.0) + v - before[k]
        return result


def random_file(path: Path, size: int) -> Path:
    with path.open("wb") as out:
        for offset in range(0, size, 8 * MIB):
            out.write(os.urandom(min(8 * MIB, size - offset)))
    return path


def one_round(
    storage: Storage,
    child: Child,
    source: Path,
    volumes: Path,
    name: str,
    *,
    cpu: CpuShares | None = None,
) -> tuple[float, float, float]:
    """(publish s, down s, up s) for one file through one storage, checking what arrived."""
    began = time.perf_counter()
    url = storage.publish_file(source)
    publish = time.perf_counter() - began
    cpu = cpu or CpuShares({})
    try:
        down = cpu.measure("down", lambda: child.move(url, f"container:/golem/input/{name}"))
    finally:
        storage.release(url)
    slot: Slot = storage.upload_slot()
    try:
        up = cpu.measure("up", lambda: child.move(f"container:/golem/input/{name}", slot.url))
        with slot.path.open("rb") as got, source.open("rb") as sent:
            assert sha3_file(got) == sha3_file(sent), "the upload arrived different"
    finally:
        storage.release(slot.url)
        (volumes / "input" / name).unlink(missing_ok=True)
    return publish, down, up


def main() -> None:  # noqa: PLR0915 - one straight script
    if len(sys.argv) == 5 and sys.argv[1] == "--exeunit":
        exeunit_side(sys.argv[2], sys.argv[3], Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,100", help="file sizes in MiB, comma separated")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per size (median taken)")
    parser.add_argument("--daemons", type=int, choices=(1, 2), default=2)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    from golem_actors.localnet.node import YagnaNode  # noqa: PLC0415 - the localnet extra

    work = Path(tempfile.mkdtemp(prefix="bench-gftp-"))
    volumes = work / "volumes"
    (volumes / "input").mkdir(parents=True)
    node_a = YagnaNode(work / "a")
    hub = node_a.gsb_url
    node_b = YagnaNode(work / "b", hub_gsb_url=hub) if args.daemons == 2 else None
    rss = PeakRss()
    figures: dict[str, float] = {}
    try:
        node_a.start()
        if node_b is not None:
            node_b.start()
        provider_bus = (node_b or node_a).gsb_url
        config = ApiConfig(app_key=node_a.requestor.app_key, api_url=node_a.api_url)
        files = {size: random_file(work / f"{size}mib.bin", size * MIB) for size in sizes}
        with GftpStorage(config) as gftp, HttpStorage() as http:
            child = Child(provider_bus, gftp.node_id, volumes)
            try:
                one_round(gftp, child, files[sizes[0]], volumes, "warmup")  # imports, sockets
                idle, rounds = rss.now(), range(args.rounds)
                cpu = CpuShares(
                    {
                        "yagna_a": node_a.pid,
                        "yagna_b": node_b.pid if node_b else None,
                        "requestor": os.getpid(),
                        "exeunit": child.proc.pid,
                    }
                )
                for kind, storage in (("http", http), ("gftp", gftp)):
                    for size in sizes:
                        biggest = kind == "gftp" and size == max(sizes)
                        if biggest:
                            rss.start()
                        file = files[size]
                        share = cpu if biggest else None
                        runs = [
                            one_round(storage, child, file, volumes, f"f{i}", cpu=share)
                            for i in rounds
                        ]
                        if biggest:
                            figures["gftp_rss_peak_above_idle_mib"] = (rss.stop() - idle) / MIB
                        publish, down, up = (
                            statistics.median(r[i] for r in runs) for i in (0, 1, 2)
                        )
                        mb = size * MIB / 1e6
                        figures[f"{kind}_down_{size}mib_mbs"] = mb / down
                        figures[f"{kind}_up_{size}mib_mbs"] = mb / up
                        if kind == "gftp":
                            figures[f"gftp_publish_{size}mib_s"] = publish
                        print(
                            f"{kind:4} {size:4} MiB: down {mb / down:6.1f} MB/s, "
                            f"up {mb / up:6.1f} MB/s (publish {publish:.2f} s; median of "
                            f"{args.rounds}; load {os.getloadavg()[0]:.1f})",
                            flush=True,
                        )
            finally:
                child.close()
    finally:
        if node_b is not None:
            node_b.stop()
        node_a.stop()
        shutil.rmtree(work, ignore_errors=True)
    top = max(sizes)
    print(
        f"targets at {top} MiB: gftp down >= 15 MB/s: {figures[f'gftp_down_{top}mib_mbs']:.1f}; "
        f"up >= 25 MB/s: {figures[f'gftp_up_{top}mib_mbs']:.1f}; requestor RSS peak above idle "
        f"< 64 MiB: {figures['gftp_rss_peak_above_idle_mib']:.1f}"
    )
    spent = ", ".join(f"{k.removeprefix('cpu_')} {v:.1f}" for k, v in cpu.spent.items())
    print(f"cpu seconds while GFTP moved {top} MiB x{args.rounds} (per direction): {spent}")
    figures.update(cpu.spent)
    figures["daemons"] = args.daemons
    print(" ".join(f"{k}={v:.2f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
