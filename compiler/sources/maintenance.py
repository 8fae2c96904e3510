"""`table migrate` and `table verify`: the heads and version numbers of a whole table.

One Scan of the keys (pk, sk, version) shows every layer's versions and head; the
items compared or copied are then read in batches (heads.py), so migrate stays a few
calls per hundred layers, as a compile does. Verify scans the items whole, to check
every version as a compile would check it (a pinned or `--as-of` compile, a rollback,
can read any of them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from compiler.errors import InputError, OutsideError
from compiler.model import LayerVersion, layer_name_from_pk, sort_key_for
from compiler.sources.dynamodb import DynamoDBStore, version_of_item
from compiler.sources.heads import HeadReader
from compiler.sources.items import HEAD_SK, is_layer_pk, is_version_key
from compiler.sources.listing import SK_INDEX, described, sk_index_definition, sk_index_state

_PROPOSAL_SK = re.compile(r"^proposal#\d{10}$")

# The checks of a version beyond its item's own (items.py): the cluster's facts, which
# need the project's schema (commands/config.py passes them). Raises InputError.
Check = Callable[[LayerVersion], object]


@dataclass
class LayerKeys:
    versions: list[int] = field(default_factory=list)
    head: int | None = None  # the version the head names (0: none readable); None: no head
    head_version: Mapping[str, Any] | None = None  # the head's `version` as stored, if any
    unrecognised: list[str] = field(default_factory=list)  # sort keys no compile reads

    @property
    def latest(self) -> int:
        return max(self.versions, default=0)


@dataclass(frozen=True)
class Migration:
    written: Sequence[str]  # layer names whose head was added or repaired
    current: int  # heads that were right already
    refused: Sequence[str]  # why a layer's latest version was not copied: it is malformed
    index: str = ""  # what became of the index of sort keys (listing.py), in a line
    index_failed: bool = False  # DynamoDB refused to describe the table or add it


def table_keys(store: DynamoDBStore) -> dict[str, LayerKeys]:
    """Every layer pk (not last-known-good, lease or stream records) and its keys."""
    layers: dict[str, LayerKeys] = {}
    for item in _scan(store, whole=False):
        _add(layers, item)
    return dict(sorted(layers.items()))


def _scan(store: DynamoDBStore, *, whole: bool) -> Iterator[Mapping[str, Any]]:
    """Every item of the table: whole, or only its keys and `version`."""
    request: dict[str, Any] = {"TableName": store.table, "ConsistentRead": True}
    if not whole:
        request["ProjectionExpression"] = "pk, sk, #v"
        request["ExpressionAttributeNames"] = {"#v": "version"}
    while True:
        with store.errors_while("reading the table"):
            page = store.client.scan(**request)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _add(layers: dict[str, LayerKeys], item: Mapping[str, Any]) -> None:
    pk, sk = item["pk"]["S"], item["sk"]["S"]
    if not is_layer_pk(pk):
        return
    keys = layers.setdefault(pk, LayerKeys())
    if is_version_key(sk):
        keys.versions.append(int(sk[2:]))
    elif sk == HEAD_SK:
        keys.head_version = item.get("version")
        number = (keys.head_version or {}).get("N", "")
        keys.head = int(number) if number.isdigit() else 0
    elif not _PROPOSAL_SK.match(sk):
        keys.unrecognised.append(sk)


def malformed(raw: Mapping[str, Any], check: Check | None) -> str | None:
    """Why a compile would refuse this version item (naming pk, sk and the field), or None."""
    try:
        version = version_of_item(raw)
        if check is not None:
            check(version)
    except InputError as err:
        return err.message
    return None


def verify(store: DynamoDBStore, check: Check | None = None) -> list[str]:
    """What is wrong with the table's heads, numbers and items, one line each (empty:
    nothing). Every version item is checked as a compile checks what it reads."""
    layers: dict[str, LayerKeys] = {}
    refused = []
    for item in _scan(store, whole=True):
        _add(layers, item)
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        if is_layer_pk(pk) and is_version_key(sk) and (why := malformed(item, check)):
            refused.append(
                f"{layer_name_from_pk(pk)}: malformed version: {why} (a compile that reads "
                "it stops, exit 2)"
            )
    findings = []
    for pk, keys in sorted(layers.items()):
        findings += _number_findings(layer_name_from_pk(pk), keys)
        findings += [
            f"{layer_name_from_pk(pk)}: unrecognised sort key {sk!r} (pk {pk!r}): not head, "
            "proposal#NNNNNNNNNN or v#NNNNNNNNNN (ten digits); compiles never read it"
            for sk in keys.unrecognised
        ]
    findings += _index_findings(store)
    findings += [
        f"{layer_name_from_pk(pk)}: head differs from version {layers[pk].latest} it copies "
        "(`table migrate` rewrites it)"
        for pk in _differing(store, layers)
    ]
    return findings + refused


def _index_findings(store: DynamoDBStore) -> list[str]:
    doing = f"describing table {store.table}"
    with store.errors_while(doing):
        state = sk_index_state(described(store, doing))
    if state == "ACTIVE":
        return []
    if state is None:
        return [
            f"table {store.table}: no index {SK_INDEX}: every listing of clusters scans the "
            "whole table (`table migrate` adds the index)"
        ]
    return [f"table {store.table}: index {SK_INDEX} is {state}: listings scan until it is built"]


def _number_findings(name: str, keys: LayerKeys) -> list[str]:
    """Gaps in a layer's version numbers, and a head missing, stale or naming none."""
    findings = []
    missing = sorted(set(range(1, keys.latest + 1)) - set(keys.versions))
    if missing:
        unlisted = (
            "; without version 1 the index of sort keys does not list the cluster"
            if name.startswith("cluster/") and missing[0] == 1
            else ""
        )
        findings.append(
            f"{name}: gap: version(s) {', '.join(map(str, missing))} missing below "
            f"{keys.latest}; a version written after a gap hides from the stale-head "
            f"check{unlisted}"
        )
    if keys.head is None and keys.versions:
        findings.append(f"{name}: no head (read by Query; `table migrate` adds it)")
    elif keys.head == 0:
        findings.append(
            f"{name}: the head names no version (its `version` is missing or not a whole "
            "number; read by Query; `table migrate` repairs it)"
        )
    elif keys.head is not None and keys.head != keys.latest:
        state = "stale" if keys.head < keys.latest else "ahead of the versions"
        findings.append(
            f"{name}: head {state}: it names version {keys.head}, the latest is "
            f"{keys.latest} (`table migrate` repairs it)"
        )
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


def migrate(store: DynamoDBStore, check: Check | None = None) -> Migration:
    """Add or repair every layer's head, idempotently: a second run writes nothing. A
    latest version a compile would refuse is not copied (a head must be a version that
    reads): its layer is left as it is and the reason returned."""
    layers = table_keys(store)
    differ = set(_differing(store, layers))
    todo = [
        pk
        for pk, keys in layers.items()
        if keys.versions and (keys.head != keys.latest or pk in differ)
    ]
    latest = HeadReader(store).batch_get([(pk, sort_key_for(layers[pk].latest)) for pk in todo])
    written, refused = [], []
    for pk in todo:
        item = latest.get((pk, sort_key_for(layers[pk].latest)))
        if item is None:
            continue
        if why := malformed(item, check):
            refused.append(f"{layer_name_from_pk(pk)}: no head written: {why}")
        elif _put_head(store, {**item, "sk": {"S": HEAD_SK}}, layers[pk]):
            written.append(layer_name_from_pk(pk))
    current = sum(1 for k in layers.values() if k.versions) - len(todo)
    try:
        index, failed = add_sk_index(store), False
    except OutsideError as err:  # no DescribeTable or UpdateTable right: the heads stand
        index, failed = f"index {SK_INDEX}: not added: {err.message}", True
    return Migration(written, current, refused, index=index, index_failed=failed)


def add_sk_index(store: DynamoDBStore) -> str:
    """Ask for the index of sort keys if the table has none. DynamoDB builds it in the
    background; until it is ACTIVE, clusters are listed by a Scan. What happened, in a
    line: asked for, there already, or ignored (dynalite's UpdateTable takes no index)."""
    doing = f"adding index {SK_INDEX} to table {store.table}"
    with store.errors_while(doing):
        state = sk_index_state(table := described(store, doing))
        if state is not None:
            return f"index {SK_INDEX}: there already ({state})"
        store.client.update_table(
            TableName=store.table,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexUpdates=[{"Create": _index_for(table)}],
        )
        if sk_index_state(described(store, doing)) is None:
            return (
                f"index {SK_INDEX}: the endpoint ignored the request (dynalite does): "
                "clusters are listed by a Scan"
            )
    return f"index {SK_INDEX}: asked for; clusters are listed by it once DynamoDB has built it"


def _index_for(table: Mapping[str, Any]) -> dict[str, Any]:
    """The index for this table: a provisioned table's gets the table's capacity."""
    index = sk_index_definition()
    throughput = table.get("ProvisionedThroughput") or {}
    billing = (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    if billing != "PAY_PER_REQUEST" and throughput.get("WriteCapacityUnits"):
        index["ProvisionedThroughput"] = {
            "ReadCapacityUnits": throughput["ReadCapacityUnits"],
            "WriteCapacityUnits": throughput["WriteCapacityUnits"],
        }
    return index


def _put_head(store: DynamoDBStore, item: Mapping[str, Any], seen: LayerKeys) -> bool:
    """Replace the head only as it was seen: a writer that moved it meanwhile wins."""
    condition: dict[str, Any]
    if seen.head is None:
        condition = {"ConditionExpression": "attribute_not_exists(sk)"}
    elif seen.head_version is None:
        condition = {
            "ConditionExpression": "attribute_exists(sk) AND attribute_not_exists(#v)",
            "ExpressionAttributeNames": {"#v": "version"},
        }
    else:
        condition = {
            "ConditionExpression": "#v = :seen",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": {":seen": dict(seen.head_version)},
        }
    with store.errors_while(f"writing the head of {item['pk']['S']}"):
        try:
            store.client.put_item(TableName=store.table, Item=dict(item), **condition)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
    return True
