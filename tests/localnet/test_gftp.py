"""localnet's GFTP client against a fake bus: the guards that keep yagna's hub from spinning,
chunk order and short chunks, error replies, and the hash prefix. The real path through yagna is
in tests/storage/test_gftp.py."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from typing import Any

import pytest

from golem_actors.localnet import gftp as gftplib
from golem_actors.localnet.gftp import GftpError, GftpTransfers
from golem_actors.localnet.gsb import GsbTimeoutError

NODE = "0x" + "ab" * 20
OTHER = "0x" + "cd" * 20


class FakeBus:
    """Serves one file like a publisher that sends at most ``cap`` bytes per chunk."""

    def __init__(self, data: bytes, *, cap: int = 1 << 30, hang: bool = False) -> None:
        self.data, self.cap, self.hang = data, cap, hang
        self.calls: list[tuple[str, Any]] = []
        self.received = bytearray()
        self.lock = threading.Lock()

    def call(self, address: str, body: Any, *, timeout: float) -> Any:
        with self.lock:
            self.calls.append((address, body))
        if self.hang:
            raise GsbTimeoutError(f"no reply from {address} in {timeout} s")
        message = address.rsplit("/", 1)[-1]
        if message == "GetMetadata":
            return {"Ok": {"fileSize": len(self.data)}}
        if message == "GetChunk":
            offset, size = body["offset"], min(body["size"], self.cap)
            return {"Ok": {"offset": offset, "content": self.data[offset : offset + size]}}
        if message == "UploadChunk":
            chunk = body["chunk"]
            with self.lock:
                end = chunk["offset"] + len(chunk["content"])
                self.received.extend(b"\0" * max(0, end - len(self.received)))
                self.received[chunk["offset"] : end] = chunk["content"]
            return {"Ok": None}
        if message == "UploadFinished":
            ok = body["hash"] == hashlib.sha3_256(self.received).hexdigest()
            return {"Ok": None} if ok else {"Err": "IntegrityError"}
        return None  # what yagna turns "no such address" into


@pytest.fixture(autouse=True)
def _forget_unreachable() -> None:
    gftplib._unreachable.clear()


def transfers(bus: FakeBus, **options: Any) -> GftpTransfers:
    return GftpTransfers(bus, frozenset({NODE}), **options)


def download(g: GftpTransfers, url: str) -> bytes:
    out = io.BytesIO()
    g.download(url, out, deadline=time.monotonic() + 10, cancel=threading.Event())
    return out.getvalue()


def test_download_in_order_with_short_chunks_and_several_in_flight() -> None:
    data = bytes(range(256)) * 1000  # 256,000 bytes: 4 chunks of 64,000
    bus = FakeBus(data, cap=50_000)  # every chunk comes short: the rest is asked for
    assert download(transfers(bus), f"gftp://{NODE}/file-1") == data
    addresses = {a for a, _ in bus.calls}
    assert addresses == {
        f"/transfer/net/{NODE}/gftp/file-1/GetMetadata",
        f"/transfer/net/{NODE}/gftp/file-1/GetChunk",
    }
    assert all(b is None or b["size"] <= gftplib.DOWNLOAD_CHUNK for _, b in bus.calls)


def test_upload_sends_chunks_then_the_hash() -> None:
    data = b"x" * 3_000_000
    bus = FakeBus(b"")
    digest = transfers(bus, upload_chunk=1 << 20).upload(
        io.BytesIO(data), f"gftp://{NODE}/up", deadline=time.monotonic() + 10,
        cancel=threading.Event(),
    )  # fmt: skip
    assert bytes(bus.received) == data
    assert digest == hashlib.sha3_256(data).hexdigest()
    assert bus.calls[-1] == (f"/transfer/net/{NODE}/gftp/up/UploadFinished", {"hash": digest})
    assert sum(1 for a, _ in bus.calls if a.endswith("UploadChunk")) == 3


def test_a_node_other_than_the_requestor_is_never_called() -> None:
    bus = FakeBus(b"data")
    with pytest.raises(GftpError, match="unknown here"):
        download(transfers(bus), f"gftp://{OTHER}/file")
    assert bus.calls == []


def test_a_node_that_did_not_answer_is_not_called_again_for_a_while() -> None:
    bus = FakeBus(b"data", hang=True)
    g = transfers(bus, metadata_timeout=0.1)
    with pytest.raises(GftpError, match=r"did not answer within 0\.1 s"):
        download(g, f"gftp://{NODE}/file")
    with pytest.raises(GftpError, match="not calling it again"):
        download(g, f"gftp://{NODE}/other")
    assert len(bus.calls) == 1  # the second transfer did not touch the bus


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("gftp://0x1/abc", "not a node id"),
        (f"gftp://{NODE}", "no file id"),
        (f"gftp://{NODE}/a/b", "no file id"),
    ],
)
def test_bad_urls_are_named(url: str, message: str) -> None:
    bus = FakeBus(b"")
    with pytest.raises(GftpError, match=message):
        download(transfers(bus), url)
    assert bus.calls == []


def test_error_replies_become_clear_errors() -> None:
    class Refusing(FakeBus):
        def call(self, address: str, body: Any, *, timeout: float) -> Any:
            if address.endswith("GetMetadata") and "missing" in address:
                return None  # an empty reply: nothing bound there
            if address.endswith("GetChunk"):
                return {"Err": {"ReadError": "disk on fire"}}
            return super().call(address, body, timeout=timeout)

    bus = Refusing(b"abc")
    with pytest.raises(GftpError, match="no such file is published"):
        download(transfers(bus), f"gftp://{NODE}/missing")
    with pytest.raises(GftpError, match=r"refused by the publisher: .*disk on fire"):
        download(transfers(bus), f"gftp://{NODE}/present")


def test_a_stopping_activity_interrupts_a_download() -> None:
    bus = FakeBus(b"z" * 1_000_000)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(GftpError, match="interrupted"):
        transfers(bus).download(
            f"gftp://{NODE}/f", io.BytesIO(), deadline=time.monotonic() + 10, cancel=cancel
        )


def test_a_publisher_that_stops_answering_mid_transfer_fails_it_by_the_call_timeout() -> None:
    class Dying(FakeBus):
        def call(self, address: str, body: Any, *, timeout: float) -> Any:
            if address.endswith("GetChunk") and body["offset"] >= 128_000:
                raise GsbTimeoutError(f"no reply from {address} in {timeout} s")
            return super().call(address, body, timeout=timeout)

    began = time.monotonic()
    with pytest.raises(GftpError, match="stopped answering"):
        download(transfers(Dying(b"q" * 1_000_000)), f"gftp://{NODE}/f")
    assert time.monotonic() - began < 5  # not the command's deadline


def test_an_upload_to_an_unbound_url_is_named() -> None:
    class Unbound(FakeBus):
        def call(self, address: str, body: Any, *, timeout: float) -> Any:
            self.calls.append((address, body))
            return None  # what yagna answers for an address nobody binds

    bus = Unbound(b"")
    with pytest.raises(GftpError, match="nothing receives uploads at this URL"):
        transfers(bus).upload(
            io.BytesIO(b"data"), f"gftp://{NODE}/gone", deadline=time.monotonic() + 10,
            cancel=threading.Event(),
        )  # fmt: skip
    assert len(bus.calls) == 1  # no UploadFinished after a chunk nobody took
