"""Head items (issue 18): written with each version, read in batches, never trusted stale.

Against moto's server over HTTP (it has TransactWriteItems; dynalite has not, see
tests/test_dynalite.py). Requests are counted with botocore's event hooks on the
real client.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from compiler.cli import main
from compiler.errors import InputError
from compiler.layers import StackLoader
from compiler.project import load_project
from compiler.sources import Pin
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.heads import BATCH_KEYS
from compiler.sources.maintenance import verify
from compiler.sources.snapshot import SnapshotStore, seed
from tests.conftest import REGION, ROOT


def raw_version(pk: str, version: int, config: dict[str, Any]) -> dict[str, Any]:
    """A version as another system writes it: the item alone, no head."""
    return {
        "pk": {"S": pk},
        "sk": {"S": f"v#{version:010d}"},
        "version": {"N": str(version)},
        "config": {"S": json.dumps(config)},
        "created_at": {"S": "2026-07-01T00:00:00Z"},
        "author": {"S": "provisioner"},
    }


def head_version(store: DynamoDBStore, pk: str) -> int | None:
    page = store.client.get_item(
        TableName=store.table, Key={"pk": {"S": pk}, "sk": {"S": "head"}}, ConsistentRead=True
    )
    return int(page["Item"]["version"]["N"]) if "Item" in page else None


def count_calls(store: DynamoDBStore) -> Counter[str]:
    calls: Counter[str] = Counter()

    def record(event_name: str, **_: Any) -> None:
        calls[event_name.rpartition(".")[2]] += 1

    store.client.meta.events.register("before-call.dynamodb", record)
    return calls


def test_every_put_writes_the_head_of_its_version(server_store: DynamoDBStore) -> None:
    for n in range(3):
        server_store.put("env#dev", {"n": n}, cluster=None, author="a", comment="")
    assert head_version(server_store, "env#dev") == 3
    latest = server_store.read_latest_many(["env#dev"])["env#dev"]
    assert latest is not None and not isinstance(latest, Exception)
    assert (latest.version, latest.config, latest.sk) == (3, {"n": 2}, "v#0000000003")
    # the head is not a version: history and the cluster list do not see it
    assert [v.version for v in server_store.history("env#dev")] == [3, 2, 1]


def test_a_version_put_directly_after_the_head_is_compiled_and_the_head_repaired(
    server_store: DynamoDBStore,
) -> None:
    server_store.put("env#dev", {"n": 1}, cluster=None, author="a", comment="")
    server_store.client.put_item(
        TableName=server_store.table, Item=raw_version("env#dev", 2, {"n": 2})
    )
    assert head_version(server_store, "env#dev") == 1  # stale: the other writer left it
    found = server_store.read_latest_many(["env#dev"])["env#dev"]
    assert found is not None and not isinstance(found, Exception)
    assert (found.version, found.config, found.author) == (2, {"n": 2}, "provisioner")
    assert head_version(server_store, "env#dev") == 2  # repaired on the way
    # and a plain read, and the next put, take it into account too
    assert server_store.read("env#dev", Pin()).version == 2  # type: ignore[union-attr]
    assert server_store.put("env#dev", {"n": 3}, cluster=None, author="a", comment="").version == 3


def test_a_put_after_a_version_written_past_a_gap_comes_after_it(
    server_store: DynamoDBStore,
) -> None:
    """Another system skipped a number (version 3 after 1, the head left at 1): the
    compile's stale-head check cannot see it, but a put numbers its version from the
    versions themselves, so what the user writes is the latest, not shadowed by 3."""
    server_store.put("env#dev", {"n": 1}, cluster=None, author="a", comment="")
    server_store.client.put_item(
        TableName=server_store.table, Item=raw_version("env#dev", 3, {"n": 3})
    )
    written = server_store.put("env#dev", {"n": 4}, cluster=None, author="a", comment="")
    assert written.version == 4
    latest = server_store.read("env#dev", Pin())
    assert latest is not None and (latest.version, latest.config) == (4, {"n": 4})
    assert head_version(server_store, "env#dev") == 4


def test_a_repaired_head_is_the_version_as_stored_and_verify_agrees(
    server_store: DynamoDBStore,
) -> None:
    """Another system stored `config` as a JSON string: the head a reader repairs keeps it
    so, attribute for attribute, and `table verify` finds nothing to report."""
    server_store.put("env#dev", {"n": 1}, cluster=None, author="a", comment="")
    stored = raw_version("env#dev", 2, {"n": 2})
    server_store.client.put_item(TableName=server_store.table, Item=stored)
    found = server_store.read_latest_many(["env#dev"])["env#dev"]
    assert getattr(found, "config", None) == {"n": 2}
    head = server_store.client.get_item(
        TableName=server_store.table, Key={"pk": {"S": "env#dev"}, "sk": {"S": "head"}}
    )["Item"]
    assert head == {**stored, "sk": {"S": "head"}}
    assert verify(server_store) == []


def test_a_head_naming_no_version_is_repaired_by_a_read_and_replaced_by_a_put(
    server_store: DynamoDBStore,
) -> None:
    """A head without `version` (an older `table migrate` copied such a version into it):
    the head's condition lets a repaired version head its layer again."""
    for pk in ("env#dev", "env#prod"):
        server_store.client.put_item(TableName=server_store.table, Item=raw_version(pk, 1, {}))
        headless = {**raw_version(pk, 1, {}), "sk": {"S": "head"}}
        del headless["version"]
        server_store.client.put_item(TableName=server_store.table, Item=headless)
    found = server_store.read_latest_many(["env#dev"])["env#dev"]
    assert getattr(found, "version", None) == 1
    assert head_version(server_store, "env#dev") == 1  # repaired on the way
    server_store.put("env#prod", {"n": 2}, cluster=None, author="a", comment="")
    assert head_version(server_store, "env#prod") == 2


def test_the_latest_numbers_alone_agree_with_the_latest_versions(
    server_store: DynamoDBStore,
) -> None:
    """What a hook's freshness check reads: the numbers, without the layers' content, and
    right where a head is stale (a version written after it) or missing."""
    for n in range(3):
        server_store.put("env#dev", {"n": n}, cluster=None, author="a", comment="")
    server_store.put("env#test", {"n": 1}, cluster=None, author="a", comment="")
    server_store.client.put_item(
        TableName=server_store.table, Item=raw_version("env#test", 2, {"n": 2})
    )
    server_store.client.put_item(
        TableName=server_store.table, Item=raw_version("env#prod", 1, {"n": 1})
    )
    pks = ["env#dev", "env#test", "env#prod", "env#none"]
    requests: list[dict[str, Any]] = []
    server_store.client.meta.events.register(
        "provide-client-params.dynamodb.BatchGetItem",
        lambda params, **_: requests.append(params),
    )
    numbers = server_store.read_latest_numbers(pks)
    assert numbers == {"env#dev": 3, "env#test": 2, "env#prod": 1, "env#none": None}
    heads = [r for r in requests if any(k["sk"]["S"] == "head" for k in _keys(r))]
    assert heads and all("ProjectionExpression" in _request(r) for r in heads)
    latest = server_store.read_latest_many(pks)
    assert {pk: getattr(v, "version", v) for pk, v in latest.items()} == numbers


def _request(params: dict[str, Any]) -> dict[str, Any]:
    [request] = params["RequestItems"].values()
    return dict(request)


def _keys(params: dict[str, Any]) -> list[dict[str, Any]]:
    return list(_request(params)["Keys"])


def fleet_of_dev_clusters(store: DynamoDBStore, count: int) -> tuple[list[str], Any]:
    """The examples, and `count` more clusters with dev-k3s's facts (each through `put`,
    so each has its head); their names and dev-k3s's facts."""
    seed(store, SnapshotStore(ROOT / "examples"))
    facts = store.read("cluster#dev-k3s", Pin())
    assert facts is not None and facts.cluster is not None
    names = [f"c{i:03d}" for i in range(count)]
    for name in names:
        cluster = {**facts.cluster, "name": name}
        store.put(f"cluster#{name}", {}, cluster=cluster, author="a", comment="")
    return names, facts.cluster


def test_a_compile_reads_a_hundred_heads_a_call_not_one_query_per_layer(
    server_store: DynamoDBStore, tmp_path: Path
) -> None:
    names, _ = fleet_of_dev_clusters(server_store, 250)
    calls = count_calls(server_store)
    loader = StackLoader(server_store, load_project(ROOT), Pin())
    loader.prefetch(names)
    assert calls["Query"] == 0, calls
    # clusters: 3 batches of heads + 3 of next keys; shared layers: 1 + 1
    assert calls["BatchGetItem"] == 2 * (-(-len(names) // BATCH_KEYS)) + 2, calls
    assert loader.load("c123").facts.name == "c123"


def test_unprocessed_keys_are_asked_again(server_store: DynamoDBStore) -> None:
    for pk in ("defaults", "env#dev", "env#prod"):
        server_store.put(pk, {"pk": pk}, cluster=None, author="a", comment="")
    held: list[Any] = []

    def hold_back(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        # The first answer returns nothing and names every key unprocessed, as DynamoDB
        # does when throttled.
        if model.name == "BatchGetItem" and not held:
            held.append(parsed["Responses"])
            table = server_store.table
            keys = [{"pk": i["pk"], "sk": i["sk"]} for i in parsed["Responses"][table]]
            parsed["Responses"] = {table: []}
            parsed["UnprocessedKeys"] = {table: {"Keys": keys, "ConsistentRead": True}}

    server_store.client.meta.events.register("after-call.dynamodb.BatchGetItem", hold_back)
    found = server_store.read_latest_many(["defaults", "env#dev", "env#prod"])
    assert held, "the hook did not run"
    assert {pk: getattr(v, "config", None) for pk, v in found.items()} == {
        pk: {"pk": pk} for pk in ("defaults", "env#dev", "env#prod")
    }


def test_a_table_without_heads_works_and_migrate_adds_them_once(
    server_store: DynamoDBStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for pk, n in (("defaults", 1), ("env#dev", 1), ("env#dev", 2), ("env#prod", 1)):
        server_store.client.put_item(
            TableName=server_store.table, Item=raw_version(pk, n, {"v": n})
        )
    found = server_store.read_latest_many(["defaults", "env#dev", "env#prod", "env#none"])
    assert {pk: getattr(v, "version", None) for pk, v in found.items()} == {
        "defaults": 1, "env#dev": 2, "env#prod": 1, "env#none": None
    }  # fmt: skip
    args = ["--project", str(ROOT), "--endpoint-url", str(server_store.endpoint_url)]
    args += ["--table", server_store.table]
    assert main(["table", "verify", *args]) == 1
    assert "env/dev: no head" in capsys.readouterr().out
    assert main(["table", "migrate", *args]) == 0
    assert "3 head(s) written, 0 current" in capsys.readouterr().out
    assert main(["table", "migrate", *args]) == 0
    assert "0 head(s) written, 3 current" in capsys.readouterr().out
    assert main(["table", "verify", *args]) == 0
    assert "no finding(s)" in capsys.readouterr().out
    assert head_version(server_store, "env#dev") == 2


def test_verify_reports_stale_heads_and_gaps(
    server_store: DynamoDBStore, capsys: pytest.CaptureFixture[str]
) -> None:
    server_store.put("env#dev", {"n": 1}, cluster=None, author="a", comment="")
    server_store.client.put_item(TableName=server_store.table, Item=raw_version("env#dev", 2, {}))
    server_store.put("env#prod", {"n": 1}, cluster=None, author="a", comment="", version=1)
    server_store.put("env#prod", {"n": 3}, cluster=None, author="a", comment="", version=3)
    args = ["--project", str(ROOT), "--endpoint-url", str(server_store.endpoint_url)]
    assert main(["table", "verify", *args, "--table", server_store.table]) == 1
    out = capsys.readouterr().out
    assert "env/dev: head stale: it names version 1, the latest is 2" in out
    assert "env/prod: gap: version(s) 2 missing below 3" in out


def test_eight_concurrent_writers_of_one_layer_all_succeed(
    dynamodb_server: str, server_store: DynamoDBStore
) -> None:
    """Each writer has its own client, as separate processes would; all start at once."""
    start = threading.Barrier(8)
    written: dict[int, int] = {}
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        store = DynamoDBStore(server_store.table, region=REGION, endpoint_url=dynamodb_server)
        start.wait(timeout=30)
        try:
            version = store.put("env#dev", {"writer": number}, cluster=None, author="w", comment="")
            written[number] = version.version
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(written) == 8, errors
    history = server_store.history("env#dev")
    # no version lost or overwritten: 1..8, each holding the content of the writer it names
    assert sorted(v.version for v in history) == list(range(1, 9))
    assert {v.version: v.config["writer"] for v in history} == {v: n for n, v in written.items()}
    assert head_version(server_store, "env#dev") == 8


def test_the_clusters_a_changed_overlay_affects_are_found_in_batches(
    server_store: DynamoDBStore,
) -> None:
    """`validate FILE` and a hook from the table read every cluster's facts: in batches of
    heads without content, and right where another writer put a version past a head."""
    from boto3.dynamodb.types import TypeSerializer

    from compiler.run import clusters_affected_by

    names, facts = fleet_of_dev_clusters(server_store, 150)
    moved = raw_version("cluster#c123", 2, {})  # the provisioner moves it to test
    moved["cluster"] = TypeSerializer().serialize({**facts, "name": "c123", "env": "test"})
    server_store.client.put_item(TableName=server_store.table, Item=moved)
    calls = count_calls(server_store)
    overlay = ROOT / "overlays/test/10-access.yaml"
    assert clusters_affected_by(load_project(ROOT), server_store, Pin(), [overlay]) == [
        "c123",
        "test-k3s",
    ]
    # The listing's Query of the index of sort keys, and c123's stale head.
    assert calls["Query"] <= 2 and calls["GetItem"] == 0 and calls["Scan"] == 0, calls
    # The listing's batches (heads, the keys after them), then the facts' (the same).
    batches = -(-(len(names) + 3) // BATCH_KEYS)
    assert calls["BatchGetItem"] <= 2 * (2 * batches + 1), calls


def test_a_cluster_listed_by_canonical_version_keys_only(server_store: DynamoDBStore) -> None:
    """`v#2` is no version key (`v#` and ten digits): the listing never takes it for the
    cluster's latest version. By the index, the cluster's latest is read by a Query
    (it has no head), which meets `v#2` and leaves the version unknown, for the compile
    to read again and name the item; a Scan takes version 1."""
    from tests.test_sources_dynamodb import drop_index

    server_store.client.put_item(
        TableName=server_store.table, Item=raw_version("cluster#c1", 1, {})
    )
    odd = {**raw_version("cluster#c1", 2, {}), "sk": {"S": "v#2"}}
    server_store.client.put_item(TableName=server_store.table, Item=odd)
    assert server_store.list_clusters() == ["c1"]
    assert server_store.listed_versions == {}
    drop_index(server_store)
    assert server_store.list_clusters() == ["c1"]
    assert server_store.listed_versions == {"c1": 1}


def test_a_put_comes_after_a_head_that_is_ahead_of_the_versions(
    server_store: DynamoDBStore,
) -> None:
    """A head naming version 5 over versions 1-2 (`table verify` reports it): a put of
    version 3 would be written and never read, so it takes 6, and is read."""
    for n in (1, 2):
        server_store.put("env#dev", {"n": n}, cluster=None, author="a", comment="")
    ahead = {**raw_version("env#dev", 5, {"n": 5}), "sk": {"S": "head"}}
    server_store.client.put_item(TableName=server_store.table, Item=ahead)
    written = server_store.put("env#dev", {"n": 6}, cluster=None, author="a", comment="")
    assert written.version == 6
    latest = server_store.read("env#dev", Pin())
    assert latest is not None and (latest.version, latest.config) == (6, {"n": 6})


def test_a_put_into_a_layer_with_a_stray_version_key_names_the_item(
    server_store: DynamoDBStore,
) -> None:
    """`v#2` sorts above `v#0000000001` and is no version key: a put refuses to guess
    past it and names the item to fix, as every read of the versions does (exit 2)."""
    server_store.put("env#dev", {"n": 1}, cluster=None, author="a", comment="")
    stray = {**raw_version("env#dev", 2, {"n": 2}), "sk": {"S": "v#2"}}
    server_store.client.put_item(TableName=server_store.table, Item=stray)
    with pytest.raises(InputError, match=r"item pk='env#dev' sk='v#2'.*field sk"):
        server_store.put("env#dev", {"n": 2}, cluster=None, author="a", comment="")
