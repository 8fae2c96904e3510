"""Rollback end to end: three versions of a cluster record, publish v3, roll back to v1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.publishing.publisher import rollback_intro, rollback_title
from compiler.publishing.treediff import ClusterDiff, TreeDiff
from compiler.sources import Pin
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.snapshot import SnapshotStore, seed
from tests.conftest import ROOT
from tests.fake_github import FAKE_REPO, FAKE_TOKEN, FakeGitHub
from tests.gitrepos import files_at, git

ROLLBACK_BRANCH = "gitops-compiler/main/rollback-dev-k3s"
V3 = """\
calico:
  ipPools:
    dev-ippool: {cidr: 192.168.0.0/16, ipipMode: Always, natOutgoing: true, disabled: false}
addons:
  ingress-nginx:
    values: {controller: {replicaCount: 3}}
"""


@pytest.fixture
def table(server_store: DynamoDBStore, tmp_path: Path) -> list[str]:
    seed(server_store, SnapshotStore(ROOT / "examples"))  # cluster#dev-k3s has v1 and v2
    assert server_store.endpoint_url is not None
    args = ["--project", str(ROOT), "--endpoint-url", server_store.endpoint_url]
    args += ["--table", server_store.table]
    v3 = tmp_path / "v3.yaml"
    v3.write_text(V3)
    assert main(["config", "put", "--layer", "cluster/dev-k3s", str(v3), "-m", "3", *args]) == 0
    return args


def test_rollback_to_v1_publishes_a_rollback_pr_with_v1_in_config_lock(
    table: list[str],
    remote: Path,
    fake_github: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", fake_github.url)
    target = ["--repo", str(remote), "--forge-repo", FAKE_REPO]
    assert main(["publish", "--all", *target, "--run-id", "v3", *table]) == 0
    published = "gitops-compiler/main/all-clusters"
    lock = json.loads(files_at(remote, published)["clusters/dev-k3s/config-lock.json"])
    assert {"layer": "cluster/dev-k3s", "version": 3}.items() <= _layer(
        lock, "cluster/dev-k3s"
    ).items()
    git(f"--git-dir={remote}", "update-ref", "refs/heads/main", published)  # merged
    capsys.readouterr()

    code = main(
        ["rollback", "--cluster", "dev-k3s", "--versions", "cluster/dev-k3s=1", *target,
         "--run-id", "back", *table]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    # The revert is in the table: version 4 holds version 1's content.
    store = _store(table)
    v4 = store.read("cluster#dev-k3s", Pin())
    v1 = store.read("cluster#dev-k3s", Pin(versions={"cluster/dev-k3s": 1}))
    assert v4 is not None and v1 is not None
    assert (v4.version, v4.config, v4.cluster) == (4, v1.config, v1.cluster)
    assert v4.comment == (
        "rollback of cluster/dev-k3s@3 to cluster/dev-k3s@1 (trace ms-back-git-e40)"
    )
    files = files_at(remote, ROLLBACK_BRANCH)
    lock = json.loads(files["clusters/dev-k3s/config-lock.json"])
    assert _layer(lock, "cluster/dev-k3s")["version"] == 4
    assert _layer(lock, "defaults")["version"] == 2  # only the named layer went back
    addon = json.loads(files["clusters/dev-k3s/addons/ingress-nginx.json"])
    assert addon["values"] == {"controller": {"replicaCount": 2}}  # v1 had no override

    pull = next(p for p in fake_github.pulls() if p["head"]["ref"] == ROLLBACK_BRANCH)
    assert pull["title"] == "Rollback dev-k3s: cluster/dev-k3s@3 to cluster/dev-k3s@1 as @4"
    body = pull["body"]
    assert "**Rollback.**" in body
    assert "`cluster/dev-k3s@3 to cluster/dev-k3s@1 as @4`" in body
    assert "`values.controller.replicaCount` | `3` | `2`" in body
    labels = fake_github.received("POST", f"/repos/{FAKE_REPO}/issues/{pull['number']}/labels")
    assert labels[-1].json == {"labels": ["gitops-compiler", "rollback"]}

    # Merged, the rollback sticks: the next publish of the fleet changes nothing (before
    # the revert was recorded, it proposed version 3 again).
    git(f"--git-dir={remote}", "update-ref", "refs/heads/main", ROLLBACK_BRANCH)
    capsys.readouterr()
    assert main(["publish", "--all", *target, "--run-id", "after", *table]) == 0
    assert "nothing to publish" in capsys.readouterr().out


def test_rollback_dry_run_writes_nothing(
    table: list[str], remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["rollback", "--cluster", "dev-k3s", "--versions", "cluster/dev-k3s=1", "--dry-run"]
    assert main([*argv, "--repo", str(remote), *table]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "Rollback dev-k3s: cluster/dev-k3s@3 to cluster/dev-k3s@1" in out
    assert [v.version for v in _store(table).history("cluster#dev-k3s")] == [3, 2, 1]


@pytest.mark.parametrize(
    ("versions", "message"),
    [
        (
            "env/prod=1",
            "--versions env/prod=1: cluster dev-k3s does not read layer env/prod; "
            "it reads defaults, env/dev, cluster/dev-k3s",
        ),
        ("defaults=9", "--versions defaults=9: defaults has no version 9; it has 1-2"),
        (
            "cluster/dev-k3s=7",
            "--versions cluster/dev-k3s=7: cluster/dev-k3s has no version 7; it has 1-3",
        ),
    ],
)
def test_rollback_versions_must_be_read_by_the_cluster_and_exist(
    table: list[str],
    remote: Path,
    versions: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["rollback", "--cluster", "dev-k3s", "--versions", versions, "--repo", str(remote)]
    assert main([*argv, "--forge", "none", *table]) == 2
    assert f"error: {message}\n" in capsys.readouterr().err
    assert [v.version for v in _store(table).history("cluster#dev-k3s")] == [3, 2, 1]


def test_rollback_of_an_unknown_cluster_names_the_close_ones(
    table: list[str], remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["rollback", "--cluster", "dev-k3", "--versions", "defaults=1", "--repo", str(remote)]
    assert main([*argv, "--forge", "none", *table]) == 2
    assert "no cluster 'dev-k3' in the config table; did you mean dev-k3s?" in (
        capsys.readouterr().err
    )


def test_rollback_needs_a_time_or_versions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["rollback", "--cluster", "dev-k3s", "--repo", "/nowhere"])
    assert exited.value.code == 2


def _store(table: list[str]) -> DynamoDBStore:
    options = dict(zip(table[::2], table[1::2], strict=True))
    return DynamoDBStore(
        options["--table"], region="us-east-1", endpoint_url=options["--endpoint-url"]
    )


def _layer(lock: dict, name: str) -> dict:
    return next(layer for layer in lock["layers"] if layer["layer"] == name)


def test_a_rollback_that_drops_a_layer_names_it_in_title_and_intro() -> None:
    # --as-of before the optional env layer existed: env/stage2 goes away (issue 16).
    cluster = ClusterDiff(
        cluster="stage2-k3s",
        status="changed",
        objects=(),
        old_versions=("cluster/stage2-k3s@2", "defaults@2", "env/stage2@1"),
        new_versions=("cluster/stage2-k3s@2", "defaults@1"),
    )
    diff = TreeDiff(clusters=(cluster,), fleet=())
    assert rollback_title(diff) == (
        "Rollback stage2-k3s to cluster/stage2-k3s@2, defaults@1, env/stage2@1 → (none)"
    )
    intro = rollback_intro(diff)
    assert "- **stage2-k3s**: `defaults@2` → `defaults@1`, `env/stage2@1` → (none)" in intro
    assert "no layer version moves" not in intro


def test_a_rollback_of_a_shared_layer_publishes_every_cluster_that_reads_it(
    table: list[str], remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`defaults` is every cluster's layer: its revert reaches the fleet, so the dry run
    (and the PR) shows every cluster it changes, not only the one named."""
    argv = ["rollback", "--cluster", "dev-k3s", "--versions", "defaults=1", "--dry-run"]
    assert main([*argv, "--repo", str(remote), *table]) == 0
    captured = capsys.readouterr()
    assert (
        "defaults is read by 3 clusters: the rollback changes and publishes them all "
        "(dev-k3s, prod-eks-1, test-k3s)"
    ) in captured.err
    assert "Rollback dev-k3s, prod-eks-1, test-k3s: defaults@2 to defaults@1" in captured.out
    assert "branch: gitops-compiler/main/rollback-clusters-" in captured.out
    assert [v.version for v in _store(table).history("defaults")] == [2, 1]


def test_a_rollback_to_versions_that_break_a_rule_writes_nothing(
    table: list[str], remote: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Compiled from the target versions first: a finding stops it before the table
    changes (it used to write the revert, then stop with no pull request to show it)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "namespaces:\n  dev-team:\n    access:\n"
        "      everyone: {clusterRole: cluster-admin, groups: [devs]}\n"
    )
    put = ["config", "put", "--layer", "cluster/dev-k3s"]
    assert main([*put, str(bad), "-m", "bad", "--force", *table]) == 0  # v4, forced
    assert main([*put, str(tmp_path / "v3.yaml"), "-m", "good", *table]) == 0  # v5
    capsys.readouterr()
    argv = ["rollback", "--cluster", "dev-k3s", "--versions", "cluster/dev-k3s=4"]
    assert main([*argv, "--repo", str(remote), "--forge", "none", *table]) == 1
    assert "rbac-no-cluster-admin" in capsys.readouterr().err
    assert [v.version for v in _store(table).history("cluster#dev-k3s")] == [5, 4, 3, 2, 1]
