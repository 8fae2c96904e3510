"""`table migrate` and `table verify` on items other systems wrote (sources/maintenance.py).

Against moto's server over HTTP; the items are put with boto3 directly, as another
writer would, so nothing of the compiler's own writing checks them first.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from compiler.cli import main
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.listing import sk_index_active
from tests.conftest import ROOT
from tests.test_heads import head_version, raw_version

FACTS = {"name": {"S": "c1"}, "env": {"S": "dev"}, "server": {"S": "https://c1:6443"}}


def table(store: DynamoDBStore, action: str) -> int:
    args = ["--project", str(ROOT), "--endpoint-url", str(store.endpoint_url)]
    return main(["table", action, *args, "--table", store.table])


def put_raw(store: DynamoDBStore, item: dict[str, Any]) -> None:
    store.client.put_item(TableName=store.table, Item=item)


def head_item(store: DynamoDBStore, pk: str) -> dict[str, Any] | None:
    page = store.client.get_item(TableName=store.table, Key={"pk": {"S": pk}, "sk": {"S": "head"}})
    item: dict[str, Any] | None = page.get("Item")
    return item


def test_migrate_writes_no_head_for_a_malformed_version_and_exits_2(
    server_store: DynamoDBStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version without `version`, and one whose facts a compile refuses: no head for
    either (a head without `version` was never replaced again), named, exit 2."""
    unnumbered = raw_version("env#dev", 1, {})
    del unnumbered["version"]
    put_raw(server_store, unnumbered)
    escaping = raw_version("cluster#c1", 1, {})
    escaping["cluster"] = {"M": {**FACTS, "env": {"S": "../../etc"}}}
    put_raw(server_store, escaping)
    put_raw(server_store, raw_version("env#prod", 1, {}))
    assert table(server_store, "migrate") == 2
    out = capsys.readouterr().out
    assert "env/dev: no head written: item pk='env#dev' sk='v#0000000001': field version" in out, (
        out
    )
    assert "cluster/c1: no head written: item pk='cluster#c1' sk='v#0000000001'" in out
    assert "field cluster.env" in out
    assert "head written: env/prod" in out
    assert "1 head(s) written, 0 current, 2 refused (malformed)" in out
    assert head_item(server_store, "env#dev") is None
    assert head_item(server_store, "cluster#c1") is None
    assert head_version(server_store, "env#prod") == 1
    # repaired where it stands (the other system puts it again, whole): headed now
    put_raw(server_store, raw_version("env#dev", 1, {}))
    put_raw(server_store, {**escaping, "cluster": {"M": FACTS}})
    assert table(server_store, "migrate") == 0
    assert "2 head(s) written, 1 current" in capsys.readouterr().out
    assert table(server_store, "verify") == 0


def test_migrate_replaces_a_head_that_names_no_version(
    server_store: DynamoDBStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """What an older migrate left: a head copied from a version without `version`.
    Verify says so; once the version is repaired, migrate heads the layer again."""
    put_raw(server_store, raw_version("env#dev", 1, {"n": 1}))
    headless = {**raw_version("env#dev", 1, {}), "sk": {"S": "head"}}
    del headless["version"]
    put_raw(server_store, headless)
    assert table(server_store, "verify") == 1
    assert "env/dev: the head names no version" in capsys.readouterr().out
    assert table(server_store, "migrate") == 0
    assert "head written: env/dev" in capsys.readouterr().out
    assert head_item(server_store, "env#dev") == {
        **raw_version("env#dev", 1, {"n": 1}),
        "sk": {"S": "head"},
    }
    assert table(server_store, "verify") == 0


def test_verify_reports_malformed_versions_and_unrecognised_sort_keys(
    server_store: DynamoDBStore, capsys: pytest.CaptureFixture[str]
) -> None:
    server_store.put("env#dev", {"n": 1}, cluster=None, author="a", comment="")
    put_raw(server_store, {**raw_version("env#dev", 2, {}), "sk": {"S": "v#2"}})
    put_raw(server_store, {**raw_version("env#dev", 1, {}), "sk": {"S": "proposal#0000000001"}})
    # an older version a compile would refuse (a pinned one, a rollback) and the latest
    bad = raw_version("env#prod", 1, {})
    bad["config"] = {"N": "5"}
    put_raw(server_store, bad)
    server_store.put("env#prod", {"n": 2}, cluster=None, author="a", comment="", version=2)
    escaping = raw_version("cluster#c1", 1, {})
    escaping["cluster"] = {"M": {**FACTS, "env": {"S": "../../etc"}}}
    put_raw(server_store, escaping)
    put_raw(server_store, {"pk": {"S": "lkg#c1"}, "sk": {"S": "e#1"}})  # not a layer
    assert table(server_store, "verify") == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"table {server_store.table}: 4 finding(s)", lines
    found = "\n".join(lines)
    assert (
        "env/dev: unrecognised sort key 'v#2' (pk 'env#dev'): not head, proposal#NNNNNNNNNN "
        "or v#NNNNNNNNNN (ten digits); compiles never read it" in found
    )
    assert "cluster/c1: no head" in found
    prod = "env/prod: malformed version: item pk='env#prod' sk='v#0000000001': field config"
    assert f"{prod} must be a map" in found
    c1 = "cluster/c1: malformed version: item pk='cluster#c1' sk='v#0000000001' version 1"
    assert f"{c1}: field cluster.env: '../../etc'" in found
    assert "proposal#0000000001" not in found


def test_a_config_stored_as_json_is_a_copy_after_migrate(
    server_store: DynamoDBStore, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = raw_version("env#dev", 1, {"namespaces": {}})
    assert json.loads(stored["config"]["S"]) == {"namespaces": {}}
    put_raw(server_store, stored)
    assert table(server_store, "migrate") == 0
    assert head_item(server_store, "env#dev") == {**stored, "sk": {"S": "head"}}
    assert table(server_store, "verify") == 0
    assert "no finding(s)" in capsys.readouterr().out


def test_migrate_adds_the_index_of_sort_keys_that_verify_misses(
    server_store: DynamoDBStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """A table created before the index: verify names it, migrate asks for it once, and
    the listing then reads it instead of scanning."""
    from tests.test_listing import requests_of
    from tests.test_sources_dynamodb import drop_index

    drop_index(server_store)
    put_raw(server_store, raw_version("cluster#c1", 1, {}) | {"cluster": {"M": FACTS}})
    assert table(server_store, "verify") == 1
    out = capsys.readouterr().out
    assert f"table {server_store.table}: no index by-sk: every listing of clusters scans" in out
    assert table(server_store, "migrate") == 0
    assert "index by-sk: asked for" in capsys.readouterr().out
    assert sk_index_active(server_store)
    assert table(server_store, "migrate") == 0
    assert "index by-sk: there already (ACTIVE)" in capsys.readouterr().out  # asked once
    assert table(server_store, "verify") == 0, capsys.readouterr().out
    scans = requests_of(server_store, "Scan")
    assert server_store.list_clusters() == ["c1"]
    assert scans == []


def test_migrate_without_the_right_to_add_the_index_still_reports_its_heads(
    server_store: DynamoDBStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """UpdateTable refused (a role without it): the heads are written and reported, the
    index's refusal named, exit 3 (an outside system refused)."""
    from botocore.exceptions import ClientError

    from tests.test_sources_dynamodb import drop_index

    drop_index(server_store)
    put_raw(server_store, raw_version("env#prod", 1, {}))

    def denied(params: dict[str, Any], **_: Any) -> None:
        error = {"Error": {"Code": "AccessDeniedException", "Message": "no UpdateTable"}}
        raise ClientError(error, "UpdateTable")  # type: ignore[arg-type]

    from compiler.sources import dynamodb

    real = dynamodb.boto3.client

    def client(*args: Any, **kwargs: Any) -> Any:
        made = real(*args, **kwargs)
        made.meta.events.register("before-call.dynamodb.UpdateTable", denied)
        return made

    monkeypatch.setattr(dynamodb.boto3, "client", client)
    assert table(server_store, "migrate") == 3
    out = capsys.readouterr().out
    assert "head written: env/prod" in out
    assert "index by-sk: not added: DynamoDB AccessDeniedException" in out
    assert not sk_index_active(server_store)
