"""A requestor-side HTTP storage: providers GET what we send and PUT what they return.

Each file gets an unguessable one-off URL (a random token), so a provider can reach only what was
published for it. Bound to 127.0.0.1 by default: localnet's exe-units run on this machine. For the
real Golem network a GFTP-over-GSB storage will implement the same ``Storage`` protocol.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol, Self

from golem_actors.errors import GolemActorsError

__all__ = ["HttpStorage", "Slot", "Storage", "StorageError"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


class StorageError(GolemActorsError, RuntimeError):
    """A transfer could not be prepared or its result is missing."""


@dataclass(frozen=True)
class Slot:
    """Where a provider PUTs one file; ``path`` holds it once the transfer has finished."""

    url: str
    path: Path


class Storage(Protocol):
    def publish_bytes(self, data: bytes) -> str: ...
    def publish_file(self, path: Path) -> str: ...
    def upload_slot(self) -> Slot: ...
    def release(self, url: str) -> None: ...


class HttpStorage:
    """``with HttpStorage() as storage: url = storage.publish_bytes(b"...")``."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, max_upload_bytes: int = 4 << 30
    ) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="golem-actors-storage-"))
        self._lock = threading.Lock()
        self._downloads: dict[str, Path] = {}
        self._uploads: dict[str, Path] = {}
        self.max_upload_bytes = max_upload_bytes
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="http-storage", daemon=True
        )
        self._thread.start()
        bound_host, bound_port = self._server.server_address[:2]
        self.base_url = f"http://{bound_host!s}:{bound_port}"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        shutil.rmtree(self._dir, ignore_errors=True)

    def publish_bytes(self, data: bytes) -> str:
        token = secrets.token_hex(16)
        path = self._dir / f"out-{token}"
        path.write_bytes(data)
        with self._lock:
            self._downloads[token] = path
        return f"{self.base_url}/{token}"

    def publish_file(self, path: Path) -> str:
        """Serve a local file as it is (no copy); it must stay in place until released."""
        if not path.is_file():
            raise StorageError(f"cannot send {path}: not a readable file")
        token = secrets.token_hex(16)
        with self._lock:
            self._downloads[token] = path.resolve()
        return f"{self.base_url}/{token}"

    def upload_slot(self) -> Slot:
        token = secrets.token_hex(16)
        path = self._dir / f"in-{token}"
        with self._lock:
            self._uploads[token] = path
        return Slot(f"{self.base_url}/{token}", path)

    def release(self, url: str) -> None:
        token = url.rsplit("/", 1)[-1]
        with self._lock:
            published = self._downloads.pop(token, None)
            uploaded = self._uploads.pop(token, None)
        for path in (published, uploaded):
            if path is not None and path.parent == self._dir:
                path.unlink(missing_ok=True)

    # -- HTTP side ----------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        storage = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # headers and body in one go: no 40 ms stalls

            def log_message(self, fmt: str, *args: object) -> None:
                log.debug("storage: %s", fmt % args)

            def do_GET(self) -> None:
                with storage._lock:
                    path = storage._downloads.get(self.path.lstrip("/"))
                if path is None or not path.is_file():
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(path.stat().st_size))
                self.end_headers()
                with path.open("rb") as source:
                    shutil.copyfileobj(source, self.wfile, _CHUNK)

            def do_PUT(self) -> None:
                with storage._lock:
                    path = storage._uploads.get(self.path.lstrip("/"))
                if path is None:
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                length = int(self.headers.get("Content-Length") or -1)
                if length < 0 or length > storage.max_upload_bytes:
                    self.send_error(
                        HTTPStatus.LENGTH_REQUIRED
                        if length < 0
                        else HTTPStatus.REQUEST_ENTITY_TOO_LARGE
                    )
                    return
                partial = path.with_suffix(".part")
                with partial.open("wb") as sink:
                    left = length
                    while left > 0:
                        chunk = self.rfile.read(min(_CHUNK, left))
                        if not chunk:
                            break
                        sink.write(chunk)
                        left -= len(chunk)
                if left:
                    partial.unlink(missing_ok=True)
                    self.send_error(HTTPStatus.BAD_REQUEST, "body shorter than Content-Length")
                    return
                partial.replace(path)  # a reader never sees half a file
                self.send_response(HTTPStatus.CREATED)
                self.send_header("Content-Length", "0")
                self.end_headers()

        with contextlib.suppress(AttributeError):
            Handler.__name__ = "StorageHandler"
        return Handler
