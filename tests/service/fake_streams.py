"""A fake DynamoDB Streams API on 127.0.0.1 (JSON protocol, `X-Amz-Target`), for what
moto's stream never does: a reshard (a closed parent shard and its child), paged
shard listings, and an expired iterator. Records are scripted per shard."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.loopback import LoopbackServer

PARENT = "shardId-00000001000000000000-aaaaaaaa"
CHILD = "shardId-00000001000000000001-bbbbbbbb"
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"


def seq(number: int) -> str:
    """A sequence number of the length DynamoDB's have (botocore checks 21 at least)."""
    return str(10**20 + number)


def record(sequence: int, pk: str) -> dict[str, Any]:
    return {
        "eventID": f"e{sequence}", "eventName": "INSERT", "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {"pk": {"S": pk}, "sk": {"S": "v#0000000001"}},
            "NewImage": {"pk": {"S": pk}, "sk": {"S": "v#0000000001"}},
            "SequenceNumber": seq(sequence), "SizeBytes": 10, "StreamViewType": "NEW_IMAGE",
            "ApproximateCreationDateTime": datetime(2026, 1, 1, tzinfo=UTC).timestamp(),
        },
    }  # fmt: skip


class FakeStreams(LoopbackServer):
    """Shard PARENT (closed, records 1-2) and its child CHILD (open, record 3);
    listed one shard per page, child first; the first GetRecords on the parent answers
    ExpiredIteratorException."""

    def __init__(self) -> None:
        super().__init__()
        self.records = {PARENT: [record(1, "env#dev"), record(2, "defaults")],
                        CHILD: [record(3, "cluster#dev-k3s")]}  # fmt: skip
        self.closed = {PARENT}
        self.expire_once = {PARENT}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __enter__(self) -> FakeStreams:
        server = self

        class Handler(_Handler):
            fake = server

        self._listen(Handler)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, operation: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.calls.append((operation, payload))
        if operation == "DescribeStream":
            shards = [{"ShardId": CHILD, "ParentShardId": PARENT}, {"ShardId": PARENT}]
            index = 1 if payload.get("ExclusiveStartShardId") == CHILD else 0
            page: dict[str, Any] = {"StreamArn": ARN, "Shards": [shards[index]]}
            if index == 0:
                page["LastEvaluatedShardId"] = CHILD
            return 200, {"StreamDescription": page}
        if operation == "GetShardIterator":
            after = payload.get("SequenceNumber", seq(0))
            return 200, {"ShardIterator": f"{payload['ShardId']}/{after}"}
        if operation == "GetRecords":
            return self._records(payload["ShardIterator"])
        return 400, {"__type": "UnknownOperationException"}

    def _records(self, iterator: str) -> tuple[int, dict[str, Any]]:
        shard, _, after = iterator.partition("/")
        if shard in self.expire_once:
            self.expire_once.discard(shard)
            return 400, {"__type": "com.amazonaws.dynamodb.v20120810#ExpiredIteratorException",
                         "message": "Iterator expired"}  # fmt: skip
        found: Sequence[dict[str, Any]] = [
            r for r in self.records[shard] if int(r["dynamodb"]["SequenceNumber"]) > int(after)
        ]
        answer: dict[str, Any] = {"Records": list(found)}
        last = found[-1]["dynamodb"]["SequenceNumber"] if found else after
        if found or shard not in self.closed:
            answer["NextShardIterator"] = f"{shard}/{last}"
        return 200, answer


class _Handler(BaseHTTPRequestHandler):
    fake: FakeStreams

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length) or b"{}")
        operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
        status, answer = self.fake.answer(operation, payload)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass
