"""localnet's image registry on loopback: the Golem registry's info and download API over the store.

Stock requestors resolve an image tag or hash through the Golem registry (yapapi's
``resolve_package_url``, golem-js's ``WorkloadDemandDirector``, both reading only ``sha3``,
``http``/``https`` and ``size``), then put ``hash:sha3:<sha3>:<url>`` in their demand::

    GET /v1/image/info?tag=<name:version>[&count=true|&dev=true]
    GET /v1/image/info?hash=<sha3-224 hex>[&count=true|&dev=true]
        200 {"sha3": ..., "tag": ..., "http": <base>/download/<sha3>, "https": (the same URL),
             "size": <bytes>, "format": "gvmi" | "tar"}
        404 {"error": "..."}: no image has that tag or hash; 400 {"error": ...}: neither or both
    GET|HEAD /download/<sha3>           the image file (as registry.golem.network/download/...)
    GET|HEAD /images/<sha3>.gvmi|.tar   the same file, under the name localnet used before

Pointing ``GOLEM_REGISTRY_URL`` (golem-js) or ``repository_url`` (yapapi) here makes scripts
written for the real network run unchanged. There is no TLS on loopback: ``https`` holds the
plain URL, so a client asking for https still gets a working one. A bare ``name`` tag means
``name:latest``. ``count`` and ``dev`` (download statistics upstream) are accepted and ignored.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from golem_actors.localnet.images import Image, ImageStore, normal_tag

__all__ = ["INFO_PATH", "serve_registry"]

INFO_PATH = "/v1/image/info"
_FILE = re.compile(r"/(?:download/([0-9a-f]{56})|images/([0-9a-f]{56})\.(gvmi|tar))")
_CHUNK = 1 << 20
_TYPES = {"gvmi": "application/octet-stream", "tar": "application/x-tar"}


class _Registry(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, store: ImageStore, host: str, port: int) -> None:
        super().__init__((host, port), _Handler)
        self.store = store
        bound_host, bound_port = self.server_address[:2]
        self.base_url = f"http://{bound_host!s}:{bound_port}"


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server: _Registry

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, *, with_body: bool) -> None:
        url = urlsplit(self.path)
        if url.path == INFO_PATH:
            status, body = self._info(parse_qs(url.query, keep_blank_values=True))
            self._json(status, body, with_body=with_body)
            return
        match = _FILE.fullmatch(url.path)
        image = self.server.store.get(match.group(1) or match.group(2)) if match else None
        if match and image is not None and match.group(3) not in (None, image.kind):
            image = None  # /images/<hash>.tar of a GVMI, or the other way round
        if image is None:
            self._json(404, {"error": f"no image at {url.path}"}, with_body=with_body)
            return
        self._file(image, with_body=with_body)

    def _info(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        tags, hashes = query.get("tag", []), query.get("hash", [])
        if len(tags) + len(hashes) != 1:
            return 400, {"error": "give exactly one of tag=<name:version> or hash=<sha3>"}
        store = self.server.store
        image = store.find_tag(tags[0]) if tags else store.get(hashes[0])
        if image is None:
            what = f"tag {tags[0]!r}" if tags else f"hash {hashes[0]!r}"
            return 404, {"error": f"image not found: {what}"}
        download = f"{self.server.base_url}/download/{image.hash}"
        return 200, {
            "sha3": image.hash,
            "tag": normal_tag(image.tag) if image.tag else None,
            "http": download,
            "https": download,
            "size": image.size,
            "format": image.kind,
        }

    def _json(self, status: int, body: dict[str, Any], *, with_body: bool) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if with_body:
            self.wfile.write(data)

    def _file(self, image: Image, *, with_body: bool) -> None:
        with image.path.open("rb") as f:
            self.send_response(200)
            self.send_header("Content-Type", _TYPES[image.kind])
            self.send_header("Content-Length", str(image.size))
            self.end_headers()
            if with_body:
                shutil.copyfileobj(f, self.wfile, _CHUNK)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the API's name
        pass  # requests are not worth a log line each


def serve_registry(
    store: ImageStore, host: str = "127.0.0.1", port: int = 0
) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``store`` (see the module's docstring); already serving on a daemon thread.

    Returns the server and its base URL (``GOLEM_REGISTRY_URL``); stop it with ``shutdown()``
    then ``server_close()``.
    """
    server = _Registry(store, host, port)
    serve = functools.partial(server.serve_forever, poll_interval=0.05)  # prompt shutdown
    threading.Thread(target=serve, name="image-registry", daemon=True).start()
    return server, server.base_url
