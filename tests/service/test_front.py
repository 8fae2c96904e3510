"""The HTTP front in-process over real HTTP, against moto's server: authentication,
the JSON errors, the queue bound (429) and readiness."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from itertools import count

import boto3
import pytest

from compiler.service.health import Readiness, dynamodb_check
from compiler.service.http import MAX_BODY, Credentials, Front, listen
from compiler.service.metrics import ServiceMetrics
from compiler.service.triggers import DurableTriggers, Trigger, TriggerQueue
from compiler.sources.dynamodb import DynamoDBStore, client_config
from compiler.sources.snapshot import SnapshotStore, seed
from tests.conftest import REGION, ROOT
from tests.service.harness import SECRET, TOKEN, signed

Answer = tuple[int, dict[str, object]]


class Client:
    def __init__(self, address: str, front: Front) -> None:
        self.address, self.front = address, front

    def post(self, path: str, body: bytes = b"{}", **headers: str) -> Answer:
        req = urllib.request.Request(
            f"http://{self.address}{path}", data=body, method="POST",
            headers={k.replace("_", "-"): v for k, v in headers.items()},
        )  # fmt: skip
        return self._answer(req)

    def get(self, path: str) -> Answer:
        return self._answer(urllib.request.Request(f"http://{self.address}{path}"))

    @staticmethod
    def _answer(req: urllib.request.Request) -> Answer:
        try:
            with urllib.request.urlopen(req, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as err:
            with err:
                return err.code, json.loads(err.read())


@pytest.fixture
def client(server_store: DynamoDBStore) -> Iterator[Client]:
    seed(server_store, SnapshotStore(ROOT / "examples"))
    dynamodb = boto3.client(
        "dynamodb", region_name=REGION, endpoint_url=server_store.endpoint_url,
        config=client_config(),
    )  # fmt: skip
    ids = count(1)
    front = Front(
        server_store, TriggerQueue(3), DurableTriggers(dynamodb, server_store.table),
        ServiceMetrics(), Readiness({"dynamodb": dynamodb_check(dynamodb, "no-such-table")}, 60),
        Credentials(TOKEN, SECRET), lambda: f"run{next(ids)}",
    )  # fmt: skip
    server = listen("127.0.0.1", 0, front)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield Client(f"{host!s}:{port}", front)
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_bearer_token_and_signature_are_accepted_and_nothing_else(client: Client) -> None:
    path = "/v1/clusters/dev-k3s/bootstrap"
    body = b'{"event": "created"}'
    assert client.post(path, body, Authorization=f"Bearer {TOKEN}", X_Delivery_Id="a")[0] == 202
    assert client.post(path, body, X_GitHub_Delivery="b", **_headers(signed(body)))[0] == 202
    refused = [
        client.post(path, body, Authorization=f"Bearer {TOKEN}x", X_Delivery_Id="c"),
        client.post(path, body, Authorization=f"Basic {TOKEN}", X_Delivery_Id="d"),
        client.post(path, body + b" ", X_Delivery_Id="e", **_headers(signed(body))),
        client.post(path, body, X_Delivery_Id="f", X_Hub_Signature_256="sha256=00"),
        client.post(path, body, X_Delivery_Id="g"),
    ]
    assert [status for status, _ in refused] == [401] * 5
    assert all(answer["error"] for _, answer in refused)
    assert client.front.durable.count(100) == 2
    assert [t.delivery for t in client.front.queue.take(0, 0)] == ["a", "b"]


def test_queue_full_is_429_and_nothing_is_recorded(client: Client) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for number in range(3):
        client.front.queue.offer(Trigger("stream", f"s{number}"))
    status, answer = client.post("/v1/clusters/dev-k3s/bootstrap", X_Delivery_Id="z", **auth)
    assert status == 429 and "full" in str(answer["error"])
    assert client.front.durable.count(100) == 0
    client.front.queue.take(0, 0)
    for number in range(3):  # the calls recorded in the table count towards the bound too
        delivery = f"p{number}"
        assert (
            client.post("/v1/clusters/dev-k3s/bootstrap", X_Delivery_Id=delivery, **auth)[0] == 202
        )
        client.front.queue.take(0, 0)
    assert client.post("/v1/clusters/dev-k3s/bootstrap", X_Delivery_Id="p4", **auth)[0] == 429


def test_unknown_paths_big_bodies_bad_delivery_ids(client: Client) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/v1/clusters/Not_A_Name/bootstrap", **auth)[0] == 404
    assert client.post("/v1/other", **auth)[0] == 404
    assert client.get("/nothing")[0] == 404
    assert client.post("/v1/clusters/dev-k3s/bootstrap", X_Delivery_Id="a b", **auth)[0] == 400
    big = b"x" * (MAX_BODY + 1)
    assert client.post("/v1/clusters/dev-k3s/bootstrap", big, **auth)[0] == 413


def test_readiness_names_the_failing_check(client: Client) -> None:
    status, answer = client.get("/readyz")
    assert status == 503 and answer["ready"] is False
    assert "no-such-table" in str(answer["checks"])
    assert client.get("/healthz") == (200, {"status": "ok"})


def _headers(headers: dict[str, str]) -> dict[str, str]:
    return {k.replace("-", "_"): v for k, v in headers.items()}
