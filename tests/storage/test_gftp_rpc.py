"""``gftp server``'s JSON-RPC, as yapapi speaks it, over a stand-in storage (no yagna)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from golem_actors.storage.gftp_rpc import PROTOCOL_VERSION, serve
from golem_actors.storage.http import Slot, StorageError

NODE = "0x" + "ab" * 20


@dataclass
class FakeStorage:
    published: list[Path] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    closed: bool = False

    def publish_file(self, path: Path) -> str:
        if not path.exists():
            raise StorageError(f"cannot send {path}: No such file or directory")
        self.published.append(path)
        return f"hash:sha3:{'0' * 64}:gftp://{NODE}/{len(self.published)}"

    def upload_slot(self) -> Slot:
        return Slot(f"gftp://{NODE}/in-1", Path("storage-dir/in-1"))

    def release(self, url: str) -> None:
        if url.endswith("/unknown"):
            raise ValueError(f"malformed {url}")
        self.released.append(url)

    def close(self) -> None:
        self.closed = True


def talk(*requests: Any) -> tuple[list[dict[str, Any]], FakeStorage, int]:
    """Send requests (dicts, or raw lines) one per line; the replies, the storage, opens."""
    storage = FakeStorage()
    opened = 0

    def open_storage() -> FakeStorage:
        nonlocal opened
        opened += 1
        return storage

    lines = [r if isinstance(r, str) else json.dumps(r) for r in requests]
    out = io.StringIO()
    assert serve(io.StringIO("\n".join(lines) + "\n"), out, open_storage) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()], storage, opened


def call(method: str, request_id: int, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params, "id": request_id}


def test_version_needs_no_daemon_and_says_close_works():
    (reply,), _, opened = talk(call("version", 1))
    assert reply["id"] == 1
    # yapapi: semantic_version.Version(result.split()[0]) >= 0.7.3 means `close` is used
    assert reply["result"].split()[0] == PROTOCOL_VERSION == "0.7.3"
    assert opened == 0


def test_publish_receive_close_and_shutdown_as_yapapi_sends_them(tmp_path: Path):
    data = tmp_path / "in.txt"
    data.write_text("x")
    replies, storage, opened = talk(
        call("publish", 1, files=[str(data)]),
        call("receive", 2, output_file=str(tmp_path / "out.txt")),
        call("close", 3, urls=[f"gftp://{NODE}/1", f"gftp://{NODE}/unknown"]),
        call("shutdown", 4),
        call("version", 5),  # after shutdown: never read
    )
    assert [r["id"] for r in replies] == [1, 2, 3, 4]
    assert replies[0]["result"] == [{"file": str(data), "url": storage_url(1)}]
    # the file is where the storage keeps it once the upload has finished; yapapi copies it
    assert replies[1]["result"] == {"file": "storage-dir/in-1", "url": f"gftp://{NODE}/in-1"}
    assert replies[2]["result"] == ["ok", "error"]
    assert replies[3]["result"] == "ok"
    assert storage.published == [data]
    assert storage.released == [f"gftp://{NODE}/1"]
    assert opened == 1
    assert storage.closed


def storage_url(n: int) -> str:
    return f"hash:sha3:{'0' * 64}:gftp://{NODE}/{n}"


def test_errors_are_replies_and_the_server_goes_on(tmp_path: Path):
    replies, storage, _ = talk(
        "not json",
        json.dumps(["no", "method"]),
        call("upload", 1, file="a", url="b"),
        call("publish", 2, files="not a list"),
        call("publish", 3, files=[str(tmp_path / "missing")]),
        call("receive", 4),
        {"jsonrpc": "2.0", "method": "version"},  # a notification: no reply
        call("version", 5),
    )
    codes = [(r["id"], r.get("error", {}).get("code")) for r in replies]
    assert codes == [
        (None, -32700),
        (None, -32600),
        (1, -32601),
        (2, -32602),
        (3, -32000),
        (4, -32602),
        (5, None),
    ]
    assert "No such file" in replies[4]["error"]["message"]
    assert storage.closed  # the end of stdin closes what was opened


def test_the_console_script_answers_on_stdout():
    gftp = Path(sys.executable).parent / "gftp"
    lines = [call("version", 7), call("shutdown", 8)]
    done = subprocess.run(
        [str(gftp), "server"],
        input="".join(json.dumps(line) + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["id"] for r in replies] == [7, 8]
    assert replies[0]["result"].startswith("0.7.3 (golem-actors ")
