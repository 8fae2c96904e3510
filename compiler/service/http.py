"""The service's HTTP front: health, metrics, and the provisioner's trigger endpoint.

`POST /v1/clusters/{name}/bootstrap` is authenticated by a bearer token
(`GITOPS_TRIGGER_TOKEN`) or by an HMAC-SHA256 signature of the body
(`GITOPS_TRIGGER_SECRET`, header `X-Hub-Signature-256: sha256=<hex>`, as GitHub
signs webhooks), both compared in constant time. It is idempotent per delivery
id (`X-Delivery-Id`, or GitHub's `X-GitHub-Delivery`) and answers 202 with the
run id; errors are JSON `{"error": ...}`: 401, 404 (unknown cluster), 409 (a
delivery id reused for another cluster), 429 (the queue is full), 503.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from compiler.errors import CompilerError
from compiler.model import cluster_pk
from compiler.service.health import Readiness
from compiler.service.metrics import CONTENT_TYPE, ServiceMetrics
from compiler.service.triggers import Accepted, DurableTriggers, Trigger, TriggerQueue
from compiler.sources import ConfigStore, Pin

_BOOTSTRAP = re.compile(r"^/v1/clusters/([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)/bootstrap$")
_DELIVERY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Credentials:
    token: str | None
    secret: str | None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Credentials:
        return cls(
            environ.get("GITOPS_TRIGGER_TOKEN") or None,
            environ.get("GITOPS_TRIGGER_SECRET") or None,
        )

    def allows(self, headers: Mapping[str, str], body: bytes) -> bool:
        """`headers` with lower-case names."""
        authorization = headers.get("authorization", "")
        if self.token and authorization.startswith("Bearer "):
            return hmac.compare_digest(authorization[7:].encode(), self.token.encode())
        signature = headers.get("x-hub-signature-256", "")
        if self.secret and signature.startswith("sha256="):
            wanted = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            return hmac.compare_digest(signature[7:].encode(), wanted.encode())
        return False


@dataclass
class Front:
    """What the handler needs; one per service."""

    store: ConfigStore
    queue: TriggerQueue
    durable: DurableTriggers
    metrics: ServiceMetrics
    readiness: Readiness
    credentials: Credentials
    new_run_id: Callable[[], str]

    def bootstrap(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, Any]:
        if not self.credentials.allows(headers, body):
            return self._refused("http", 401, "missing or wrong bearer token or signature")
        match = _BOOTSTRAP.match(path)
        record = self.store.read(cluster_pk(match.group(1)), Pin()) if match else None
        if match is None or record is None or record.retired:
            return self._refused("http", 404, f"unknown cluster in {path}")
        cluster = match.group(1)
        delivery = headers.get("x-delivery-id") or headers.get("x-github-delivery") or ""
        if delivery and not _DELIVERY.match(delivery):
            return self._refused("http", 400, "delivery id: 1-128 of A-Z a-z 0-9 . _ : -")
        delivery = delivery or f"generated-{secrets.token_hex(8)}"
        if self.queue.depth() >= self.queue.capacity or (
            self.durable.count(self.queue.capacity) >= self.queue.capacity
        ):
            return self._refused("http", 429, "the trigger queue is full; retry later")
        run_id = self.new_run_id()
        try:
            self.durable.record(delivery, cluster, run_id, time.time())
        except Accepted as seen:
            if seen.cluster != cluster:
                return self._refused("http", 409, f"delivery {delivery} was for {seen.cluster}")
            self.metrics.triggers.labels("http", "duplicate").inc()
            return 202, _accepted(seen.run_id, delivery, cluster, "duplicate")
        self.queue.offer(Trigger("http", run_id, clusters=(cluster,), delivery=delivery))
        self.metrics.triggers.labels("http", "accepted").inc()
        self.metrics.queue_depth.set(self.queue.depth())
        return 202, _accepted(run_id, delivery, cluster, "accepted")

    def _refused(self, source: str, status: int, message: str) -> tuple[int, Any]:
        self.metrics.triggers.labels(source, str(status)).inc()
        return status, {"error": message, "status": status}


def _accepted(run_id: str, delivery: str, cluster: str, state: str) -> dict[str, str]:
    return {"run_id": run_id, "delivery_id": delivery, "cluster": cluster, "status": state}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        front = self.server.front
        if self.path == "/healthz":
            self._send(200, {"status": "ok"})
        elif self.path == "/readyz":
            ready, checks = front.readiness.report()
            self._send(200 if ready else 503, {"ready": ready, "checks": checks})
        elif self.path == "/metrics":
            front.metrics.queue_depth.set(front.queue.depth())
            self._send_bytes(200, front.metrics.exposition(), CONTENT_TYPE)
        else:
            self._send(404, {"error": f"no such endpoint: GET {self.path}", "status": 404})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._send(413, {"error": f"body over {MAX_BODY} bytes", "status": 413})
            return
        body = self.rfile.read(length)
        if not self.path.startswith("/v1/clusters/"):
            self._send(404, {"error": f"no such endpoint: POST {self.path}", "status": 404})
            return
        try:
            status, answer = self.server.front.bootstrap(
                self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
        except CompilerError as err:
            status, answer = 503, {"error": str(err), "status": 503}
        self._send(status, answer)

    def _send(self, status: int, answer: Any) -> None:
        data = (json.dumps(answer, sort_keys=True) + "\n").encode()
        self._send_bytes(status, data, "application/json")

    def _send_bytes(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("Retry-After", "5")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the metrics count requests; access logs would drown the run's steps."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], front: Front) -> None:
        super().__init__(address, _Handler)
        self.front = front


def listen(host: str, port: int, front: Front) -> _Server:
    """Bound now (a taken port fails at start); `serve_forever` in a thread of the caller's."""
    return _Server((host, port), front)
