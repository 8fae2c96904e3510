"""`table migrate` and `table verify`: the heads and version numbers of a whole table.

One Scan of the keys (pk, sk, version) shows every layer's versions and head; the
items compared or copied are then read in batches (heads.py), so both stay a few
calls per hundred layers, as a compile does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from compiler.model import layer_name_from_pk, sort_key_for
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.heads import HeadReader
from compiler.sources.items import HEAD_SK, is_layer_pk

_VERSION_SK = re.compile(r"^v#(\d{10})$")


@dataclass
class LayerKeys:
    versions: list[int] = field(default_factory=list)
    head: int | None = None  # the version the head names; None: no head

    @property
    def latest(self) -> int:
        return max(self.versions, default=0)


@dataclass(frozen=True)
class Migration:
    written: Sequence[str]  # layer names whose head was added or repaired
    current: int  # heads that were right already


def table_keys(store: DynamoDBStore) -> dict[str, LayerKeys]:
    """Every layer pk (not last-known-good, lease or stream records) and its keys."""
    layers: dict[str, LayerKeys] = {}
    request: dict[str, Any] = {
        "TableName": store.table,
        "ProjectionExpression": "pk, sk, #v",
        "ExpressionAttributeNames": {"#v": "version"},
        "ConsistentRead": True,
    }
    with store.errors_while("reading the table's keys"):
        while True:
            page = store.client.scan(**request)
            for item in page.get("Items", []):
                _add(layers, item)
            if "LastEvaluatedKey" not in page:
                return dict(sorted(layers.items()))
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _add(layers: dict[str, LayerKeys], item: Mapping[str, Any]) -> None:
    pk, sk = item["pk"]["S"], item["sk"]["S"]
    if not is_layer_pk(pk):
        return
    keys = layers.setdefault(pk, LayerKeys())
    match = _VERSION_SK.match(sk)
    if match:
        keys.versions.append(int(match.group(1)))
    elif sk == HEAD_SK:
        number = item.get("version", {}).get("N", "")
        keys.head = int(number) if number.isdigit() else 0


def verify(store: DynamoDBStore) -> list[str]:
    """What is wrong with the table's heads and numbers, one line each (empty: nothing)."""
    layers = table_keys(store)
    findings = []
    for pk, keys in layers.items():
        name = layer_name_from_pk(pk)
        missing = sorted(set(range(1, keys.latest + 1)) - set(keys.versions))
        if missing:
            findings.append(
                f"{name}: gap: version(s) {', '.join(map(str, missing))} missing below "
                f"{keys.latest}; a version written after a gap hides from the stale-head check"
            )
        if keys.head is None and keys.versions:
            findings.append(f"{name}: no head (read by Query; `table migrate` adds it)")
        elif keys.head is not None and keys.head != keys.latest:
            state = "stale" if keys.head < keys.latest else "ahead of the versions"
            findings.append(
                f"{name}: head {state}: it names version {keys.head}, the latest is "
                f"{keys.latest} (`table migrate` repairs it)"
            )
    findings += [
        f"{layer_name_from_pk(pk)}: head differs from version {layers[pk].latest} it copies "
        "(`table migrate` rewrites it)"
        for pk in _differing(store, layers)
    ]
    return findings


def _differing(store: DynamoDBStore, layers: Mapping[str, LayerKeys]) -> list[str]:
    """Layers whose head names the latest version but does not hold the same content."""
    named = [pk for pk, keys in layers.items() if keys.head and keys.head == keys.latest]
    items = HeadReader(store).batch_get(
        [(pk, HEAD_SK) for pk in named] + [(pk, sort_key_for(layers[pk].latest)) for pk in named]
    )
    differ = []
    for pk in named:
        head = dict(items.get((pk, HEAD_SK), {}))
        version = dict(items.get((pk, sort_key_for(layers[pk].latest)), {}))
        head.pop("sk", None)
        version.pop("sk", None)
        if head != version:
            differ.append(pk)
    return differ


def migrate(store: DynamoDBStore) -> Migration:
    """Add or repair every layer's head, idempotently: a second run writes nothing."""
    layers = table_keys(store)
    differ = set(_differing(store, layers))
    todo = [
        pk
        for pk, keys in layers.items()
        if keys.versions and (keys.head != keys.latest or pk in differ)
    ]
    latest = HeadReader(store).batch_get([(pk, sort_key_for(layers[pk].latest)) for pk in todo])
    written = []
    for pk in todo:
        item = latest.get((pk, sort_key_for(layers[pk].latest)))
        if item is not None and _put_head(store, {**item, "sk": {"S": HEAD_SK}}, layers[pk].head):
            written.append(layer_name_from_pk(pk))
    return Migration(
        written=written, current=sum(1 for k in layers.values() if k.versions) - len(todo)
    )


def _put_head(store: DynamoDBStore, item: Mapping[str, Any], seen: int | None) -> bool:
    """Replace the head only as it was seen: a writer that moved it meanwhile wins."""
    if seen is None:
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(sk)"}
    else:
        condition = {
            "ConditionExpression": "#v = :seen",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": {":seen": {"N": str(seen)}},
        }
    with store.errors_while(f"writing the head of {item['pk']['S']}"):
        try:
            store.client.put_item(TableName=store.table, Item=dict(item), **condition)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
    return True
