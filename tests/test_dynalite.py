"""The same DynamoDB-touching flows on two implementations: moto's server and dynalite.

Both over HTTP on 127.0.0.1; the trees they give must be byte-identical (and equal
to golden/). dynalite has no TransactWriteItems: there a version and its head are
two conditional puts (README "The config table"), which these tests exercise; the
transactional path is tested on moto (tests/test_heads.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from compiler.cli import main
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.listing import sk_index_active
from compiler.sources.snapshot import SnapshotStore, seed
from tests.conftest import ROOT, tree


def args(store: DynamoDBStore) -> list[str]:
    return [
        "--project",
        str(ROOT),
        "--endpoint-url",
        str(store.endpoint_url),
        "--table",
        store.table,
    ]


def flow(store: DynamoDBStore, tmp: Path) -> dict[str, dict[str, bytes]]:
    """Seed, compile, put a new cluster version, compile again, --as-of and --pin back."""
    seed(store, SnapshotStore(ROOT / "examples"))
    trees = {}
    assert main(["compile", "--all", "--out", str(tmp / "first"), *args(store)]) == 0
    trees["first"] = tree(tmp / "first")
    config = store.history("cluster#dev-k3s")[0].config
    config.setdefault("namespaces", {}).setdefault("dev-team", {})["quotas"] = {
        "dev-quota": {"cpu": "6"}
    }
    layer = tmp / "dev.yaml"
    layer.write_text(yaml.safe_dump(config))
    put = ["config", "put", "--layer", "cluster/dev-k3s", str(layer), "--author", "t"]
    assert main([*put, *args(store)]) == 0
    assert main(["compile", "--all", "--out", str(tmp / "after"), *args(store)]) == 0
    trees["after"] = tree(tmp / "after")
    # The one byte that differs by design: the put's own time, in the lock of its cluster.
    stamp = store.history("cluster#dev-k3s")[0].created_at.encode()
    lock = "clusters/dev-k3s/config-lock.json"
    assert stamp in trees["after"][lock]
    trees["after"][lock] = trees["after"][lock].replace(stamp, b"<the put's time>")
    as_of = ["--as-of", "2026-06-01T00:00:00Z"]
    assert main(["compile", "--all", "--out", str(tmp / "as-of"), *as_of, *args(store)]) == 0
    trees["as-of"] = tree(tmp / "as-of")
    pin = ["--pin", "cluster/dev-k3s=2"]
    assert main(["compile", "--all", "--out", str(tmp / "pin"), *pin, *args(store)]) == 0
    trees["pin"] = tree(tmp / "pin")
    return trees


def test_moto_and_dynalite_give_byte_identical_trees(
    server_store: DynamoDBStore, dynalite_store: DynamoDBStore, tmp_path: Path
) -> None:
    on_moto = flow(server_store, tmp_path / "moto")
    on_dynalite = flow(dynalite_store, tmp_path / "dynalite")
    assert on_moto.keys() == on_dynalite.keys()
    for step in on_moto:
        assert on_moto[step] == on_dynalite[step], step
    golden = tree(ROOT / "golden")
    assert on_moto["first"] == golden and on_moto["as-of"] == golden and on_moto["pin"] == golden
    assert on_moto["after"] != golden  # the put changed something, on both


def test_dynalite_has_no_transactions_and_heads_are_written_anyway(
    dynalite_store: DynamoDBStore,
) -> None:
    written = [
        dynalite_store.put("env#dev", {"n": n}, cluster=None, author="a", comment="").version
        for n in range(3)
    ]
    assert written == [1, 2, 3]
    assert dynalite_store._transactions is False  # it said UnknownOperationException
    head = dynalite_store.client.get_item(
        TableName=dynalite_store.table, Key={"pk": {"S": "env#dev"}, "sk": {"S": "head"}}
    )["Item"]
    assert head["version"] == {"N": "3"}


@pytest.mark.parametrize("server", ["server_store", "dynalite_store"])
def test_a_version_put_after_the_head_is_seen_on_both(
    server: str, request: pytest.FixtureRequest
) -> None:
    store: DynamoDBStore = request.getfixturevalue(server)
    store.put("env#dev", {"n": 1}, cluster=None, author="a", comment="")
    item = {
        "pk": {"S": "env#dev"},
        "sk": {"S": "v#0000000002"},
        "version": {"N": "2"},
        "config": {"M": {"n": {"N": "2"}}},
        "created_at": {"S": "2026-07-01T00:00:00Z"},
    }
    store.client.put_item(TableName=store.table, Item=item)
    found = store.read_latest_many(["env#dev"])["env#dev"]
    assert getattr(found, "config", None) == {"n": 2}


@pytest.mark.parametrize("server", ["server_store", "dynalite_store"])
def test_the_index_of_sort_keys_lists_the_clusters_on_both(
    server: str, request: pytest.FixtureRequest
) -> None:
    """The listing reads the index, not a Scan, and lists what a Scan lists. (dynalite
    neither adds nor deletes an index of a table: UpdateTable ignores both.)"""
    from compiler.sources.listing import listed_by_scan
    from tests.test_listing import mixed_table, requests_of

    store: DynamoDBStore = request.getfixturevalue(server)
    mixed_table(store)
    scans = requests_of(store, "Scan")
    assert sk_index_active(store)
    listed = store.list_clusters(), dict(store.listed_versions)
    assert listed == (["a", "b", "c", "f"], {"a": 2, "b": 1, "c": 2, "f": 3})
    assert scans == []
    assert listed_by_scan(store, None) == listed[1]
    assert scans, "the Scan listing was not the one compared"
