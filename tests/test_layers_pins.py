"""Loose ends of issue 15: a pinned version that does not exist, the last version number.

The messages name what is missing and what exists, the same from the DynamoDB
table (moto, over HTTP and in process) and from a snapshot directory.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler.errors import InputError
from compiler.layers import StackLoader
from compiler.project import load_project
from compiler.sources import ConfigStore, Pin
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.items import MAX_VERSION
from compiler.sources.snapshot import SnapshotStore, seed
from tests.conftest import ROOT

# (the pins, the cluster loaded, what the message says); examples/ plus a cluster
# `gappy` whose record has versions 1 and 3 only.
CASES = [
    ({"cluster/gappy": 2}, "gappy",
     "--pin cluster/gappy=2: cluster/gappy has no version 2 in the config table; "
     "versions 1 and 3 exist"),
    ({"env/dev": 7}, "dev-k3s",
     "--pin env/dev=7: env/dev has no version 7 in the config table; only version 1 exists"),
    ({"defaults": 9}, "gappy",
     "--pin defaults=9: defaults has no version 9 in the config table; versions 1 and 2 exist"),
    ({"cluster/nowhere": 1}, "nowhere",
     "--pin cluster/nowhere=1: cluster/nowhere has no version 1 in the config table; "
     "it has no version at all"),
    ({}, "nowhere", "no record cluster#nowhere in the config table"),  # unpinned: as before
    ({"env/test": 4}, "gappy",  # an optional layer pinned to a version it lacks: not skipped
     "--pin env/test=4: env/test has no version 4 in the config table; only version 1 exists"),
]  # fmt: skip
BENIGN = [({"cluster/gappy": 3}, "gappy"), ({"cluster/gappy": 1, "env/test": 1}, "gappy")]


def _gappy_version(number: int) -> dict[str, Any]:
    return {
        "version": number,
        "created_at": f"2026-01-0{number}T00:00:00Z",
        "author": "tester",
        "comment": "",
        "cluster": {"name": "gappy", "env": "test", "server": "https://gappy.example:6443"},
        "config": {},
    }


@pytest.fixture
def snapshot(tmp_path: Path) -> SnapshotStore:
    root = tmp_path / "snapshot"
    shutil.copytree(ROOT / "examples", root)
    versions = [_gappy_version(1), _gappy_version(3)]
    (root / "cluster/gappy.yaml").write_text(yaml.safe_dump({"versions": versions}))
    return SnapshotStore(root)


@pytest.fixture(params=["snapshot", "dynamodb"])
def either(
    request: pytest.FixtureRequest, snapshot: SnapshotStore, inprocess_store: DynamoDBStore
) -> ConfigStore:
    if request.param == "snapshot":
        return snapshot
    # `config seed` refuses a layer with a gap (the write protocol has none); another
    # writer may leave one all the same: gappy's versions go in one by one.
    gappy = [v for v in snapshot.items() if v.pk == "cluster#gappy"]
    (snapshot.root / "cluster/gappy.yaml").unlink()
    seed(inprocess_store, SnapshotStore(snapshot.root))
    for version in sorted(gappy, key=lambda v: v.version):
        inprocess_store.put(
            version.pk,
            version.config,
            cluster=version.cluster,
            author=version.author,
            comment=version.comment,
            created_at=version.created_at,
            version=version.version,
        )
    return inprocess_store


@pytest.mark.parametrize(("pins", "cluster", "message"), CASES)
def test_a_missing_pinned_version_is_named_with_those_that_exist(
    either: ConfigStore, pins: dict[str, int], cluster: str, message: str
) -> None:
    loader = StackLoader(either, load_project(ROOT), Pin(versions=pins))
    with pytest.raises(InputError) as raised:
        loader.load(cluster)
    assert raised.value.message == message


@pytest.mark.parametrize(("pins", "cluster"), BENIGN)
def test_existing_pinned_versions_load(
    either: ConfigStore, pins: dict[str, int], cluster: str
) -> None:
    loaded = StackLoader(either, load_project(ROOT), Pin(versions=pins)).load(cluster)
    assert loaded.facts.name == cluster


def test_many_versions_are_listed_in_short(inprocess_store: DynamoDBStore) -> None:
    for _ in range(12):
        inprocess_store.put("defaults", {}, cluster=None, author="t", comment="")
    facts = _gappy_version(1)["cluster"]
    inprocess_store.put("cluster#gappy", {}, cluster=facts, author="t", comment="")
    loader = StackLoader(inprocess_store, load_project(ROOT), Pin(versions={"defaults": 20}))
    with pytest.raises(InputError, match=r"12 versions exist: 1, 2, …, 7, 8, 9, 10, 11, 12$"):
        loader.load("gappy")


@pytest.mark.parametrize("explicit", [False, True])
def test_config_put_after_the_last_version_says_the_limit(
    store: DynamoDBStore, explicit: bool
) -> None:
    store.put("env#dev", {}, cluster=None, author="t", comment="", version=MAX_VERSION)
    with pytest.raises(InputError) as raised:
        version = MAX_VERSION + 1 if explicit else None
        store.put("env#dev", {}, cluster=None, author="t", comment="", version=version)
    if explicit:
        assert f"field version {MAX_VERSION + 1} is over the limit of {MAX_VERSION}" in str(
            raised.value
        )
    else:
        assert str(raised.value) == (
            f"env#dev is at version {MAX_VERSION}, the last one the table can hold (sort keys "
            f"have ten digits, v#{MAX_VERSION}): no version can follow it; start a new layer"
        )
    assert store.read("env#dev", Pin()) is not None  # the last version is still readable


def test_a_layer_pinned_twice_to_different_versions_is_a_usage_error() -> None:
    from compiler.errors import UsageError
    from compiler.options import Selection, build_pin, parse_versions

    with pytest.raises(UsageError, match=r"--pin 'cluster/dev-k3s=3': cluster/dev-k3s is "
                       r"given version 2 already; name each layer once"):  # fmt: skip
        build_pin(Selection(pins=["cluster/dev-k3s=2", "cluster/dev-k3s=3"]))
    assert build_pin(Selection(pins=["defaults=1", "defaults=1"])).versions == {"defaults": 1}
    with pytest.raises(UsageError, match=r"--versions 'cluster/dev-k3s=abc': use LAYER=VERSION"):
        parse_versions("cluster/dev-k3s=abc")
    with pytest.raises(UsageError, match="--versions 'env/dev=2': env/dev is given version 1"):
        parse_versions("env/dev=1,env/dev=2")
