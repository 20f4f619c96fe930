"""A small stateful service: a key-value store process, answering through ``ctx.run``.

``start`` sends a tiny store server and its client into the activity and starts the server in
the background (it listens on a unix socket in the work volume); ``set``/``get`` talk to it with
one ``ctx.run`` each. ``run`` keeps a counter in the store and checks it survives.

    golem-actors run examples/kv_store.py:KvStore -n 2
"""

from __future__ import annotations

import logging
import time

from golem_actors import ServiceActor, WorkContext

log = logging.getLogger("kv_store")

PYTHON = "/usr/bin/python3"
SOCKET = "/golem/work/kv.sock"

SERVER = f"""
import os, socket
path = {SOCKET!r}
store = {{}}
if os.path.exists(path):
    os.unlink(path)
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(8)
while True:
    conn, _ = server.accept()
    with conn:
        op, _, rest = conn.recv(65536).decode().partition(" ")
        key, _, value = rest.partition(" ")
        if op == "SET":
            store[key] = value
            conn.sendall(b"OK")
        elif op == "GET":
            conn.sendall(("=" + store[key]).encode() if key in store else b"MISSING")
        else:
            conn.sendall(b"ERR unknown op")
"""

CLIENT = f"""
import socket, sys
conn = socket.socket(socket.AF_UNIX)
conn.connect({SOCKET!r})
conn.sendall(" ".join(sys.argv[1:]).encode())
conn.shutdown(socket.SHUT_WR)
sys.stdout.write(conn.recv(65536).decode())
"""


class KvStore(ServiceActor):
    """An in-memory store in a process on the provider; lost (and rebuilt empty) on restart."""

    def start(self, ctx: WorkContext) -> None:
        super().start(ctx)
        ctx.send_bytes(SERVER.encode(), "/golem/work/kv_server.py")
        ctx.send_bytes(CLIENT.encode(), "/golem/work/kv.py")
        server = f"nohup {PYTHON} /golem/work/kv_server.py >/golem/work/kv.log 2>&1 &"
        ctx.run("/bin/sh", "-c", server)
        deadline = time.monotonic() + 10
        probe = f"test -S {SOCKET} && echo up || echo down"
        while ctx.run("/bin/sh", "-c", probe).stdout != "up\n":
            if time.monotonic() > deadline:
                raise RuntimeError("the store did not come up")
            ctx.sleep(0.1)

    def set(self, ctx: WorkContext, key: str, value: str) -> None:
        answer = ctx.run(PYTHON, "/golem/work/kv.py", "SET", key, value).stdout
        if answer != "OK":
            raise RuntimeError(f"SET {key} answered {answer!r}")

    def get(self, ctx: WorkContext, key: str) -> str | None:
        answer = str(ctx.run(PYTHON, "/golem/work/kv.py", "GET", key).stdout)
        return answer[1:] if answer.startswith("=") else None

    def run(self, ctx: WorkContext) -> None:
        count = 0
        while True:
            count += 1
            self.set(ctx, "counter", str(count))
            seen = self.get(ctx, "counter")
            if seen != str(count):
                raise RuntimeError(f"the store lost its state: counter={seen!r}, expected {count}")
            log.info("%s: counter=%s", ctx.provider_name, seen)
            ctx.sleep(2)
