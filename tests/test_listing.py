"""The listing of clusters by the table's index of sort keys (sources/listing.py).

Each test runs against moto's server over HTTP and moto's in-process mock (the
`store` fixture); test_dynalite.py lists through dynalite too. What the index
lists is checked against what a Scan of every version lists, on the same table.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from compiler.errors import OutsideError
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.listing import SK_INDEX, sk_index_state
from tests.test_sources_dynamodb import drop_index, put, raw_item, sleeps, throttle, write_raw

__all__ = ["sleeps"]  # a fixture, used by name


def requests_of(store: DynamoDBStore, operation: str) -> list[dict[str, Any]]:
    """The parameters of every `operation` call the store makes from now on."""
    made: list[dict[str, Any]] = []
    store._client.meta.events.register(
        f"before-parameter-build.dynamodb.{operation}",
        lambda params, **_: made.append(dict(params)),
    )
    return made


def mixed_table(store: DynamoDBStore) -> None:
    """Clusters as every writer leaves them: the compiler's (heads), the provisioner's
    (versions only), stale heads, tombstones with and without heads, a cluster brought
    back after its tombstone, and layers and items that are not clusters."""
    put(store, "cluster#a", {})
    put(store, "cluster#a", {"second": True})
    write_raw(store, raw_item("cluster#b"))  # the provisioner: no head
    put(store, "cluster#c", {})
    write_raw(store, raw_item("cluster#c", 2))  # after its head: the head is stale
    put(store, "cluster#d", {})
    put(store, "cluster#d", {}, retired=True)  # retired through the compiler
    write_raw(store, raw_item("cluster#e"))
    write_raw(store, raw_item("cluster#e", 2, retired={"BOOL": True}))  # a raw tombstone
    put(store, "cluster#f", {})
    put(store, "cluster#f", {}, retired=True)
    put(store, "cluster#f", {"back": True})  # retired, then written again
    put(store, "defaults", {})
    put(store, "env#dev", {})
    write_raw(store, {"pk": {"S": "lkg#a"}, "sk": {"S": "v#0000000001"}})


def test_the_index_and_a_scan_list_the_same_clusters_and_versions(store: DynamoDBStore) -> None:
    mixed_table(store)
    queries, scans = requests_of(store, "Query"), requests_of(store, "Scan")
    by_index = store.list_clusters(), dict(store.listed_versions)
    assert by_index == (["a", "b", "c", "f"], {"a": 2, "b": 1, "c": 2, "f": 3})
    assert scans == [], "the listing scanned a table that has the index"
    assert [q.get("IndexName") for q in queries][:1] == [SK_INDEX]
    drop_index(store)
    assert (store.list_clusters(), dict(store.listed_versions)) == by_index
    assert scans, "without the index the listing must scan"


def test_the_index_is_read_page_by_page(store: DynamoDBStore) -> None:
    """Pages of 2 index entries (a Limit injected): every page is asked for in turn."""
    names = sorted(f"c{i:02d}" for i in range(9))
    for name in names:
        write_raw(store, raw_item(f"cluster#{name}"))
    pages: list[dict[str, Any]] = []

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        if params.get("IndexName") == SK_INDEX:
            params["Limit"] = 2
            pages.append(dict(params))

    store._client.meta.events.register("before-parameter-build.dynamodb.Query", small_pages)
    assert store.list_clusters() == names
    assert len(pages) >= 5  # 9 entries, 2 a page
    assert "ExclusiveStartKey" not in pages[0]
    assert all("ExclusiveStartKey" in page for page in pages[1:])


def lagging_index(store: DynamoDBStore, hidden: set[str]) -> None:
    """The index as DynamoDB may show it a moment after a write: without some entries
    (an index is eventually consistent), played on the answers as they arrive."""

    def drop(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        items = parsed.get("Items", [])
        parsed["Items"] = [i for i in items if i["pk"]["S"].partition("#")[2] not in hidden]

    store._client.meta.events.register("after-call.dynamodb.Query", drop)


def test_clusters_the_caller_knows_are_listed_whatever_the_index_shows(
    store: DynamoDBStore,
) -> None:
    for name in ("old", "late"):
        put(store, f"cluster#{name}", {})
    put(store, "cluster#gone", {})
    put(store, "cluster#gone", {}, retired=True)
    lagging_index(store, hidden={"late", "gone"})
    assert store.list_clusters() == ["old"]  # the lag itself, or the test proves nothing
    # Known from the output tree: read consistently, listed unless retired or absent,
    # whatever version the output says (the index does not name them).
    known = {"late": 1, "gone": 1, "never": 3}
    assert store.list_clusters(known=known) == ["late", "old"]
    assert store.listed_versions == {"late": 1, "old": 1}


def batch_keys(store: DynamoDBStore) -> list[tuple[str, str]]:
    """The keys of every BatchGetItem the store asks from now on."""
    keys: list[tuple[str, str]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        for request in params["RequestItems"].values():
            keys.extend((k["pk"]["S"], k["sk"]["S"]) for k in request["Keys"])

    store._client.meta.events.register("before-parameter-build.dynamodb.BatchGetItem", record)
    return keys


def test_a_cluster_known_at_its_latest_version_costs_one_key(store: DynamoDBStore) -> None:
    """The output's version is still the latest when the next one does not exist: its
    head is not read. Otherwise the cluster is read as any other."""
    put(store, "cluster#same", {})
    put(store, "cluster#same", {"second": True})
    put(store, "cluster#moved", {})
    write_raw(store, raw_item("cluster#moved", 2))  # another writer, after the output
    put(store, "cluster#retired", {})
    put(store, "cluster#retired", {}, retired=True)
    put(store, "cluster#new", {})
    keys = batch_keys(store)
    known = {"same": 2, "moved": 1, "retired": 1}
    assert store.list_clusters(known=known) == ["moved", "new", "same"]
    assert store.listed_versions == {"moved": 2, "new": 1, "same": 2}
    assert ("cluster#same", "v#0000000003") in keys
    assert ("cluster#same", "head") not in keys  # one key for it, not its head
    assert ("cluster#moved", "head") in keys and ("cluster#retired", "head") in keys


def test_a_malformed_latest_version_is_listed_for_the_compile_to_name(
    store: DynamoDBStore,
) -> None:
    put(store, "cluster#fine", {})
    write_raw(store, raw_item("cluster#bad"))
    write_raw(store, raw_item("cluster#bad", 2, created_at=None))  # no created_at
    assert store.list_clusters() == ["bad", "fine"]
    assert store.listed_versions == {"fine": 1}  # bad's is read, and refused, in full


def test_a_failing_read_of_the_heads_fails_the_listing(
    store: DynamoDBStore, sleeps: list[float]
) -> None:
    """Never a partial listing: a whole-fleet compile would remove what it left out."""
    put(store, "cluster#a", {})
    throttle(store, "BatchGetItem", times=1_000)
    with pytest.raises(OutsideError, match="ProvisionedThroughputExceededException"):
        store.list_clusters()


def test_the_index_is_used_only_once_built() -> None:
    index = {"IndexName": SK_INDEX, "IndexStatus": "ACTIVE"}
    assert sk_index_state({"GlobalSecondaryIndexes": [index]}) == "ACTIVE"
    assert sk_index_state({"GlobalSecondaryIndexes": [{**index, "Backfilling": True}]}) == (
        "BACKFILLING"
    )
    creating = {**index, "IndexStatus": "CREATING"}
    assert sk_index_state({"GlobalSecondaryIndexes": [creating]}) == "CREATING"
    other = {**index, "IndexName": "by-something-else"}
    assert sk_index_state({"GlobalSecondaryIndexes": [other]}) is None
    assert sk_index_state({}) is None


def test_a_table_it_may_not_describe_is_listed_by_a_scan(store: DynamoDBStore) -> None:
    """No DescribeTable permission (or a server without it): the listing scans."""
    put(store, "cluster#a", {})
    denied = {"__type": "com.amazonaws.dynamodb.v20120810#AccessDeniedException", "message": ""}
    throttle(store, "DescribeTable", times=1_000, answer=json.dumps(denied).encode())
    scans = requests_of(store, "Scan")
    assert store.list_clusters() == ["a"]
    assert scans


def test_a_describe_that_fails_fails_the_listing_once(
    store: DynamoDBStore, sleeps: list[float]
) -> None:
    """Throttled past the retries: the listing's error, after one round of back-off,
    not a Scan that would meet the same throttling again."""
    put(store, "cluster#a", {})
    throttle(store, "DescribeTable", times=1_000)
    scans = requests_of(store, "Scan")
    with pytest.raises(OutsideError, match=r"ProvisionedThroughputExceededException.*listing"):
        store.list_clusters()
    assert scans == [] and len(sleeps) == 5


def test_an_output_from_another_table_is_never_taken_for_this_one(store: DynamoDBStore) -> None:
    """The output says a version this table's cluster retired at, or one it never had
    (a tree compiled from another table into the same directory): read as any other."""
    put(store, "cluster#retired", {})
    put(store, "cluster#retired", {}, retired=True)
    put(store, "cluster#short", {})
    assert store.list_clusters(known={"retired": 2, "short": 7}) == ["short"]
    assert store.listed_versions == {"short": 1}


def test_an_endpoint_without_batch_reads_lists_the_output_clusters_by_query(
    store: DynamoDBStore,
) -> None:
    put(store, "cluster#a", {})
    put(store, "cluster#a", {"second": True})
    unknown = {"__type": "com.amazonaws.dynamodb.v20120810#UnknownOperationException"}
    throttle(store, "BatchGetItem", times=1_000, answer=json.dumps(unknown).encode())
    assert store.list_clusters(known={"a": 2}) == ["a"]
    assert store.listed_versions == {"a": 2}
