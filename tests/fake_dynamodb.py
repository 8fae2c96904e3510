"""A fake DynamoDB endpoint on 127.0.0.1 that fails on purpose, over real HTTP.

    with FakeDynamoDB(ROOT / "examples") as dynamodb:   # the table: a snapshot directory
        dynamodb.fail(3, THROTTLED)                      # the next 3 requests are refused
        ... --endpoint-url dynamodb.url ...
        dynamodb.requests                                # X-Amz-Target of every request

It answers the three reads a compile makes (Scan for the cluster list, Query
for a layer's latest version, GetItem for a pinned one) in DynamoDB's JSON
protocol (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html),
from the snapshot's items, so a compile through it equals one from the
snapshot. A failure is an HTTP status and a body: DynamoDB's error shape
`{"__type": "...#Code", "message": ...}` (`error`), or anything else. The
server stops when the `with` block ends.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from compiler.model import LayerVersion
from compiler.sources import Pin
from compiler.sources.snapshot import SnapshotStore
from tests.loopback import LoopbackServer

_PREFIX = "com.amazonaws.dynamodb.v20120810#"
_serializer = TypeSerializer()

Answer = tuple[int, bytes]  # status, body


def error(code: str, message: str, status: int = 400) -> Answer:
    """DynamoDB's error answer: the code after '#' in `__type` is what botocore reads."""
    return status, json.dumps({"__type": _PREFIX + code, "message": message}).encode()


THROTTLED = error(
    "ProvisionedThroughputExceededException",
    "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API.",
)


class FakeDynamoDB(LoopbackServer):
    def __init__(self, snapshot: Path) -> None:
        super().__init__()
        self.store = SnapshotStore(snapshot)
        self.requests: list[str] = []  # X-Amz-Target, e.g. DynamoDB_20120810.Scan
        self.url = ""
        self._failures: list[Answer] = []
        self._lock = threading.Lock()

    def fail(self, times: int, answer: Answer) -> None:
        """Answer the next `times` requests with `answer` instead of the data."""
        with self._lock:
            self._failures.extend([answer] * times)

    def __enter__(self) -> FakeDynamoDB:
        self._listen(type("Handler", (_Handler,), {"fake": self}))
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def answer(self, target: str, request: Mapping[str, Any]) -> Answer:
        with self._lock:
            self.requests.append(target)
            if self._failures:
                return self._failures.pop(0)
        operation = target.rpartition(".")[2]
        if operation == "Scan":
            # The keys of every cluster version, as the projection `pk, sk, retired` gives.
            keys = [
                {"pk": {"S": v.pk}, "sk": {"S": v.sk}}
                for name in self.store.list_clusters()
                for v in self.store.history(f"cluster#{name}")
            ]
            return _ok({"Items": keys, "Count": len(keys), "ScannedCount": len(keys)})
        if operation == "Query":
            pk = request["ExpressionAttributeValues"][":pk"]["S"]
            found = self.store.read(pk, Pin())
            items = [_item(found)] if found is not None else []
            return _ok({"Items": items, "Count": len(items), "ScannedCount": len(items)})
        if operation == "GetItem":
            pk, sk = request["Key"]["pk"]["S"], request["Key"]["sk"]["S"]
            version = next((v for v in self.store.history(pk) if v.sk == sk), None)
            return _ok({"Item": _item(version)} if version is not None else {})
        return error("UnknownOperationException", f"{operation} is not faked")


def _ok(body: Mapping[str, Any]) -> Answer:
    return 200, json.dumps(body).encode()


def _item(version: LayerVersion) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": version.pk,
        "sk": version.sk,
        "version": version.version,
        "config": _decimals(version.config),
        "created_at": version.created_at,
        "author": version.author,
        "comment": version.comment,
    }
    if version.cluster is not None:
        item["cluster"] = _decimals(version.cluster)
    return {key: _serializer.serialize(value) for key, value in item.items()}


def _decimals(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    return value


class _Handler(BaseHTTPRequestHandler):
    fake: FakeDynamoDB  # set on the subclass each server makes

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        status, body = self.fake.answer(self.headers.get("X-Amz-Target", ""), json.loads(raw))
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read `requests`
