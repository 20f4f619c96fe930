"""GFTP through the real yagna: ``GftpStorage`` publishes and receives through yagna's GSB API on
the requestor's daemon, localnet's exe-unit code (``transfer`` with ``GftpTransfers``) moves the
bytes over the native bus of its own daemon, the way a provider on another node does.

Two daemons as on the real network (B joined to A's hub), and one daemon as localnet runs today:
GFTP works in both (within one daemon the call to ``/net/<requestor>`` loops back through the
daemon's own central-net hub to its GSB-API service).
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from golem_actors.localnet.gftp import GftpTransfers
from golem_actors.localnet.gsb import GsbClient
from golem_actors.localnet.node import YagnaNode
from golem_actors.localnet.transfers import TransferError, transfer
from golem_actors.storage.gftp import GftpStorage
from golem_actors.storage.gftp_wire import parse_hashed
from golem_actors.yagna import ApiConfig
from tests.conftest import RealYagna
from tests.waiting import wait_for

pytestmark = pytest.mark.yagna

MIB = 1 << 20


@pytest.fixture
def storage(real_yagna: RealYagna) -> Iterator[GftpStorage]:
    config = ApiConfig(app_key=real_yagna.requestor_id.app_key, api_url=real_yagna.node.api_url)
    with GftpStorage(config, stall_timeout=2.0) as gftp:
        yield gftp


@pytest.fixture(scope="module")
def node_b(real_yagna: RealYagna, tmp_path_factory: pytest.TempPathFactory) -> Iterator[YagnaNode]:
    """A provider's own daemon, joined to the requestor's daemon as its hub."""
    node = YagnaNode(tmp_path_factory.mktemp("yagna-b"), hub_gsb_url=real_yagna.node.gsb_url)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(params=["two daemons", "one daemon"])
def bus(request: pytest.FixtureRequest, real_yagna: RealYagna) -> Iterator[GsbClient]:
    """The exe-unit's bus connection: to its own daemon B, or to the requestor's own."""
    node = request.getfixturevalue("node_b") if request.param == "two daemons" else real_yagna.node
    with GsbClient(node.gsb_url, name="test-exeunit") as client:
        yield client


class Volumes:
    """``/golem/<x>`` -> a directory: the exe-unit's view of an activity's volumes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def host_path(self, container_path: str) -> Path:
        return self.root / container_path.removeprefix("/golem/")

    def move(self, src: str, dst: str, gftp: GftpTransfers, *, limit: float = 120.0) -> None:
        transfer(src, dst, host_path=self.host_path, deadline=time.monotonic() + limit,
                 cancel=threading.Event(), gftp=gftp)  # fmt: skip


def exeunit(storage: GftpStorage, bus: GsbClient, **options: Any) -> GftpTransfers:
    return GftpTransfers(bus, frozenset({storage.node_id}), **options)


def random_file(path: Path, size: int) -> Path:
    with path.open("wb") as out:
        for _ in range(0, size, 8 * MIB):
            out.write(os.urandom(min(8 * MIB, size - out.tell())))
    return path


def same_file(a: Path, b: Path) -> bool:
    with a.open("rb") as fa, b.open("rb") as fb:
        return (
            hashlib.file_digest(fa, "sha3_256").digest()
            == hashlib.file_digest(fb, "sha3_256").digest()
        )


def test_bytes_both_ways(storage: GftpStorage, bus: GsbClient, tmp_path: Path) -> None:
    volumes, g = Volumes(tmp_path), exeunit(storage, bus)
    url = storage.publish_bytes(b"hello over gftp")
    assert parse_hashed(url).digest == hashlib.sha3_256(b"hello over gftp").digest()
    volumes.move(url, "container:/golem/input/hello.txt", g)
    assert (tmp_path / "input" / "hello.txt").read_bytes() == b"hello over gftp"
    slot = storage.upload_slot()
    assert slot.url.startswith(f"gftp://{storage.node_id}/")
    volumes.move("container:/golem/input/hello.txt", slot.url, g)
    assert slot.path.read_bytes() == b"hello over gftp"
    storage.release(url)
    storage.release(slot.url)
    assert not slot.path.exists()
    empty = storage.publish_bytes(b"")
    volumes.move(empty, "container:/golem/input/empty", g)
    assert (tmp_path / "input" / "empty").read_bytes() == b""


@pytest.mark.parametrize("bus", ["two daemons"], indirect=True)
def test_100_mib_both_ways_across_two_daemons(
    storage: GftpStorage, bus: GsbClient, tmp_path: Path
) -> None:
    volumes, g = Volumes(tmp_path), exeunit(storage, bus)
    source = random_file(tmp_path / "big.bin", 100 * MIB)
    url = storage.publish_file(source)
    volumes.move(url, "container:/golem/input/", g)
    arrived = tmp_path / "input" / url.rsplit("/", 1)[-1]
    assert same_file(source, arrived)
    slot = storage.upload_slot()
    volumes.move(f"container:/golem/input/{arrived.name}", slot.url, g)
    assert same_file(source, slot.path)
    assert not list(slot.path.parent.glob(".*.part"))  # the temporary file was renamed


def test_a_missing_file_is_named(storage: GftpStorage, bus: GsbClient, tmp_path: Path) -> None:
    url = f"gftp://{storage.node_id}/no-such-file"
    with pytest.raises(TransferError, match="no such file is published"):
        Volumes(tmp_path).move(url, "container:/golem/input/x", exeunit(storage, bus))
    assert not (tmp_path / "input" / "x").exists()


def test_a_changed_file_fails_the_hash_check(
    storage: GftpStorage, bus: GsbClient, tmp_path: Path
) -> None:
    source = random_file(tmp_path / "f.bin", 300_000)
    url = storage.publish_file(source)
    with source.open("r+b") as f:  # same size, other content: the publication's hash no longer fits
        f.write(b"tampered")
    with pytest.raises(TransferError, match="hash mismatch"):
        Volumes(tmp_path).move(url, "container:/golem/input/f.bin", exeunit(storage, bus))
    assert not (tmp_path / "input" / "f.bin").exists()
    assert not list((tmp_path / "input").glob(".*part"))


def test_an_upload_with_a_wrong_hash_is_refused_and_never_appears(
    storage: GftpStorage, bus: GsbClient
) -> None:
    slot = storage.upload_slot()
    base = f"/net/{storage.node_id}/gftp/{slot.url.rsplit('/', 1)[-1]}"
    chunk = {"chunk": {"offset": 0, "content": b"payload"}}
    assert bus.call(f"{base}/UploadChunk", chunk, timeout=10) == {"Ok": None}
    reply = bus.call(f"{base}/UploadFinished", {"hash": "00" * 32}, timeout=10)
    assert reply == {"Err": "IntegrityError"}
    assert not slot.path.exists()
    # The sender may try again at the same URL; the right hash then lands the file.
    assert bus.call(f"{base}/UploadChunk", chunk, timeout=10) == {"Ok": None}
    good = hashlib.sha3_256(b"payload").hexdigest()
    assert bus.call(f"{base}/UploadFinished", {"hash": good}, timeout=10) == {"Ok": None}
    assert slot.path.read_bytes() == b"payload"


def test_a_stalled_upload_is_abandoned(storage: GftpStorage, bus: GsbClient) -> None:
    slot = storage.upload_slot()  # stall_timeout=2 s
    base = f"/net/{storage.node_id}/gftp/{slot.url.rsplit('/', 1)[-1]}"
    chunk = {"chunk": {"offset": 0, "content": b"first"}}
    assert bus.call(f"{base}/UploadChunk", chunk, timeout=10) == {"Ok": None}
    partial = slot.path.with_name(f".{slot.path.name}.part")
    assert partial.exists()
    wait_for("the stalled upload abandoned", lambda: not partial.exists(), timeout=15)
    reply = bus.call(f"{base}/UploadChunk", chunk, timeout=10)
    assert reply == {"Err": {"WriteError": "no chunk arrived for 2 s"}}
    assert not slot.path.exists()


PUBLISHER = """
import sys, time
from pathlib import Path
from golem_actors.storage.gftp import GftpStorage
from golem_actors.yagna import ApiConfig
storage = GftpStorage(ApiConfig(app_key=sys.argv[1], api_url=sys.argv[2]))
print(storage.publish_file(Path(sys.argv[3])), flush=True)
time.sleep(300)
"""


def test_a_publisher_that_vanishes_mid_transfer(
    real_yagna: RealYagna, bus: GsbClient, tmp_path: Path
) -> None:
    """The requestor process dies (no unbind, TCP just drops): the calls in flight are never
    answered by yagna; the per-call timeout ends the transfer and leaves no partial file."""
    source = random_file(tmp_path / "src.bin", 40 * MIB)
    key, api = real_yagna.requestor_id.app_key, real_yagna.node.api_url
    publisher = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, key, api, str(source)],
        stdout=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # what the killed storage leaves lands here
    )
    try:
        assert publisher.stdout is not None
        url = publisher.stdout.readline().decode().strip()
        assert "gftp://" in url, url
        g = GftpTransfers(bus, frozenset({real_yagna.requestor_id.node_id}), call_timeout=3.0)
        written = threading.Event()

        def host_path(path: str) -> Path:
            return tmp_path / path.removeprefix("/golem/")

        class Killing(GftpTransfers):
            def _chunk(self, target: Any, reply: Any, offset: int) -> bytes:
                if offset >= 4 * MIB and not written.is_set():
                    written.set()
                    publisher.kill()
                return super()._chunk(target, reply, offset)

        g.__class__ = Killing
        began = time.monotonic()
        with pytest.raises(TransferError, match=r"stopped answering|went away"):
            transfer(url, "container:/golem/input/out.bin", host_path=host_path,
                     deadline=time.monotonic() + 60, cancel=threading.Event(), gftp=g)  # fmt: skip
        assert written.is_set()
        assert time.monotonic() - began < 20  # the call timeout, not the command's limit
        assert not (tmp_path / "input" / "out.bin").exists()
        assert not list((tmp_path / "input").glob(".*part"))
    finally:
        publisher.kill()
        publisher.wait(10)


def test_release_unbinds_and_close_cleans_up(real_yagna: RealYagna, tmp_path: Path) -> None:
    config = ApiConfig(app_key=real_yagna.requestor_id.app_key, api_url=real_yagna.node.api_url)
    storage = GftpStorage(config)
    url = storage.publish_bytes(b"x")
    slot = storage.upload_slot()
    entries = dict(storage._entries)
    assert len(entries) == 2
    storage.release(url)
    assert len(storage._entries) == 1
    assert all(not e.service.running for k, e in entries.items() if k in url)
    folder = slot.path.parent
    storage.close()
    assert all(not e.service.running for e in entries.values())
    assert not folder.exists()
    with pytest.raises(Exception, match="closed"):
        storage.publish_bytes(b"y")


@pytest.mark.parametrize("bus", ["one daemon"], indirect=True)
def test_a_second_socket_on_the_service_is_survived(
    storage: GftpStorage, bus: GsbClient, tmp_path: Path
) -> None:
    """yagna closes both sockets when a second one opens on a service; ours opens a third."""
    from websockets.protocol import State  # noqa: PLC0415
    from websockets.sync.client import connect  # noqa: PLC0415

    url = storage.publish_bytes(b"still here")
    entry = storage._entries[url.rsplit("/", 1)[-1]]
    client = storage._client
    rogue = connect(
        client.gsb.websocket_url(entry.service.services_id),
        additional_headers={"Authorization": f"Bearer {client.config.app_key}"},
        proxy=None,
        legacy=True,
    )
    try:
        wait_for("yagna to close the second socket", lambda: rogue.state is not State.OPEN, 10)
    finally:
        rogue.close_socket()
    Volumes(tmp_path).move(url, "container:/golem/input/x", exeunit(storage, bus), limit=30)
    assert (tmp_path / "input" / "x").read_bytes() == b"still here"


@pytest.mark.parametrize("bus", ["one daemon"], indirect=True)
def test_the_app_key_never_reaches_the_log(
    real_yagna: RealYagna, bus: GsbClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = real_yagna.requestor_id.app_key
    config = ApiConfig(app_key=key, api_url=real_yagna.node.api_url)
    with GftpStorage(config) as storage:
        url = storage.publish_bytes(b"logged?")
        Volumes(tmp_path).move(url, "container:/golem/input/x", exeunit(storage, bus))
    assert caplog.records  # debug logging was on
    assert key not in caplog.text
