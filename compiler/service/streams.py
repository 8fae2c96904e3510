"""DynamoDB Streams on the config table: which layers changed, shard by shard.

Shards are listed with `DescribeStream` (paged); a child shard of a reshard is
read only once its parent is finished, so a layer's versions stay in order.
Each shard is read from its checkpoint (pk `stream#<shard id>`, sk
`checkpoint`, written only after the publish the records caused succeeded,
and only by the lease holder) or, without one, from the trim horizon. In
memory the reader runs ahead of the checkpoint by what is queued, never more
than the queue holds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from compiler.errors import OutsideError, UsageError
from compiler.model import CLUSTER_PK_PREFIX
from compiler.options import SourceOptions, open_project, open_store
from compiler.service.triggers import Position
from compiler.sources.dynamodb import DynamoDBStore, client_config
from compiler.sources.proposals import PROPOSAL_PREFIX

CHECKPOINT_PREFIX = "stream#"
_RECORDS_PER_READ = 1000  # GetRecords' maximum


def enable_stream(client: Any, table: str) -> str:
    """Turn on the table's stream (NEW_IMAGE) unless on already; its ARN.

    For `table create --stream` and `table migrate --stream`."""
    try:
        described = client.describe_table(TableName=table)["Table"]
        spec = described.get("StreamSpecification") or {}
        if spec.get("StreamEnabled"):
            if spec.get("StreamViewType") not in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
                raise OutsideError(
                    f"table {table}: its stream shows {spec.get('StreamViewType')}; "
                    "serve needs NEW_IMAGE (disable the stream and run this again)"
                )
            return str(described["LatestStreamArn"])
        answer = client.update_table(
            TableName=table,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )
    except (ClientError, BotoCoreError) as err:
        raise OutsideError(f"DynamoDB while enabling the stream of {table}: {err}") from None
    return str(answer["TableDescription"]["LatestStreamArn"])


def stream_arn(client: Any, table: str) -> str | None:
    try:
        described = client.describe_table(TableName=table)["Table"]
    except (ClientError, BotoCoreError) as err:
        raise OutsideError(f"DynamoDB while describing {table}: {err}") from None
    if not (described.get("StreamSpecification") or {}).get("StreamEnabled"):
        return None
    return str(described["LatestStreamArn"])


def layer_pks(records: Iterable[Mapping[str, Any]]) -> tuple[set[str], float]:
    """The layers that got a new version (inserts and updates of layer items; our own
    lease, checkpoint and trigger items are not layers) and the newest record's time."""
    pks: set[str] = set()
    newest = 0.0
    for record in records:
        change = record.get("dynamodb", {})
        created = change.get("ApproximateCreationDateTime", 0)
        newest = max(newest, created.timestamp() if hasattr(created, "timestamp") else created)
        if record.get("eventName") == "REMOVE":
            continue
        pk = change.get("Keys", {}).get("pk", {}).get("S", "")
        if change.get("Keys", {}).get("sk", {}).get("S", "").startswith(PROPOSAL_PREFIX):
            continue  # a proposal is not a version until its approval writes one
        if pk == "defaults" or pk.startswith((CLUSTER_PK_PREFIX, "env#")):
            pks.add(pk)
    return pks, newest


@dataclass
class _Shard:
    parent: str | None
    iterator: str | None = None
    last: str | None = None  # the last sequence number read (in memory)
    finished: bool = False


@dataclass
class StreamReader:
    client: Any  # dynamodb
    streams: Any  # dynamodbstreams
    table: str
    arn: str
    _shards: dict[str, _Shard] = field(default_factory=dict)

    def reset(self) -> None:
        """Forget positions in memory (the lease was lost): resume from checkpoints."""
        self._shards.clear()

    def read(self) -> list[tuple[str, list[Mapping[str, Any]]]]:
        """One round over the readable shards: (shard id, records) for those with any."""
        self._refresh()
        batches = []
        for shard_id in sorted(self._shards):
            shard = self._shards[shard_id]
            parent = self._shards.get(shard.parent or "")
            if shard.finished or (parent is not None and not parent.finished):
                continue
            records = self._records(shard_id, shard)
            if records:
                batches.append((shard_id, records))
        return batches

    def _refresh(self) -> None:
        described: list[Mapping[str, Any]] = []
        start: str | None = None
        try:
            while True:
                page = self.streams.describe_stream(
                    StreamArn=self.arn, **({"ExclusiveStartShardId": start} if start else {})
                )["StreamDescription"]
                described.extend(page.get("Shards", []))
                start = page.get("LastEvaluatedShardId")
                if not start:
                    break
        except (ClientError, BotoCoreError) as err:
            raise OutsideError(f"DynamoDB Streams while listing shards: {err}") from None
        for entry in described:
            if entry["ShardId"] not in self._shards:
                shard = _Shard(parent=entry.get("ParentShardId"))
                shard.last, shard.finished = self._checkpoint(entry["ShardId"])
                self._shards[entry["ShardId"]] = shard

    def _records(self, shard_id: str, shard: _Shard) -> list[Mapping[str, Any]]:
        try:
            if shard.iterator is None:
                shard.iterator = self._iterator(shard_id, shard.last)
            answer = self.streams.get_records(ShardIterator=shard.iterator, Limit=_RECORDS_PER_READ)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            if code in ("ExpiredIteratorException", "TrimmedDataAccessException"):
                shard.iterator = None  # again from the last record read, next round
                return []
            raise OutsideError(f"DynamoDB Streams while reading {shard_id}: {err}") from None
        except BotoCoreError as err:
            raise OutsideError(f"DynamoDB Streams while reading {shard_id}: {err}") from None
        records: list[Mapping[str, Any]] = answer.get("Records", [])
        shard.iterator = answer.get("NextShardIterator")
        if records:
            shard.last = records[-1]["dynamodb"]["SequenceNumber"]
        if shard.iterator is None:
            shard.finished = True  # closed by a reshard and read to its end
        return records

    def _iterator(self, shard_id: str, after: str | None) -> str:
        if after is None:
            answer = self.streams.get_shard_iterator(
                StreamArn=self.arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )
        else:
            answer = self.streams.get_shard_iterator(
                StreamArn=self.arn,
                ShardId=shard_id,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                SequenceNumber=after,
            )
        return str(answer["ShardIterator"])

    def _checkpoint(self, shard_id: str) -> tuple[str | None, bool]:
        key = {"pk": {"S": CHECKPOINT_PREFIX + shard_id}, "sk": {"S": "checkpoint"}}
        try:
            item = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True)
        except (ClientError, BotoCoreError) as err:
            raise OutsideError(
                f"DynamoDB while reading the checkpoint of {shard_id}: {err}"
            ) from None
        found = item.get("Item")
        if not found:
            return None, False
        return found["sequence"]["S"], bool(found.get("finished", {}).get("BOOL", False))

    def finished(self, shard_id: str) -> bool:
        shard = self._shards.get(shard_id)
        return shard is not None and shard.finished


def checkpoint_items(table: str, positions: Sequence[Position]) -> list[dict[str, Any]]:
    """The transaction's puts that advance each shard to the furthest position given."""
    furthest: dict[str, Position] = {}
    for position in positions:
        known = furthest.get(position.shard)
        if known is None or int(position.sequence) > int(known.sequence):
            furthest[position.shard] = position
    return [
        {"Put": {"TableName": table, "Item": {
            "pk": {"S": CHECKPOINT_PREFIX + shard}, "sk": {"S": "checkpoint"},
            "sequence": {"S": p.sequence}, "finished": {"BOOL": p.closes},
            "at": {"N": f"{time.time():.3f}"}}}}
        for shard, p in sorted(furthest.items())
    ]  # fmt: skip


def enable_config_stream(source: SourceOptions) -> tuple[str, str]:
    """The config table's stream on (NEW_IMAGE): (table, stream ARN)."""
    project = open_project(source)
    store = open_store(source, project)
    if not isinstance(store, DynamoDBStore):
        raise UsageError("a stream is a DynamoDB table's: use --source dynamodb")
    client = boto3.client(
        "dynamodb", region_name=project.region, endpoint_url=store.endpoint_url,
        config=client_config(),
    )  # fmt: skip
    return store.table, enable_stream(client, store.table)
