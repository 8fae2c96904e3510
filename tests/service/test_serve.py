"""`serve` end to end: moto's server over HTTP (with its stream), a real bare repository,
the real cue; the service runs as its own process and is stopped by each test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from compiler.service.streams import enable_stream
from compiler.sources.dynamodb import DynamoDBStore, client_config
from compiler.sources.snapshot import SnapshotStore, seed
from tests.conftest import REGION, ROOT
from tests.service.harness import (
    TOKEN,
    Served,
    body,
    branches,
    commits_on,
    eventually,
    serving,
    signed,
)

NEW_CLUSTER = {
    "name": "dev-k3s-2", "env": "dev", "region": "eu-west-1", "server": "https://dev-k3s-2:6443",
}  # fmt: skip


@pytest.fixture
def table(server_store: DynamoDBStore) -> DynamoDBStore:
    """The examples in a table whose stream is on (after the seed: not replayed)."""
    seed(server_store, SnapshotStore(ROOT / "examples"))
    client = boto3.client(
        "dynamodb", region_name=REGION, endpoint_url=server_store.endpoint_url,
        config=client_config(),
    )  # fmt: skip
    enable_stream(client, server_store.table)
    return server_store


def serve_args(remote: Path, store: DynamoDBStore, *extra: str) -> list[str]:
    assert store.endpoint_url is not None
    return ["serve", "--repo", str(remote), "--forge", "none", "--listen", "127.0.0.1:0",
            "--project", str(ROOT), "--endpoint-url", store.endpoint_url,
            "--table", store.table, "--debounce", "2", "--lease-seconds", "3", *extra]  # fmt: skip


@pytest.fixture
def served(remote: Path, table: DynamoDBStore) -> Iterator[Served]:
    with serving(serve_args(remote, table)) as service:
        service.wait_for(r"lease taken", 30)
        yield service
        assert service.stop() == 0


def item(store: DynamoDBStore, pk: str, sk: str) -> dict[str, object] | None:
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=store.endpoint_url)
    found: dict[str, object] | None = client.get_item(
        TableName=store.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
    ).get("Item")
    return found


def test_a_bad_signature_is_401_and_nothing_else_happens(
    served: Served, remote: Path, table: DynamoDBStore
) -> None:
    payload = body(cluster="dev-k3s")
    headers = signed(payload, secret="not-the-secret")
    status, answer = served.request("POST", "/v1/clusters/dev-k3s/bootstrap", payload, headers)
    assert status == 401
    assert "signature" in json.loads(answer)["error"]
    status, _ = served.request(
        "POST", "/v1/clusters/dev-k3s/bootstrap", payload, {"Authorization": "Bearer wrong"}
    )
    assert status == 401
    served.wait_for(r"listening", 1)
    import time

    time.sleep(4)  # two debounce windows: had anything been queued, it would run now
    assert set(branches(remote)) == {"main"}
    assert item(table, "trigger#pending", "x") is None
    assert served.metric("gitops_triggers_total", source="http", result="401") == 2
    assert served.metric("gitops_runs_total", trigger="http", outcome="success") == 0
    assert not [line for line in served.lines if " run " in line]


def test_a_new_cluster_record_is_one_branch(
    served: Served, remote: Path, table: DynamoDBStore
) -> None:
    table.put("cluster#dev-k3s-2", {}, cluster=NEW_CLUSTER, author="test", comment="new")
    branch = "gitops-compiler/main/cluster-dev-k3s-2"
    eventually(lambda: branch in branches(remote), 180, f"branch {branch}")
    eventually(
        lambda: served.metric("gitops_runs_total", trigger="stream", outcome="success") == 1,
        30, "the run counted",
    )  # fmt: skip
    assert set(branches(remote)) == {"main", branch}
    assert commits_on(remote, branch) == 1
    assert served.metric("gitops_last_successful_publish_timestamp_seconds") > 0
    shards = [line for line in served.request("GET", "/metrics")[1].decode().splitlines()
              if line.startswith("gitops_stream_lag_seconds{")]  # fmt: skip
    assert shards, "the stream lag per shard is exported"


def test_the_provisioner_call_is_202_idempotent_and_publishes_its_cluster(
    served: Served, remote: Path, table: DynamoDBStore
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "X-Delivery-Id": "d-1"}
    status, answer = served.request("POST", "/v1/clusters/test-k3s/bootstrap", b"{}", auth)
    assert status == 202
    first = json.loads(answer)
    status, again = served.request("POST", "/v1/clusters/test-k3s/bootstrap", b"{}", auth)
    assert (status, json.loads(again)["run_id"]) == (202, first["run_id"])
    assert json.loads(again)["status"] == "duplicate"
    status, conflict = served.request("POST", "/v1/clusters/dev-k3s/bootstrap", b"{}", auth)
    assert status == 409 and "test-k3s" in json.loads(conflict)["error"]
    status, missing = served.request(
        "POST", "/v1/clusters/no-such/bootstrap", b"{}", {**auth, "X-Delivery-Id": "d-2"}
    )
    assert status == 404 and json.loads(missing)["error"]
    branch = "gitops-compiler/main/cluster-test-k3s"
    eventually(lambda: branch in branches(remote), 180, f"branch {branch}")
    served.wait_for(rf"run {first['run_id']}: 1 trigger", 10)
    eventually(lambda: item(table, "trigger#pending", "d-1") is None, 30, "the call served")
    assert set(branches(remote)) == {"main", branch}


def test_health_ready_and_metrics(served: Served) -> None:
    assert served.request("GET", "/healthz")[0] == 200
    status, answer = served.request("GET", "/readyz")
    assert (status, json.loads(answer)["checks"]) == (
        200, {"cue": "ok", "dynamodb": "ok", "git": "ok"},
    )  # fmt: skip
    text = served.request("GET", "/metrics")[1].decode()
    for name in ("gitops_queue_depth", "gitops_lease_held 1.0", "gitops_step_duration_seconds"):
        assert name in text
