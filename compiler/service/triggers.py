"""Triggers and their bounded queue; the provisioner's calls kept durably in the table.

A trigger names clusters (the provisioner's call, a poll) or changed layers (a
stream batch: the actor resolves them to clusters as `watch` does). The queue
holds at most `capacity` triggers: the HTTP endpoint answers 429 when it is
full, the stream reader waits (back-pressure), so memory stays bounded. `take`
returns everything that arrived in one debounce window: one compile, one PR.

A provisioner's call is written to the table before it is answered (pk
`trigger#pending`, one item per delivery, with a `delivery#<id>` item in the
same transaction so a redelivery is recognised by either replica); the lease
holder publishes them and only then deletes them, so a replica killed
mid-publish loses no call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from compiler.errors import OutsideError

PENDING_PK = "trigger#pending"
DELIVERY_PREFIX = "delivery#"
DELIVERY_DAYS = 7  # how long a delivery id is remembered (the item's `expires_at`, for TTL)


@dataclass(frozen=True)
class Position:
    """How far a stream batch reaches in one shard: checkpointed after its publish."""

    shard: str
    sequence: str
    created: float  # the newest record's ApproximateCreationDateTime, for the lag metric
    closes: bool = False  # the shard was read to its end (closed by a reshard)


@dataclass(frozen=True)
class Trigger:
    source: str  # http, stream, poll
    run_id: str
    clusters: tuple[str, ...] = ()
    pks: tuple[str, ...] = ()  # changed layers (stream); resolved to clusters by the actor
    delivery: str | None = None  # the provisioner's delivery id: its table item goes after
    positions: tuple[Position, ...] = ()


@dataclass
class TriggerQueue:
    capacity: int
    _items: list[Trigger] = field(default_factory=list)
    _ready: threading.Condition = field(default_factory=threading.Condition)

    def offer(self, trigger: Trigger) -> bool:
        """Queue it unless full (False: the caller answers 429)."""
        with self._ready:
            if len(self._items) >= self.capacity:
                return False
            self._items.append(trigger)
            self._ready.notify_all()
            return True

    def put(self, trigger: Trigger, stop: threading.Event) -> bool:
        """Queue it, waiting while full (back-pressure); False when stopped first."""
        with self._ready:
            while len(self._items) >= self.capacity:
                if stop.is_set():
                    return False
                self._ready.wait(0.2)
            self._items.append(trigger)
            self._ready.notify_all()
            return True

    def take(self, debounce: float, wait: float) -> list[Trigger]:
        """Wait up to `wait` s for a trigger, then `debounce` s more for the rest of its
        window; everything queued by then, oldest first (may be empty)."""
        with self._ready:
            if not self._items:
                self._ready.wait(wait)
            if not self._items:
                return []
        time.sleep(debounce)  # outside the lock: triggers keep arriving meanwhile
        with self._ready:
            taken, self._items = self._items, []
            self._ready.notify_all()
            return taken

    def depth(self) -> int:
        with self._ready:
            return len(self._items)


class Accepted(Exception):
    """Not an error: the delivery id was seen before (its run id and cluster)."""

    def __init__(self, run_id: str, cluster: str) -> None:
        super().__init__(run_id)
        self.run_id, self.cluster = run_id, cluster


@dataclass
class DurableTriggers:
    """The provisioner's calls in the table: recorded, listed by the holder, then deleted."""

    client: Any
    table: str

    def record(self, delivery: str, cluster: str, run_id: str, now: float) -> None:
        """Write the call; raise Accepted when this delivery id was recorded before."""
        expires = str(int(now) + DELIVERY_DAYS * 86400)
        item = {"cluster": {"S": cluster}, "run_id": {"S": run_id}, "at": {"N": f"{now:.3f}"}}
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self.table, "Item": {
                        "pk": {"S": DELIVERY_PREFIX + delivery}, "sk": {"S": "delivery"},
                        **item, "expires_at": {"N": expires}},
                        "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Put": {"TableName": self.table, "Item": {
                        "pk": {"S": PENDING_PK}, "sk": {"S": delivery}, **item}}},
                ]
            )  # fmt: skip
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise _outside(err, "recording a trigger") from None
            seen = self._delivery(delivery)
            raise Accepted(seen.get("run_id", ""), seen.get("cluster", "")) from None
        except BotoCoreError as err:
            raise _outside(err, "recording a trigger") from None

    def _delivery(self, delivery: str) -> dict[str, str]:
        key = {"pk": {"S": DELIVERY_PREFIX + delivery}, "sk": {"S": "delivery"}}
        try:
            got = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True)
        except (ClientError, BotoCoreError) as err:
            raise _outside(err, "reading a delivery") from None
        return {k: v["S"] for k, v in got.get("Item", {}).items() if "S" in v}

    def pending(self, limit: int) -> list[Trigger]:
        try:
            page = self.client.query(
                TableName=self.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": PENDING_PK}},
                ConsistentRead=True,
                Limit=limit,
            )
        except (ClientError, BotoCoreError) as err:
            raise _outside(err, "listing pending triggers") from None
        return [_pending_trigger(item) for item in page.get("Items", [])]

    def count(self, limit: int) -> int:
        try:
            page = self.client.query(
                TableName=self.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": PENDING_PK}},
                Select="COUNT",
                Limit=limit,
            )
        except (ClientError, BotoCoreError) as err:
            raise _outside(err, "counting pending triggers") from None
        return int(page.get("Count", 0))

    def done(self, deliveries: Sequence[str]) -> None:
        for delivery in deliveries:
            key = {"pk": {"S": PENDING_PK}, "sk": {"S": delivery}}
            try:
                self.client.delete_item(TableName=self.table, Key=key)
            except (ClientError, BotoCoreError) as err:
                raise _outside(err, "deleting a published trigger") from None


def _pending_trigger(item: Mapping[str, Any]) -> Trigger:
    return Trigger(
        source="http",
        run_id=item.get("run_id", {}).get("S", ""),
        clusters=(item.get("cluster", {}).get("S", ""),),
        delivery=item["sk"]["S"],
    )


def _outside(err: Exception, doing: str) -> OutsideError:
    return OutsideError(f"DynamoDB while {doing}: {err}")
