"""`snapshot`: the table's layers as files, and which clusters a changed file affects."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.affected import affected_clusters
from compiler.cli import main
from compiler.model import ClusterFacts
from compiler.project import load_project
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.snapshot import SnapshotStore, seed
from tests.conftest import ROOT, tree


@pytest.fixture
def seeded_server(server_store: DynamoDBStore) -> DynamoDBStore:
    seed(server_store, SnapshotStore(ROOT / "examples"))
    return server_store


def _server(store: DynamoDBStore) -> list[str]:
    assert store.endpoint_url is not None
    return ["--project", str(ROOT), "--endpoint-url", store.endpoint_url, "--table", store.table]


def test_compile_from_the_table_equals_compile_from_its_snapshot_byte_for_byte(
    seeded_server: DynamoDBStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = tmp_path / "snapshot"
    assert main(["snapshot", "--out", str(snapshot), *_server(seeded_server)]) == 0
    assert "7 layer(s), 10 version(s), for 3 cluster(s)" in capsys.readouterr().out
    from_table, from_snapshot = tmp_path / "a", tmp_path / "b"
    assert main(["compile", "--all", "--out", str(from_table), *_server(seeded_server)]) == 0
    args = ["--project", str(ROOT), "--source", f"snapshot:{snapshot}"]
    assert main(["compile", "--all", "--out", str(from_snapshot), *args]) == 0
    assert tree(from_table) == tree(from_snapshot) == tree(ROOT / "golden")
    # Every version is there, numbered as in the table, with its metadata.
    exported = SnapshotStore(snapshot)
    for pk in ("defaults", "env#prod", "cluster#dev-k3s"):
        assert exported.history(pk) == seeded_server.history(pk)


def test_a_second_snapshot_rewrites_nothing_and_drops_stale_layers(
    seeded_server: DynamoDBStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = tmp_path / "snapshot"
    assert main(["snapshot", "--out", str(snapshot), *_server(seeded_server)]) == 0
    stale = snapshot / "cluster/deleted.yaml"
    stale.write_text("versions: []\n")
    (snapshot / "notes.txt").write_text("mine\n")
    capsys.readouterr()
    assert main(["snapshot", "--out", str(snapshot), *_server(seeded_server)]) == 0
    assert "0 file(s) written, 7 unchanged, 1 removed" in capsys.readouterr().out
    assert not stale.exists() and (snapshot / "notes.txt").read_text() == "mine\n"


def test_findings_from_a_snapshot_name_the_dynamodb_item(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = project_dir / "examples/cluster/dev-k3s.yaml"
    cluster.write_text(cluster.read_text().replace("cidr: 192.168.0.0/16", "cidr: 8.8.8.0/24"))
    args = ["--project", str(project_dir), "--source", "snapshot:examples"]
    assert main(["validate", "--cluster", "dev-k3s", *args]) == 1
    assert "dynamodb:cluster#dev-k3s/v#0000000002@2" in capsys.readouterr().out


FACTS = [
    ClusterFacts("dev-a", "dev", "https://a"),
    ClusterFacts("dev-b", "dev", "https://b"),
    ClusterFacts("prod-a", "prod", "https://c"),
]


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (["overlays/dev/10-network.yaml"], ["dev-a", "dev-b"]),
        (["overlays/prod/x.yaml", "overlays/dev/y.yml"], ["dev-a", "dev-b", "prod-a"]),
        (["overlays/staging/x.yaml"], []),
        (["policies/rbac.cue"], ["dev-a", "dev-b", "prod-a"]),
        (["gitops-compiler.yaml"], ["dev-a", "dev-b", "prod-a"]),
        (["README.md", "golden/clusters/dev-a/cluster.json"], []),
        (["/elsewhere/overlays/dev/a.yaml"], []),
    ],
)
def test_affected_clusters(changed: list[str], expected: list[str]) -> None:
    project = load_project(ROOT)
    paths = [Path(c) if c.startswith("/") else ROOT / c for c in changed]
    assert affected_clusters(ROOT, project.stack, FACTS, paths) == expected


def test_validate_with_files_checks_only_the_clusters_they_affect(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--project", str(ROOT), "--source", "snapshot:examples"]
    assert main(["validate", *args, str(ROOT / "overlays/test/10-access.yaml")]) == 0
    assert "1 cluster(s) valid" in capsys.readouterr().out
    assert main(["validate", *args, str(ROOT / "README.md")]) == 0
    assert "no cluster reads them" in capsys.readouterr().out
