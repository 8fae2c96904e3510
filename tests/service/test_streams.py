"""The stream reader: a reshard read parent first, paged listings, expired iterators
renewed, and checkpoints (in moto's server) resumed from."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from compiler.service.streams import CHECKPOINT_PREFIX, StreamReader, checkpoint_items, layer_pks
from compiler.service.triggers import Position
from compiler.sources.dynamodb import DynamoDBStore
from tests.conftest import REGION
from tests.service.fake_streams import ARN, CHILD, PARENT, FakeStreams, seq


@pytest.fixture
def streams() -> Iterator[FakeStreams]:
    with FakeStreams() as fake:
        yield fake


def reader(store: DynamoDBStore, fake: FakeStreams) -> StreamReader:
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=store.endpoint_url)
    streams = boto3.client(
        "dynamodbstreams", region_name=REGION, endpoint_url=fake.url,
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )  # fmt: skip
    return StreamReader(client, streams, store.table, ARN)


def sequences(batches: list[tuple[str, list[Any]]]) -> list[tuple[str, list[str]]]:
    """(shard, the records' numbers as `record` made them)."""
    return [
        ("parent" if shard == PARENT else "child",
         [str(int(r["dynamodb"]["SequenceNumber"]) - 10**20) for r in rs])
        for shard, rs in batches
    ]  # fmt: skip


def test_a_child_shard_is_read_only_after_its_parent_is_read_to_its_end(
    server_store: DynamoDBStore, streams: FakeStreams
) -> None:
    stream = reader(server_store, streams)
    assert stream.read() == []  # the parent's iterator expired; the child waits
    assert sequences(stream.read()) == [("parent", ["1", "2"])]
    assert not stream.finished(PARENT)
    assert sequences(stream.read()) == [("child", ["3"])]  # parent closed this round
    assert stream.finished(PARENT) and not stream.finished(CHILD)
    assert stream.read() == []
    listed = [p for op, p in streams.calls if op == "DescribeStream"]
    assert {p.get("ExclusiveStartShardId") for p in listed} == {None, CHILD}


def test_a_restart_resumes_after_the_checkpoints(
    server_store: DynamoDBStore, streams: FakeStreams
) -> None:
    first = reader(server_store, streams)
    first.read()
    first.read()
    items = checkpoint_items(server_store.table, [Position(PARENT, seq(1), 0.0)])
    first.client.transact_write_items(TransactItems=items)
    again = reader(server_store, streams)
    assert sequences(again.read()) == [("parent", ["2"])]
    closed = checkpoint_items(server_store.table, [Position(PARENT, seq(2), 0.0, closes=True)])
    again.client.transact_write_items(TransactItems=closed)
    third = reader(server_store, streams)
    assert sequences(third.read()) == [("child", ["3"])]  # the parent is done


def test_checkpoint_items_keep_the_furthest_position_per_shard() -> None:
    items = checkpoint_items("t", [Position("a", "10", 0), Position("a", "9", 0),
                                   Position("b", "1", 0, closes=True)])  # fmt: skip
    shown = [(i["Put"]["Item"]["pk"]["S"], i["Put"]["Item"]["sequence"]["S"],
              i["Put"]["Item"]["finished"]["BOOL"]) for i in items]  # fmt: skip
    assert shown == [(f"{CHECKPOINT_PREFIX}a", "10", False), (f"{CHECKPOINT_PREFIX}b", "1", True)]


def test_only_layer_items_are_changes() -> None:
    def change(pk: str, event: str = "INSERT") -> dict[str, Any]:
        return {"eventName": event, "dynamodb": {"Keys": {"pk": {"S": pk}},
                                                 "ApproximateCreationDateTime": 5.0}}  # fmt: skip

    records = [change("defaults"), change("env#prod"), change("cluster#a"), change("lease#serve"),
               change("stream#x"), change("trigger#pending"), change("lkg#a"),
               change("cluster#b", "REMOVE")]  # fmt: skip
    assert layer_pks(records) == ({"defaults", "env#prod", "cluster#a"}, 5.0)
