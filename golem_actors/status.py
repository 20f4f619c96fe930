"""The run's HTTP endpoints: ``/metrics`` (Prometheus) and ``/status`` (JSON), on 127.0.0.1.

``/status`` lists every instance (state, provider node id, agreement id, restarts, cost) and
the payment totals. Neither endpoint ever carries the app key.
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from golem_actors.metrics import Metrics

if TYPE_CHECKING:
    from golem_actors.golem import Golem

__all__ = ["StatusServer", "status_document"]


def status_document(golem: Golem) -> dict[str, Any]:
    totals = golem.totals()
    return {
        "instances": [
            {
                "service": s.service,
                "instance": s.instance,
                "state": s.state.value,
                "provider_id": s.provider_id,
                "provider_name": s.provider_name,
                "agreement_id": s.agreement_id,
                "activity_id": s.activity_id,
                "restarts": s.restarts,
                "uptime_s": round(s.uptime_s, 1),
                "cost": str(s.cost),  # GLM accepted for its agreements, restarts included
                "last_exit": s.last_exit,
            }
            for s in golem.snapshots()
        ],
        "clusters": [
            {"service": c.name, "instances": len(c.handles), "escalated": c.escalated}
            for c in golem.clusters
        ],
        "payments": None
        if totals is None
        else {
            "budget": str(totals.budget),
            "debit_notes": str(totals.debit_notes),
            "invoices": str(totals.invoices),
            "cost": str(totals.committed),
            "remaining": str(totals.remaining),
        },
    }


class StatusServer:
    """A small threaded HTTP server; ``close()`` stops it.

    It serves ``metrics`` (bound to ``golem`` by the caller), or metrics of its own that it binds
    to the started ``golem`` and unbinds on ``close()``.
    """

    def __init__(
        self,
        golem: Golem,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        metrics: Metrics | None = None,
    ) -> None:
        self._own_metrics = metrics is None
        if metrics is None:
            metrics = Metrics()
            metrics.bind(golem)
        self.metrics = metrics
        self.registry = registry = metrics.registry

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def log_message(self, *_: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    body, kind = generate_latest(registry), CONTENT_TYPE_LATEST
                elif path == "/status":
                    document = status_document(golem)
                    body, kind = json.dumps(document, default=_json).encode(), "application/json"
                else:
                    self.send_error(HTTPStatus.NOT_FOUND, "try /metrics or /status")
                    return
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="status", daemon=True
        )
        self._thread.start()
        bound = self._server.server_address
        self.url = f"http://{bound[0]!s}:{bound[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        if self._own_metrics:
            self.metrics.unbind()


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
