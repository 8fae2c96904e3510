"""The config table's edge: versions, pins, paging, Decimal conversion, item validation, failures.

Every test about the store runs twice through the `store` fixture: against
moto's server over HTTP and against moto's in-process mock. Raw items are
written with the store's own boto3 client, bypassing `DynamoDBStore.put`, to
play a table that someone else (or an older version of us) wrote.
"""

from __future__ import annotations

import json
import socket
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse

import compiler.sources.dynamodb as dynamodb_module
from compiler.errors import EXIT_BAD_INPUT, EXIT_OUTSIDE, InputError, OutsideError, UsageError
from compiler.layers import StackLoader
from compiler.model import LayerVersion
from compiler.project import load_project
from compiler.sources import Pin
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.heads import HeadReader
from compiler.sources.items import parse_timestamp
from compiler.sources.listing import SK_INDEX, sk_index_active
from compiler.sources.snapshot import SnapshotStore, seed
from tests.conftest import REGION, ROOT


def facts(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "env": "dev", "server": f"https://{name}.example:6443", **extra}


def put(store: DynamoDBStore, pk: str, config: dict[str, Any], **kwargs: Any) -> LayerVersion:
    cluster = facts(pk.partition("#")[2]) if pk.startswith("cluster#") else None
    kwargs.setdefault("cluster", cluster)
    kwargs.setdefault("author", "tester")
    kwargs.setdefault("comment", "")
    return store.put(pk, config, **kwargs)


def raw_item(pk: str, version: int = 1, /, **attributes: Any) -> dict[str, Any]:
    """A valid item in DynamoDB's wire format; `attributes` override (None removes)."""
    item: dict[str, Any] = {
        "pk": {"S": pk},
        "sk": {"S": f"v#{version:010d}"},
        "version": {"N": str(version)},
        "config": {"M": {"namespaces": {"M": {}}}},
        "created_at": {"S": "2026-01-01T00:00:00Z"},
        "author": {"S": "someone"},
        "comment": {"S": ""},
    }
    if pk.startswith("cluster#"):
        name = pk.partition("#")[2]
        item["cluster"] = {
            "M": {
                "name": {"S": name},
                "env": {"S": "dev"},
                "server": {"S": f"https://{name}.example:6443"},
            }
        }
    for key, value in attributes.items():
        if value is None:
            item.pop(key, None)
        else:
            item[key] = value
    return item


def write_raw(store: DynamoDBStore, item: dict[str, Any]) -> None:
    store._client.put_item(TableName=store.table, Item=item)


def raw_get(store: DynamoDBStore, pk: str, sk: str) -> dict[str, Any]:
    return store._client.get_item(
        TableName=store.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
    )["Item"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry back-off, recorded instead of slept (only botocore.endpoint's `time`)."""
    delays: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=delays.append))
    return delays


# -- writing and reading the latest ------------------------------------------


def test_put_then_read_latest(store: DynamoDBStore) -> None:
    config = {"namespaces": {"dev-team": {"labels": {"team": "backend"}}}}
    written = put(store, "defaults", config, author="alice", comment="first")
    latest = store.read("defaults", Pin())
    assert latest == written
    assert latest is not None
    assert (latest.pk, latest.sk, latest.version) == ("defaults", "v#0000000001", 1)
    assert latest.config == config
    assert (latest.author, latest.comment) == ("alice", "first")
    assert latest.cluster is None
    parse_timestamp(latest.created_at, "test")  # an ISO 8601 time
    assert latest.created_at.endswith("Z")


def test_versions_are_numbered_1_2_3_and_latest_is_the_highest(store: DynamoDBStore) -> None:
    numbers = [put(store, "env#dev", {"roles": {f"r{i}": {}}}).version for i in range(3)]
    assert numbers == [1, 2, 3]
    latest = store.read("env#dev", Pin())
    assert latest is not None and latest.version == 3 and latest.config == {"roles": {"r2": {}}}
    # another layer has its own numbering, and does not see env#dev's versions
    assert put(store, "env#de", {}).version == 1
    assert store.read("env#d", Pin()) is None


def test_sort_key_is_zero_padded_and_orders_versions(store: DynamoDBStore) -> None:
    written = put(store, "defaults", {"a": 42}, version=42)
    assert written.sk == "v#0000000042"
    item = raw_get(store, "defaults", "v#0000000042")
    assert item["version"] == {"N": "42"}
    assert item["sk"] == {"S": "v#0000000042"}
    # v#…9 sorts before v#…10 only because of the padding
    put(store, "env#dev", {"n": 9}, version=9)
    put(store, "env#dev", {"n": 10}, version=10)
    latest = store.read("env#dev", Pin())
    assert latest is not None and latest.version == 10 and latest.config == {"n": 10}
    assert put(store, "env#dev", {"n": 11}).version == 11


def test_put_never_overwrites_an_existing_version(store: DynamoDBStore) -> None:
    put(store, "defaults", {"keep": "me"}, comment="original")
    with pytest.raises(OutsideError, match=r"defaults version 1 exists already") as raised:
        put(store, "defaults", {"keep": "not"}, version=1, comment="intruder")
    assert raised.value.exit_code == EXIT_OUTSIDE
    kept = store.read("defaults", Pin(versions={"defaults": 1}))
    assert kept is not None and kept.config == {"keep": "me"} and kept.comment == "original"
    assert [v.version for v in store.history("defaults")] == [1]


def test_a_malformed_put_writes_nothing(store: DynamoDBStore) -> None:
    """Validated before the write: a bad item would break every later read of the layer."""
    with pytest.raises(InputError, match=r"cluster\.name must be 'dev-k3s'"):
        store.put(
            "cluster#dev-k3s", {}, cluster=facts("other"), author="a", comment="", version=None
        )
    with pytest.raises(InputError, match=r"field cluster belongs on cluster# records only"):
        store.put("defaults", {}, cluster=facts("x"), author="a", comment="")
    with pytest.raises(InputError, match=r"field created_at"):
        store.put("defaults", {}, cluster=None, author="a", comment="", created_at="yesterday")
    assert store._client.scan(TableName=store.table)["Items"] == []
    assert store.read("cluster#dev-k3s", Pin()) is None


# -- pins ----------------------------------------------------------------------

STAMPS = ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z")


def as_of(text: str) -> Pin:
    return Pin(as_of=parse_timestamp(text, "test"))


def test_as_of_picks_the_version_current_at_that_time(store: DynamoDBStore) -> None:
    for number, stamp in enumerate(STAMPS, start=1):
        put(store, "defaults", {"v": number}, created_at=stamp)

    def version_at(text: str) -> int | None:
        found = store.read("defaults", as_of(text))
        if found is not None:
            assert found.config == {"v": found.version}
        return found.version if found else None

    assert version_at("2025-12-31T23:59:59Z") is None  # before the first
    assert version_at("2026-01-01T00:00:00Z") == 1  # exactly at a version's time
    assert version_at("2026-01-15T12:00:00Z") == 1  # between versions
    assert version_at("2026-02-01T00:00:00Z") == 2
    assert version_at("2026-02-28T23:59:59Z") == 2
    assert version_at("2030-01-01T00:00:00Z") == 3  # after the last
    # another zone: 00:30+01:00 is 23:30 UTC the day before
    assert version_at("2026-02-01T00:30:00+01:00") == 1


def test_as_of_and_history_page_through_many_versions(
    store: DynamoDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dynamodb_module, "_PAGE", 2)
    for number in range(1, 6):
        put(store, "defaults", {"v": number}, created_at=f"2026-01-0{number}T00:00:00Z")
    queries: list[dict[str, Any]] = []
    store._client.meta.events.register(
        "before-parameter-build.dynamodb.Query", lambda params, **_: queries.append(dict(params))
    )
    found = store.read("defaults", as_of("2026-01-01T12:00:00Z"))
    assert found is not None and found.version == 1  # on the third page of 2
    assert len(queries) == 3
    assert all(q["ScanIndexForward"] is False and q["ConsistentRead"] is True for q in queries)
    assert "ExclusiveStartKey" in queries[1] and "ExclusiveStartKey" in queries[2]
    assert [v.version for v in store.history("defaults")] == [5, 4, 3, 2, 1]
    assert store.read("defaults", as_of("2025-01-01T00:00:00Z")) is None


def test_latest_is_the_head_then_the_next_key_both_consistent(store: DynamoDBStore) -> None:
    """Issue 18: the head, then whether the version after it exists; no Query."""
    put(store, "defaults", {"v": 1})
    put(store, "defaults", {"v": 2})
    calls: list[tuple[str, dict[str, Any]]] = []
    store._client.meta.events.register(
        "before-parameter-build.dynamodb",
        lambda params, event_name, **_: calls.append((event_name, dict(params))),
    )
    found = store.read("defaults", Pin())
    assert found is not None and (found.version, found.config) == (2, {"v": 2})
    assert [name.rpartition(".")[2] for name, _ in calls] == ["BatchGetItem", "BatchGetItem"]
    heads, after = (params["RequestItems"][store.table] for _, params in calls)
    assert heads["Keys"] == [{"pk": {"S": "defaults"}, "sk": {"S": "head"}}]
    assert after["Keys"] == [{"pk": {"S": "defaults"}, "sk": {"S": "v#0000000003"}}]
    assert heads["ConsistentRead"] is True and after["ConsistentRead"] is True


def test_latest_without_a_head_is_one_consistent_newest_first_query(
    store: DynamoDBStore,
) -> None:
    put(store, "defaults", {"v": 1})
    put(store, "defaults", {"v": 2})
    store._client.delete_item(
        TableName=store.table, Key={"pk": {"S": "defaults"}, "sk": {"S": "head"}}
    )  # as in a table written before heads
    queries: list[dict[str, Any]] = []
    store._client.meta.events.register(
        "before-parameter-build.dynamodb.Query", lambda params, **_: queries.append(dict(params))
    )
    found = store.read("defaults", Pin())
    assert found is not None and found.version == 2
    [query] = queries
    assert query["ScanIndexForward"] is False
    assert query["ConsistentRead"] is True
    assert query["Limit"] == 1


def test_per_layer_version_pins(store: DynamoDBStore) -> None:
    for number, stamp in enumerate(STAMPS, start=1):
        put(store, "defaults", {"v": number}, created_at=stamp)
        put(store, "cluster#dev-k3s", {"c": number}, created_at=stamp)
    pin = Pin(versions={"defaults": 2})
    pinned = store.read("defaults", pin)
    assert pinned is not None and (pinned.version, pinned.config) == (2, {"v": 2})
    other = store.read("cluster#dev-k3s", pin)  # not pinned: the latest
    assert other is not None and other.version == 3
    cluster = store.read("cluster#dev-k3s", Pin(versions={"cluster/dev-k3s": 1}))
    assert cluster is not None and cluster.config == {"c": 1}
    assert cluster.cluster == facts("dev-k3s")
    # a version pin wins over --as-of for its layer; the others follow the time
    mixed = Pin(as_of=parse_timestamp("2026-01-15T00:00:00Z", "t"), versions={"defaults": 3})
    assert store.read("defaults", mixed).version == 3  # type: ignore[union-attr]
    assert store.read("cluster#dev-k3s", mixed).version == 1  # type: ignore[union-attr]


def test_a_pin_to_a_missing_version_reads_nothing(store: DynamoDBStore) -> None:
    put(store, "defaults", {"v": 1})
    assert store.read("defaults", Pin(versions={"defaults": 7})) is None
    assert store.read("env#prod", Pin(versions={"env/prod": 1})) is None
    assert store.read("env#prod", Pin()) is None
    assert store.history("env#prod") == []


# -- history and listing -----------------------------------------------------


def test_history_is_newest_first(store: DynamoDBStore) -> None:
    for number in range(1, 4):
        put(store, "env#prod", {"v": number}, comment=f"change {number}")
    put(store, "env#prod2", {"other": True})
    history = store.history("env#prod")
    assert [v.version for v in history] == [3, 2, 1]
    assert [v.comment for v in history] == ["change 3", "change 2", "change 1"]
    assert [v.config for v in history] == [{"v": 3}, {"v": 2}, {"v": 1}]
    assert all(v.pk == "env#prod" for v in history)


def drop_index(store: DynamoDBStore) -> DynamoDBStore:
    """The table as one created before the index of sort keys: listed by a Scan."""
    store._client.update_table(
        TableName=store.table, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": SK_INDEX}}]
    )
    for _ in range(50):  # dynalite deletes it a moment later (moto at once)
        if not sk_index_active(store):
            return store
        time.sleep(0.1)
    raise AssertionError(f"index {SK_INDEX} still active 5 s after its deletion")


def test_list_clusters_follows_last_evaluated_key_past_one_mb(store: DynamoDBStore) -> None:
    """60 clusters of ~25 KB: more than the 1 MB a Scan page holds (a table without the
    index of sort keys; tests/test_listing.py pages through the index)."""
    drop_index(store)
    names = [f"c{i:02d}" for i in range(60)]
    pad = {"namespaces": {"pad": {"annotations": {"pad": "x" * 25_000}}}}
    for name in names:
        put(store, f"cluster#{name}", pad)
    put(store, "cluster#c00", {})  # a second version: still one cluster
    put(store, "defaults", {})
    put(store, "env#dev", {})
    scans: list[dict[str, Any]] = []
    store._client.meta.events.register(
        "before-parameter-build.dynamodb.Scan", lambda params, **_: scans.append(dict(params))
    )
    assert store.list_clusters() == names
    assert len(scans) >= 2, "the Scan never paginated: the test proves nothing"
    assert "ExclusiveStartKey" not in scans[0]
    assert all("ExclusiveStartKey" in scan for scan in scans[1:])
    assert all(scan["ConsistentRead"] is True for scan in scans)


def test_list_clusters_with_small_scan_pages(store: DynamoDBStore) -> None:
    """Pages of 3 items (a Limit injected into each Scan): many pages, some without clusters."""
    drop_index(store)
    names = sorted(f"cluster-{i}" for i in range(11))
    for name in names:
        put(store, f"cluster#{name}", {})
        put(store, f"cluster#{name}", {"second": True})
    for env in ("dev", "test", "prod"):
        put(store, f"env#{env}", {})
    scans: list[dict[str, Any]] = []

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = 3
        scans.append(dict(params))

    store._client.meta.events.register("before-parameter-build.dynamodb.Scan", small_pages)
    assert store.list_clusters() == names
    assert len(scans) >= 8  # 22 cluster items, 3 per page at most


def test_list_clusters_of_an_empty_table(store: DynamoDBStore) -> None:
    assert store.list_clusters() == []


def test_create_table_is_idempotent(store: DynamoDBStore) -> None:
    assert store.create_table() is False  # the fixture created it
    fresh = DynamoDBStore(
        f"{store.table}-fresh", region=REGION, endpoint_url=store.endpoint_url, client=store._client
    )
    assert fresh.create_table() is True
    assert fresh.create_table() is False
    put(fresh, "defaults", {"works": True})


# -- numbers and large documents -------------------------------------------


def walk(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in walk(v)]
    if isinstance(value, list):
        return [x for v in value for x in walk(v)]
    return [value]


def test_decimals_become_int_or_float_through_put(store: DynamoDBStore) -> None:
    config = {
        "count": 3,
        "ratio": 1.5,
        "tiny": 1e-7,
        "tenth": 0.1,
        "big": 10**20,
        "negative": -7,
        "flag": True,
        "nothing": None,
        "list": [1, 2.25, {"deep": [4, 0.5]}],
        "map": {"n": {"m": 0}},
    }
    put(store, "defaults", config)
    found = store.read("defaults", Pin())
    assert found is not None
    assert found.config == config
    leaves = walk(found.config)
    assert not any(isinstance(x, Decimal) for x in leaves)
    assert type(found.config["count"]) is int and type(found.config["big"]) is int
    assert type(found.config["ratio"]) is float and found.config["tenth"] == 0.1
    assert type(found.config["list"][0]) is int and type(found.config["list"][1]) is float
    assert type(found.config["list"][2]["deep"][0]) is int
    assert type(found.config["list"][2]["deep"][1]) is float
    assert type(found.config["map"]["n"]["m"]) is int
    assert found.config["flag"] is True and found.config["nothing"] is None
    assert type(found.version) is int


def test_decimals_from_raw_items(store: DynamoDBStore) -> None:
    config = {
        "M": {
            "int": {"N": "10"},
            "exp": {"N": "1E+2"},
            "trailing": {"N": "3.0"},
            "half": {"N": "2.50"},
            "list": {"L": [{"N": "1"}, {"N": "0.25"}, {"M": {"x": {"N": "-4"}}}]},
        }
    }
    write_raw(store, raw_item("defaults", 7, config=config, version={"N": "7"}))
    found = store.read("defaults", Pin())
    assert found is not None and type(found.version) is int and found.version == 7
    assert found.config == {
        "int": 10,
        "exp": 100,
        "trailing": 3,
        "half": 2.5,
        "list": [1, 0.25, {"x": -4}],
    }
    assert [type(x) for x in walk(found.config)] == [int, int, int, float, int, float, int]


def test_cluster_facts_read_back_as_written(store: DynamoDBStore) -> None:
    written_facts = facts("dev-k3s", region="eu-west-1", labels={"tier": "dev"})
    put(store, "cluster#dev-k3s", {"a": 1}, cluster=written_facts)
    found = store.read("cluster#dev-k3s", Pin())
    assert found is not None and found.cluster == written_facts
    assert raw_get(store, "cluster#dev-k3s", "v#0000000001")["cluster"]["M"]["name"] == {
        "S": "dev-k3s"
    }


def test_a_large_config_is_stored_as_json_and_reads_back_identically(
    store: DynamoDBStore,
) -> None:
    config: dict[str, Any] = {
        "namespaces": {
            f"ns-{i:04d}": {
                "labels": {"team": f"team-{i}", "environment": "dev"},
                "quotas": {"q": {"cpu": str(i), "memory": f"{i}Gi"}},
                "x": [i, i + 0.5, None, True, "é"],
            }
            for i in range(2_600)
        }
    }
    size = len(json.dumps(config, separators=(",", ":")))
    assert 300_000 < size < 380_000  # over the inline limit, under DynamoDB's 400 KB
    put(store, "defaults", config)
    stored = raw_get(store, "defaults", "v#0000000001")["config"]
    assert set(stored) == {"S"}, "a config over the inline limit is a JSON string"
    found = store.read("defaults", Pin())
    assert found is not None and found.config == config
    assert found.config["namespaces"]["ns-0001"]["x"] == [1, 1.5, None, True, "é"]
    # a small config stays a map
    put(store, "defaults", {"small": 1})
    assert set(raw_get(store, "defaults", "v#0000000002")["config"]) == {"M"}


def test_a_config_too_big_to_read_as_a_map_is_stored_as_json(store: DynamoDBStore) -> None:
    """Small in bytes but many attributes, or deep: a JSON string too (cheap to parse,
    and DynamoDB nests maps 32 levels at most); it reads back the same."""
    many = {"namespaces": {f"ns-{i}": {"labels": {"team": "t"}} for i in range(120)}}
    deep: dict[str, Any] = {"leaf": 1}
    for level in range(20):
        deep = {f"l{level}": deep}
    fits = {"namespaces": {f"ns-{i}": {"labels": {"team": "t"}} for i in range(60)}}
    for config in (many, deep, fits):
        put(store, "defaults", config)
        found = store.read("defaults", Pin())
        assert found is not None and found.config == config
    assert set(raw_get(store, "defaults", "v#0000000001")["config"]) == {"S"}  # 240 values
    assert set(raw_get(store, "defaults", "v#0000000002")["config"]) == {"S"}  # 21 deep
    assert set(raw_get(store, "defaults", "v#0000000003")["config"]) == {"M"}  # 120 values


def test_prefetched_reads_fail_for_the_cluster_that_needs_them(store: DynamoDBStore) -> None:
    """StackLoader.prefetch reads in parallel but raises nothing itself: each cluster's
    load sees its own layers, or the error of the item it needs, as without prefetch."""
    project = load_project(ROOT)
    put(store, "defaults", {})
    put(store, "env#dev", {"namespaces": {"shared": {"labels": {"team": "t"}}}})
    names = [f"dev-{i:02d}" for i in range(20)]
    for name in names:
        put(store, f"cluster#{name}", {"namespaces": {name: {}}}, cluster=facts(name, env="dev"))
    write_raw(store, raw_item("cluster#broken", 1, config={"L": []}))
    loader = StackLoader(store, project, Pin())
    loader.prefetch([*names, "broken", "absent"])
    reads: list[str] = []
    real_read = store.read
    store.read = lambda pk, pin: reads.append(pk) or real_read(pk, pin)  # type: ignore[method-assign]
    stacks = {name: loader.load(name) for name in names}
    assert reads == []  # every item came from the prefetch
    store.read = real_read  # type: ignore[method-assign]
    for name, stack in stacks.items():
        assert stack.layers[-1].document == {"namespaces": {name: {}}}
        assert StackLoader(store, project, Pin()).load(name) == stack
    with pytest.raises(InputError, match=r"pk='cluster#broken' sk='v#0000000001'.*field config"):
        loader.load("broken")
    with pytest.raises(InputError, match="absent"):
        loader.load("absent")


def test_a_config_written_as_a_json_string_by_hand_reads_back(store: DynamoDBStore) -> None:
    document = {"namespaces": {"dev-team": {"labels": {"team": "backend"}}}, "n": [1, 2.5]}
    write_raw(store, raw_item("env#dev", 1, config={"S": json.dumps(document)}))
    found = store.read("env#dev", Pin())
    assert found is not None and found.config == document


# -- malformed items ---------------------------------------------------------

# (test id, pk, version, attribute overrides, expected field text in the message)
MALFORMED: list[tuple[str, str, int, dict[str, Any], str]] = [
    ("config-missing", "defaults", 1, {"config": None}, "field config is missing"),
    ("config-list", "defaults", 1, {"config": {"L": []}}, "field config must be a map"),
    ("config-number", "env#dev", 1, {"config": {"N": "3"}}, "field config must be a map"),
    ("config-bad-json", "defaults", 1, {"config": {"S": "{not json"}}, "field config"),
    ("config-json-list", "defaults", 1, {"config": {"S": "[1, 2]"}}, "field config must be a map"),
    ("config-json-dupe", "defaults", 1, {"config": {"S": '{"a":1,"a":2}'}}, "duplicate key"),
    ("version-string", "defaults", 1, {"version": {"S": "1"}}, "field version"),
    ("version-missing", "defaults", 1, {"version": None}, "field version"),
    ("version-fraction", "defaults", 1, {"version": {"N": "1.5"}}, "field version"),
    ("version-zero", "defaults", 0, {}, "field version"),
    (
        "version-not-sk",
        "defaults",
        3,
        {"version": {"N": "2"}},
        "field version 2 does not match the sort key",
    ),
    ("sk-unpadded", "defaults", 1, {"sk": {"S": "v#1"}}, "field sk"),
    ("created-missing", "defaults", 1, {"created_at": None}, "field created_at"),
    ("created-garbage", "defaults", 1, {"created_at": {"S": "yesterday"}}, "field created_at"),
    ("author-number", "defaults", 1, {"author": {"N": "1"}}, "field author"),
    ("cluster-missing", "cluster#dev-k3s", 1, {"cluster": None}, "field cluster"),
    ("cluster-not-map", "cluster#dev-k3s", 1, {"cluster": {"S": "dev-k3s"}}, "field cluster"),
    (
        "cluster-wrong-name",
        "cluster#dev-k3s",
        1,
        {"cluster": {"M": {"name": {"S": "other"}, "env": {"S": "dev"}}}},
        "field cluster.name",
    ),
    ("cluster-on-env", "env#dev", 1, {"cluster": {"M": {}}}, "field cluster"),
    ("unknown-attribute", "defaults", 1, {"confg": {"M": {}}}, "unknown field(s) confg"),
    (
        "string-set",
        "defaults",
        1,
        {"config": {"M": {"tags": {"SS": ["a", "b"]}}}},
        ".config.tags: sets and binary",
    ),
    (
        "binary",
        "defaults",
        1,
        {"config": {"M": {"blob": {"B": b"\x00"}}}},
        ".config.blob: sets and binary",
    ),
]


def test_a_malformed_item_is_bad_input_naming_pk_sk_and_field(store: DynamoDBStore) -> None:
    """Every case of MALFORMED, each in a table of its own, read three ways."""
    for case, pk, version, overrides, field in MALFORMED:
        table = DynamoDBStore(
            f"{store.table}-{case}",
            region=REGION,
            endpoint_url=store.endpoint_url,
            client=store._client,
        )
        table.create_table()
        item = raw_item(pk, version, **overrides)
        write_raw(table, item)
        sk = item["sk"]["S"]
        for how, read in (
            ("latest", lambda t=table, pk=pk: t.read(pk, Pin())),
            ("history", lambda t=table, pk=pk: t.history(pk)),
            ("as-of", lambda t=table, pk=pk: t.read(pk, as_of("2030-01-01T00:00:00Z"))),
        ):
            with pytest.raises(InputError) as raised:
                read()
            message = str(raised.value)
            assert raised.value.exit_code == EXIT_BAD_INPUT
            assert f"pk={pk!r}" in message and f"sk={sk!r}" in message, (case, how, message)
            assert field in message, (case, how, message)


def test_a_malformed_item_read_by_version_pin(store: DynamoDBStore) -> None:
    write_raw(store, raw_item("env#prod", 4, config={"L": []}))
    with pytest.raises(InputError, match=r"pk='env#prod' sk='v#0000000004'.*field config"):
        store.read("env#prod", Pin(versions={"env/prod": 4}))


def test_a_cluster_record_without_env_fails_its_compile_naming_the_field(
    store: DynamoDBStore,
) -> None:
    """`env` is a fact the stack needs; the facts schema (policies/) checks it on load."""
    put(store, "defaults", {})
    no_env = {"M": {"name": {"S": "lonely"}, "server": {"S": "https://lonely.example"}}}
    write_raw(store, raw_item("cluster#lonely", 1, cluster=no_env))
    loader = StackLoader(store, load_project(ROOT), Pin())
    with pytest.raises(InputError) as raised:
        loader.load("lonely")
    message = str(raised.value)
    assert "pk='cluster#lonely'" in message and "sk='v#0000000001'" in message
    assert "field cluster" in message and "'env' is a required property" in message


# -- outside failures --------------------------------------------------------


def test_an_unreachable_endpoint_is_an_outside_failure(sleeps: list[float]) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    store = DynamoDBStore("gitops-config", region=REGION, endpoint_url=endpoint)
    for action in (
        lambda: store.read("defaults", Pin()),
        store.list_clusters,
        lambda: put(store, "defaults", {}),
    ):
        with pytest.raises(OutsideError) as raised:
            action()
        assert raised.value.exit_code == EXIT_OUTSIDE
        assert endpoint in str(raised.value) and "unreachable" in str(raised.value)
    assert sleeps, "connection errors are retried with back-off"


@pytest.mark.parametrize(
    "action",
    ["read", "pinned", "history", "list_clusters", "put"],
)
def test_a_missing_table_is_an_outside_failure_naming_it(store: DynamoDBStore, action: str) -> None:
    missing = DynamoDBStore(
        "no-such-table", region=REGION, endpoint_url=store.endpoint_url, client=store._client
    )
    run = {
        "read": lambda: missing.read("defaults", Pin()),
        "pinned": lambda: missing.read("defaults", Pin(versions={"defaults": 1})),
        "history": lambda: missing.history("env#dev"),
        "list_clusters": missing.list_clusters,
        "put": lambda: put(missing, "defaults", {}),
    }[action]
    with pytest.raises(OutsideError, match=r"'no-such-table' not found.*table create"):
        run()


THROTTLED = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded",
    }
).encode()


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data

    def read(self, *_: Any) -> bytes:
        return self._data


def throttle(
    store: DynamoDBStore, operation: str, times: int, answer: bytes = THROTTLED
) -> list[int]:
    """Answer the next `times` sends of `operation` with a throttling error (or another
    `answer`, a DynamoDB error body); count attempts."""
    attempts: list[int] = []

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(1)
        if len(attempts) > times:
            return None  # let the request through
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, 400, headers, _Body(answer))  # type: ignore[arg-type]

    # first: before moto's own in-process handler
    store._client.meta.events.register_first(f"before-send.dynamodb.{operation}", handler)
    return attempts


def test_throttling_is_retried_then_succeeds(store: DynamoDBStore, sleeps: list[float]) -> None:
    put(store, "defaults", {"v": 1})
    attempts = throttle(store, "BatchGetItem", times=2)
    found = store.read("defaults", Pin())
    assert found is not None and found.config == {"v": 1}
    assert len(attempts) == 4  # heads: 2 refused, 1 answered; then the next version's key
    assert len(sleeps) == 2 and all(0 <= delay <= 20 for delay in sleeps)


def test_throttling_is_retried_a_bounded_number_of_times_then_reported(
    store: DynamoDBStore, sleeps: list[float]
) -> None:
    attempts = throttle(store, "Query", times=1_000)
    with pytest.raises(OutsideError) as raised:
        store.read("defaults", Pin())
    message = str(raised.value)
    assert "ProvisionedThroughputExceededException" in message
    assert "reading defaults" in message
    assert "(still failing after 5 retries with back-off)" in message
    # client_config(): standard mode, max_attempts=5 retries (botocore's Config counts
    # retries there, not the first call), each after a back-off
    assert len(attempts) == 6
    assert len(sleeps) == 5


def test_throttled_put_is_retried(server_store: DynamoDBStore, sleeps: list[float]) -> None:
    """Server only: in-process, moto's own before-send handler runs (and writes) anyway."""
    attempts = throttle(server_store, "TransactWriteItems", times=1)
    assert put(server_store, "defaults", {"v": 1}).version == 1
    assert len(attempts) == 2 and len(sleeps) == 1
    assert [v.version for v in server_store.history("defaults")] == [1]


# -- concurrent writers ------------------------------------------------------


def test_two_writers_racing_for_the_next_version_both_succeed(
    store: DynamoDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(store, "defaults", {"v": "base"})
    other = DynamoDBStore(
        store.table, region=REGION, endpoint_url=store.endpoint_url, client=store._client
    )
    real_latest = store.query_latest
    raced: list[LayerVersion] = []

    def stale_latest(pk: str) -> LayerVersion | None:
        latest = real_latest(pk)
        if not raced:
            # between our read of the latest and our write, another writer takes version 2
            raced.append(put(other, pk, {"v": "other"}, author="bob"))
        return latest

    monkeypatch.setattr(store, "query_latest", stale_latest)
    monkeypatch.setattr(dynamodb_module, "backoff", lambda attempt: None)
    mine = put(store, "defaults", {"v": "mine"}, author="alice")
    assert raced[0].version == 2
    assert mine.version == 3
    history = store.history("defaults")
    assert [(v.version, v.author, v.config) for v in history] == [
        (3, "alice", {"v": "mine"}),
        (2, "bob", {"v": "other"}),
        (1, "tester", {"v": "base"}),
    ]


def test_a_writer_that_always_loses_the_race_gives_up(
    store: DynamoDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(store, "defaults", {"v": 1})
    calls: list[str] = []
    backoffs: list[int] = []

    def always_stale(pk: str) -> None:
        calls.append(pk)
        return None  # "there is no version yet": every attempt tries version 1

    monkeypatch.setattr(store, "query_latest", always_stale)
    monkeypatch.setattr(HeadReader, "head_number", lambda self, pk: 0)  # nor the head
    monkeypatch.setattr(dynamodb_module, "backoff", backoffs.append)
    with pytest.raises(OutsideError, match="concurrent writers"):
        put(store, "defaults", {"v": "lost"})
    assert len(calls) == dynamodb_module._PUT_ATTEMPTS
    # a jittered pause after each lost race, growing (heads.backoff), not immediate retries
    assert backoffs == list(range(dynamodb_module._PUT_ATTEMPTS))
    monkeypatch.undo()
    [only] = store.history("defaults")
    assert only.config == {"v": 1}


# -- the snapshot store and seeding ------------------------------------------


def test_seeded_store_matches_the_snapshot_for_every_pin(seeded_store: DynamoDBStore) -> None:
    snapshot = SnapshotStore(ROOT / "examples")
    pks = sorted({item.pk for item in snapshot.items()})
    assert {"defaults", "cluster#dev-k3s", "cluster#test-k3s", "cluster#prod-eks-1"} <= set(pks)
    assert seeded_store.list_clusters() == snapshot.list_clusters()
    stamps = sorted({item.created_at for item in snapshot.items()})
    pins = [Pin(), *(as_of(stamp) for stamp in stamps), as_of("2000-01-01T00:00:00Z")]
    for pk in pks:
        assert seeded_store.history(pk) == snapshot.history(pk)
        for version in snapshot.history(pk):
            pin = Pin(versions={version.layer_name: version.version})
            assert seeded_store.read(pk, pin) == version
        for pin in pins:
            assert seeded_store.read(pk, pin) == snapshot.read(pk, pin), (pk, pin)


def test_seeding_twice_writes_nothing_the_second_time(seeded_store: DynamoDBStore) -> None:
    snapshot = SnapshotStore(ROOT / "examples")
    # every version, and a head per layer (issue 18)
    layers = {item.pk for item in snapshot.items()}
    before = seeded_store._client.scan(TableName=seeded_store.table)["Count"]
    assert before == len(snapshot.items()) + len(layers)
    assert seed(seeded_store, snapshot) == (0, len(snapshot.items()))
    assert seeded_store._client.scan(TableName=seeded_store.table)["Count"] == before


def test_seeding_over_a_different_version_is_refused(store: DynamoDBStore, tmp_path: Path) -> None:
    put(store, "defaults", {"not": "the snapshot's"})
    directory = tmp_path / "snap"
    directory.mkdir()
    (directory / "defaults.yaml").write_text(
        "versions:\n  - version: 1\n    created_at: '2026-01-01T00:00:00Z'\n    config: {}\n"
    )
    with pytest.raises(InputError, match=r"defaults version 1 differs"):
        seed(store, SnapshotStore(directory))
    found = store.read("defaults", Pin())
    assert found is not None and found.config == {"not": "the snapshot's"}


def test_a_snapshot_whose_versions_skip_a_number_is_not_seeded(
    store: DynamoDBStore, tmp_path: Path
) -> None:
    """Versions 2 and 3 without 1: a table holding them would hide the cluster from the
    listing by the index (it lists version 1). Refused whole: not even defaults goes in."""
    directory = tmp_path / "snap"
    (directory / "cluster").mkdir(parents=True)
    one = "  - version: {n}\n    created_at: '2026-01-01T00:00:00Z'\n    config: {{}}\n"
    (directory / "defaults.yaml").write_text("versions:\n" + one.format(n=1))
    facts = "    cluster: {name: c1, env: dev, server: 'https://c1:6443'}\n"
    (directory / "cluster" / "c1.yaml").write_text(
        "versions:\n" + one.format(n=2) + facts + one.format(n=3) + facts
    )
    with pytest.raises(InputError, match=r"layer cluster/c1 .*version\(s\) 1 missing"):
        seed(store, SnapshotStore(directory))
    assert store.history("defaults") == [] and store.history("cluster#c1") == []


def test_snapshot_store_is_read_only_and_checks_its_files(tmp_path: Path) -> None:
    snapshot = SnapshotStore(ROOT / "examples")
    with pytest.raises(UsageError, match="read-only"):
        snapshot.put("defaults", {}, cluster=None, author="a", comment="")
    with pytest.raises(UsageError, match="does not exist"):
        SnapshotStore(tmp_path / "nope")
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "dev.yaml").write_text(
        "versions:\n  - version: 1\n    created_at: '2026-01-01T00:00:00Z'\n    config: []\n"
    )
    with pytest.raises(InputError, match=r"env/dev\.yaml.*field config must be a map"):
        SnapshotStore(tmp_path)
