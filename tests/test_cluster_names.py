"""Cluster names a user can find (issue 17, item 10): `clusters list`, and a wrong
`--cluster` answered with the closest names in every command that takes one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.snapshot import SnapshotStore, seed
from tests.conftest import ROOT


@pytest.fixture
def table(server_store: DynamoDBStore) -> list[str]:
    """examples/ in a table of moto's server, as the command line reaches it."""
    seed(server_store, SnapshotStore(ROOT / "examples"))
    assert server_store.endpoint_url is not None
    return ["--project", str(ROOT), "--endpoint-url", server_store.endpoint_url,
            "--table", server_store.table]  # fmt: skip


def test_clusters_list_names_env_region_and_layer_versions(
    table: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["clusters", "list", *table]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["CLUSTER", "ENV", "REGION", "LAYERS"]
    assert lines[1].split() == [
        "dev-k3s", "dev", "eu-west-1", "defaults@2", "env/dev@1", "cluster/dev-k3s@2"
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[1:]] == ["dev-k3s", "prod-eks-1", "test-k3s"]
    # A new version shows at once; a retired cluster leaves the list.
    (tmp_path / "v.yaml").write_text("namespaces: {}\n")
    put = ["config", "put", "--layer", "env/prod", str(tmp_path / "v.yaml"), "--force"]
    assert main([*put, *table]) == 0
    assert main(["config", "retire", "--layer", "cluster/test-k3s", *table]) == 0
    capsys.readouterr()
    assert main(["clusters", "list", "--format", "json", *table]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in listed] == ["dev-k3s", "prod-eks-1"]
    assert listed[1] == {
        "name": "prod-eks-1",
        "env": "prod",
        "region": "eu-central-1",
        "layers": [
            {"layer": "defaults", "version": 2},
            {"layer": "env/prod", "version": 3},
            {"layer": "cluster/prod-eks-1", "version": 1},
        ],
    }


@pytest.mark.parametrize(
    "command",
    [
        ["validate"],
        ["compile", "--out", "{tmp}/out"],
        ["explain"],
        ["diff", "--against", str(ROOT / "golden")],
        ["publish", "--repo", "{tmp}/nowhere.git", "--dry-run"],
    ],
)
def test_an_unknown_cluster_gets_the_closest_names(
    command: list[str], table: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in command]
    assert main([*argv, "--cluster", "prod-eks", *table]) == 2
    err = capsys.readouterr().err
    assert "no cluster 'prod-eks' in the config table; did you mean prod-eks-1?" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    assert main([*argv, "--cluster", "zzz", *table]) == 2
    assert "`gitops-compiler clusters list` shows them" in capsys.readouterr().err


def test_an_unknown_cluster_of_a_compiled_tree_gets_the_closest_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["publish", "--from", str(ROOT / "golden"), "--cluster", "dev-k3", "--repo",
                 str(tmp_path), "--forge", "none"])  # fmt: skip
    assert code == 2 and "did you mean dev-k3s?" in capsys.readouterr().err
