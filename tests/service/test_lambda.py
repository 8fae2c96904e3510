"""`compiler.aws_lambda:handler` with the event AWS sends, built from the real records
of moto's stream; the publish goes to a real bare repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from compiler.aws_lambda import handler
from compiler.service.streams import stream_arn
from compiler.sources.dynamodb import DynamoDBStore
from tests.conftest import REGION, ROOT
from tests.service.harness import branches
from tests.service.test_serve import NEW_CLUSTER, table  # noqa: F401


def lambda_event(store: DynamoDBStore) -> dict[str, Any]:
    """Every record of the stream so far, shaped as Lambda delivers them."""
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=store.endpoint_url)
    streams = boto3.client("dynamodbstreams", region_name=REGION, endpoint_url=store.endpoint_url)
    arn = stream_arn(client, store.table)
    assert arn is not None
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for record in streams.get_records(ShardIterator=iterator)["Records"]:
            change = dict(record["dynamodb"])
            change["ApproximateCreationDateTime"] = change[
                "ApproximateCreationDateTime"
            ].timestamp()
            records.append({**record, "dynamodb": change, "eventSource": "aws:dynamodb",
                            "awsRegion": REGION, "eventSourceARN": arn})  # fmt: skip
    return {"Records": records}


@pytest.fixture
def configured(
    monkeypatch: pytest.MonkeyPatch,
    remote: Path,
    table: DynamoDBStore,  # noqa: F811
) -> DynamoDBStore:
    assert table.endpoint_url is not None
    monkeypatch.setenv("GITOPS_PROJECT", str(ROOT))
    monkeypatch.setenv("GITOPS_REPO", str(remote))
    monkeypatch.setenv("GITOPS_FORGE", "none")
    monkeypatch.setenv("GITOPS_TABLE", table.table)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", table.endpoint_url)
    return table


def test_a_new_cluster_record_is_published(configured: DynamoDBStore, remote: Path) -> None:
    configured.put("cluster#dev-k3s-2", {}, cluster=NEW_CLUSTER, author="t", comment="new")
    event = lambda_event(configured)
    assert event["Records"]
    assert handler(event, None) == {"batchItemFailures": []}
    assert set(branches(remote)) == {"main", "gitops-compiler/main/cluster-dev-k3s-2"}


def test_a_failed_publish_reports_the_batch_for_a_retry(
    configured: DynamoDBStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GITOPS_REPO", str(tmp_path / "no-such-repository.git"))
    configured.put("cluster#dev-k3s-2", {}, cluster=NEW_CLUSTER, author="t", comment="new")
    event = lambda_event(configured)
    first = event["Records"][0]["dynamodb"]["SequenceNumber"]
    assert handler(event, None) == {"batchItemFailures": [{"itemIdentifier": first}]}


def test_records_of_items_that_are_not_layers_publish_nothing(
    configured: DynamoDBStore, remote: Path
) -> None:
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=configured.endpoint_url)
    client.put_item(TableName=configured.table, Item={"pk": {"S": "lease#serve"},
                                                      "sk": {"S": "lease"}})  # fmt: skip
    assert handler(lambda_event(configured), None) == {"batchItemFailures": []}
    assert handler({"Records": []}, None) == {"batchItemFailures": []}
    assert set(branches(remote)) == {"main"}
