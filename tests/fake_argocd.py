"""A fake Argo CD API server on 127.0.0.1: the Application list, scripted over time.

    with FakeArgoCD() as argocd:
        argocd.report("dev-k3s-bootstrap", "dev-k3s", health="Healthy", sync="Synced",
                      revision="abc")
        client = ArgoCDClient(argocd.url, FAKE_TOKEN)

GET /api/v1/applications?selector=key=value answers a `v1alpha1ApplicationList` as
Argo CD's swagger (tests/data/argocd-swagger.json, copied from argoproj/argo-cd
assets/swagger.json) describes it; every answer is validated against that swagger,
made strict (an object allows only the properties it lists), before it is sent. A
missing or wrong bearer token -> 401 with the swagger's `runtimeError` shape.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jsonschema

from tests.loopback import LoopbackServer

FAKE_TOKEN = "argocd-fake-token-0123456789"
SWAGGER = Path(__file__).parent / "data/argocd-swagger.json"


def _strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if "properties" in schema and "additionalProperties" not in schema:
        out["additionalProperties"] = False
    return out


def swagger_validator(definition: str) -> jsonschema.Draft4Validator:
    definitions = _strict(json.loads(SWAGGER.read_text())["definitions"])
    return jsonschema.Draft4Validator(
        {"$ref": f"#/definitions/{definition}", "definitions": definitions}
    )


class FakeArgoCD(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._apps: dict[str, dict[str, Any]] = {}
        self._list = swagger_validator("v1alpha1ApplicationList")
        self._error = swagger_validator("runtimeError")
        self.requests: list[tuple[str, dict[str, str]]] = []  # path, headers

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def report(
        self,
        name: str,
        cluster: str,
        *,
        health: str,
        sync: str,
        revision: str,
        phase: str = "Succeeded",
        addon: str | None = None,
    ) -> None:
        """What Argo CD says about an Application from now on; its history grows. An
        add-on's Application (`addon`) is labelled so, and its revision is the chart's."""
        labels = {"gitops-compiler.io/cluster": cluster}
        if addon is not None:
            labels["gitops-compiler.io/addon"] = addon
        with self._lock:
            app = self._apps.get(name) or {
                "metadata": {"name": name, "labels": labels},
                "status": {"history": []},
            }
            status = app["status"]
            status["health"] = {"status": health}
            status["sync"] = {"status": sync, "revision": revision}
            status["operationState"] = {"phase": phase}
            if not any(h["revision"] == revision for h in status["history"]):
                status["history"].append({"id": len(status["history"]), "revision": revision})
            self._apps[name] = app

    def answer(self, path: str, query: dict[str, str], token: str) -> tuple[int, Any]:
        if token != f"Bearer {FAKE_TOKEN}":
            body: Any = {"code": 16, "error": "invalid session", "message": "invalid session"}
            self._error.validate(body)
            return 401, body
        if path != "/api/v1/applications":
            return 404, {"code": 5, "error": "not found", "message": "not found"}
        key, _, value = query.get("selector", "").partition("=")
        with self._lock:
            items = [
                json.loads(json.dumps(a))
                for _, a in sorted(self._apps.items())
                if not key or a["metadata"]["labels"].get(key) == value
            ]
        body = {"items": items, "metadata": {"resourceVersion": "1"}}
        self._list.validate(body)  # the fake answers only what the swagger describes
        return 200, body

    def __enter__(self) -> FakeArgoCD:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                fake.requests.append((parts.path, dict(self.headers.items())))
                status, body = fake.answer(
                    parts.path, dict(parse_qsl(parts.query)), self.headers.get("Authorization", "")
                )
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._listen(Handler)
        return self
