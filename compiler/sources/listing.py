"""The listing of clusters: by the table's index of sort keys, or by a Scan.

A Scan reads every item of the table, every version of every layer: on DynamoDB it is
billed by the table's size, which grows with the history, and moto's server sorts the
whole table again for each 1 MB page (1.2-1.6 s at C=1000, most of a no-change
compile). The table's one global secondary index, `by-sk` (hash `sk`, range `pk`, keys
only), holds every item by its sort key: partition `v#0000000001` names every layer
that has a first version, the clusters among them by `begins_with(pk, "cluster#")`.
Every writer writes version 1 first (the write protocol numbers versions from 1 without
gaps), and DynamoDB fills the index from the keys every item has, so no writer needs
to know of it. Each cluster's latest version and tombstone are then read from the heads
in batches (heads.py), consistently.

An index is only eventually consistent: a cluster whose first version is a moment old
may be missing from it. Clusters the caller already knows of (those of its output tree)
are checked by the same consistent reads, whatever the index says, so a compile never
drops a cluster for the index's lag; a brand-new one is at worst listed by the next.
A table without the index, or while it is built, is listed by a Scan (`table migrate`
adds the index). `--as-of` lists by a Scan too: it needs every version's time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from compiler.errors import InputError, OutsideError
from compiler.model import CLUSTER_PK_PREFIX, cluster_pk, sort_key_for
from compiler.sources.heads import HeadReader, UnsupportedOperation
from compiler.sources.items import MAX_VERSION, is_version_key, parse_timestamp

if TYPE_CHECKING:
    from compiler.sources.dynamodb import DynamoDBStore

SK_INDEX = "by-sk"
# DescribeTable refused by a policy without it, or unknown to a DynamoDB-like server.
_MAY_NOT_DESCRIBE = frozenset({"AccessDeniedException", "UnknownOperationException"})
_FIRST_VERSION = sort_key_for(1)


def sk_index_definition() -> dict[str, Any]:
    """The index as CreateTable and UpdateTable take it (on-demand: no throughput)."""
    return {
        "IndexName": SK_INDEX,
        "KeySchema": [
            {"AttributeName": "sk", "KeyType": "HASH"},
            {"AttributeName": "pk", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }


def sk_index_state(table: Mapping[str, Any]) -> str | None:
    """The index's status as DescribeTable's `Table` gives it: ACTIVE only once it is
    built (not while it is backfilled); None when the table has no such index."""
    for index in table.get("GlobalSecondaryIndexes") or []:
        if index.get("IndexName") == SK_INDEX:
            if index.get("Backfilling"):
                return "BACKFILLING"
            return str(index.get("IndexStatus", ""))
    return None


def sk_index_active(store: DynamoDBStore) -> bool:
    """Whether the table's index of sort keys is there and built. A failure the listing
    would meet anyway (no table, throttling, no endpoint) is raised as the listing's."""
    with store.errors_while("listing clusters"):
        try:
            table = described(store, "listing clusters")
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in _MAY_NOT_DESCRIBE:
                return False  # a Scan lists without it
            raise
    return sk_index_state(table) == "ACTIVE"


def described(store: DynamoDBStore, doing: str) -> Mapping[str, Any]:
    """DescribeTable's `Table` (boto3's errors raised as they come, for the caller's
    `errors_while`); an answer without one is an OutsideError naming `doing`."""
    answer = store.client.describe_table(TableName=store.table)
    table = answer.get("Table") if isinstance(answer, dict) else None
    if not isinstance(table, dict):
        raise OutsideError(
            f"DynamoDB{store.at()} answered a DescribeTable without its table while "
            f"{doing}: is the endpoint a DynamoDB, not a proxy or a web server?"
        )
    return table


def listed_by_index(store: DynamoDBStore, known: Mapping[str, int]) -> dict[str, int | None]:
    """Every cluster whose latest version is not a tombstone, and that version's number
    (None where it cannot be read: the compile reads it again and names the fault).

    `known`: clusters the caller's output holds, each with the version of its record
    there (0: not known). Where the index names such a cluster, that version exists and
    is no tombstone, and the next version does not exist, it is still the latest
    (versions are numbered without gaps, and never deleted): two keys asked, in
    batches, and the head (a copy of the whole version) not read.
    """
    indexed = set(_first_versions(store))
    hinted = {n: v for n, v in known.items() if n in indexed and 0 < v < MAX_VERSION}
    reader = HeadReader(store)
    listed = _still_latest(reader, hinted)
    rest = (indexed | set(known)) - set(listed)
    for pk, state in reader.latest_states(cluster_pk(name) for name in rest).items():
        name = pk.partition("#")[2]
        if isinstance(state, InputError):
            listed[name] = None  # listed as a Scan lists it, by its keys
        elif isinstance(state, Exception):
            raise state  # the table failed: never a partial listing
        elif state is not None and not state[1]:
            listed[name] = state[0]
    return listed


def _still_latest(reader: HeadReader, hinted: Mapping[str, int]) -> dict[str, int | None]:
    """The clusters whose hinted version is still their latest, and no tombstone."""
    keys = [(cluster_pk(name), sort_key_for(v + d)) for name, v in hinted.items() for d in (0, 1)]
    try:
        found = reader.batch_get(keys, projection=("pk", "sk", "retired"))
    except UnsupportedOperation:
        return {}  # an endpoint without BatchGetItem: each is read by a Query instead
    listed: dict[str, int | None] = {}
    for name, v in hinted.items():
        pk = cluster_pk(name)
        at = found.get((pk, sort_key_for(v)))
        if at is None or (pk, sort_key_for(v + 1)) in found:
            continue  # not this table's, or moved on: read as any other
        if at.get("retired", {}).get("BOOL") is not True:
            listed[name] = v
    return listed


def _first_versions(store: DynamoDBStore) -> list[str]:
    """The clusters the index names: those with a version 1."""
    request: dict[str, Any] = {
        "TableName": store.table,
        "IndexName": SK_INDEX,
        "KeyConditionExpression": "sk = :first AND begins_with(pk, :prefix)",
        "ExpressionAttributeValues": {
            ":first": {"S": _FIRST_VERSION},
            ":prefix": {"S": CLUSTER_PK_PREFIX},
        },
    }
    pages = _pages(store, store.client.query, request, "listing clusters by the table's index")
    return [item["pk"]["S"].partition("#")[2] for items in pages for item in items]


def _pages(
    store: DynamoDBStore, call: Callable[..., Any], request: dict[str, Any], doing: str
) -> Iterator[list[Any]]:
    """The items of each page of a Query or Scan, following LastEvaluatedKey."""
    with store.errors_while(doing):
        while True:
            page = call(**request)
            yield store.page_items(page, doing)
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def listed_by_scan(store: DynamoDBStore, as_of: datetime | None) -> dict[str, int | None]:
    """The clusters and their latest versions from the keys of every `cluster#` item;
    with `as_of`, as they were then."""
    found = ClusterListing(as_of)
    request: dict[str, Any] = {
        "TableName": store.table,
        "ProjectionExpression": "pk, sk, retired" + (", created_at" if as_of else ""),
        "FilterExpression": "begins_with(pk, :prefix)",
        "ExpressionAttributeValues": {":prefix": {"S": CLUSTER_PK_PREFIX}},
        "ConsistentRead": True,
    }
    for items in _pages(store, store.client.scan, request, "listing clusters"):
        found.add(items)
    return {name: int(sk[2:]) for name, sk in found.listed().items()}


class ClusterListing:
    """The latest version key of each cluster and whether it is a tombstone, as the pages
    of a Scan of the `cluster#` items arrive; with `as_of`, the latest then (a version's
    `created_at` says when, as `read` takes it)."""

    def __init__(self, as_of: datetime | None = None) -> None:
        self.as_of = as_of
        self._latest: dict[str, tuple[str, bool]] = {}

    def add(self, items: Iterable[Mapping[str, Any]]) -> None:
        for item in items:
            name, sk = item["pk"]["S"].partition("#")[2], item["sk"]["S"]
            if not is_version_key(sk) or sk <= self._latest.get(name, ("", False))[0]:
                continue
            if self.as_of is not None and _created_after(item, self.as_of):
                continue
            self._latest[name] = (sk, item.get("retired", {}).get("BOOL", False))

    def listed(self) -> dict[str, str]:
        """The clusters whose latest version is not a tombstone (a retired cluster is not
        listed; its history stays in the table), and that version's key."""
        return {name: sk for name, (sk, retired) in self._latest.items() if not retired}


def _created_after(item: Mapping[str, Any], when: datetime) -> bool:
    """Whether a listed version was written after `when` (a missing or malformed time
    fails the listing, naming the item, as reading that version would)."""
    where = f"item pk={item['pk']['S']!r} sk={item['sk']['S']!r}: field created_at"
    return parse_timestamp(item.get("created_at", {}).get("S", ""), where) > when
