"""``gftp server``: yagna's GFTP tool's JSON-RPC mode, served by our GSB-API GFTP storage.

yapapi (and other stock requestors) do not speak GFTP themselves: they start ``gftp server``
and send it one JSON-RPC 2.0 request per line on stdin, reading one reply per line on stdout.
The real ``gftp`` ships beside ``yagna`` in yagna's release archives, but not in the
``golem-node`` wheel that localnet runs, so without this a stock yapapi cannot even start (its
engine opens the storage first). The methods, as yapapi calls them:

    version                       -> "0.7.3 (...)": the protocol level whose ``close`` works
    publish {files: [path, ...]}  -> [{file, url}, ...]: each file served at a gftp:// URL
    receive {output_file}         -> {file, url}: ``file`` holds what a provider sends to ``url``
                                     once it has finished (and its SHA3-256 matched)
    close {urls: [url, ...]}      -> ["ok" | "error", ...]: stop serving, or receiving
    shutdown                      -> "ok", then the server exits

Files move through ``GftpStorage`` (yagna's GSB API, with the requestor's ``YAGNA_APPKEY``
and ``YAGNA_API_URL``), the way the real tool moves them over yagna's bus. The storage opens on
the first request that needs it, so ``version`` answers without a daemon. stdout carries only
replies; logs go to stderr.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

from golem_actors import __version__
from golem_actors.errors import GolemActorsError
from golem_actors.storage.http import Slot

__all__ = ["PROTOCOL_VERSION", "serve"]

log = logging.getLogger(__name__)

#: yapapi uses ``close`` only from gftp 0.7.3 on; ours has always worked.
PROTOCOL_VERSION = "0.7.3"

_PARSE_ERROR, _INVALID_REQUEST, _NO_METHOD, _BAD_PARAMS, _FAILED = (
    -32700,
    -32600,
    -32601,
    -32602,
    -32000,
)


class _Storage(Protocol):
    def publish_file(self, path: Path) -> str: ...
    def upload_slot(self) -> Slot: ...
    def release(self, url: str) -> None: ...
    def close(self) -> None: ...


class _RpcError(GolemActorsError):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def serve(stdin: IO[str], stdout: IO[str], open_storage: Callable[[], _Storage]) -> int:
    """Answer requests from ``stdin`` until ``shutdown`` or its end; returns the exit code."""
    server = _Server(open_storage)
    try:
        for line in stdin:
            if not line.strip():
                continue
            reply, stop = server.handle(line)
            if reply is not None:
                stdout.write(json.dumps(reply) + "\n")
                stdout.flush()
            if stop:
                break
    finally:
        server.close()
    return 0


class _Server:
    def __init__(self, open_storage: Callable[[], _Storage]) -> None:
        self._open_storage = open_storage
        self._storage: _Storage | None = None

    def close(self) -> None:
        if self._storage is not None:
            self._storage.close()
            self._storage = None

    def handle(self, line: str) -> tuple[dict[str, Any] | None, bool]:
        """One request line in: the reply (None for a notification), and whether to stop."""
        try:
            request = json.loads(line)
        except ValueError as exc:
            return _error(None, _PARSE_ERROR, f"not JSON: {exc}"), False
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error(None, _INVALID_REQUEST, "a request needs a method"), False
        method, request_id = request["method"], request.get("id")
        params = request.get("params") or {}
        try:
            if not isinstance(params, dict):
                raise _RpcError(_BAD_PARAMS, "params must be an object")  # noqa: TRY301
            result = self._call(method, params)
        except _RpcError as exc:
            reply = _error(request_id, exc.code, str(exc))
        except (GolemActorsError, OSError) as exc:
            log.warning("gftp %s failed: %s", method, exc)
            reply = _error(request_id, _FAILED, f"{method} failed: {exc}")
        else:
            reply = {"jsonrpc": "2.0", "id": request_id, "result": result}
        return (reply if "id" in request else None), method == "shutdown"

    def _call(self, method: str, params: dict[str, Any]) -> Any:
        if method == "version":
            return f"{PROTOCOL_VERSION} (golem-actors {__version__}, through yagna's GSB API)"
        if method == "shutdown":
            return "ok"
        if method == "publish":
            files = _strings(params, "files")
            return [{"file": f, "url": self._storage_now().publish_file(Path(f))} for f in files]
        if method == "receive":
            output = params.get("output_file")
            if not isinstance(output, str) or not output:
                raise _RpcError(_BAD_PARAMS, "receive needs output_file (a path)")
            slot = self._storage_now().upload_slot()
            return {"file": str(slot.path), "url": slot.url}
        if method == "close":
            return [self._close(url) for url in _strings(params, "urls")]
        raise _RpcError(_NO_METHOD, f"unknown method {method!r}")

    def _close(self, url: str) -> str:
        try:
            self._storage_now().release(url)
        except (GolemActorsError, ValueError) as exc:
            log.warning("gftp close %s: %s", url, exc)
            return "error"
        return "ok"

    def _storage_now(self) -> _Storage:
        if self._storage is None:
            self._storage = self._open_storage()
        return self._storage


def _strings(params: dict[str, Any], key: str) -> list[str]:
    value = params.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _RpcError(_BAD_PARAMS, f"{key} must be a list of strings")
    return value


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
