"""Rollback end to end: three versions of a cluster record, publish v3, roll back to v1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.publishing.publisher import rollback_intro, rollback_title
from compiler.publishing.treediff import ClusterDiff, TreeDiff
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
    assert main(["publish", "--cluster", "dev-k3s", *target, "--run-id", "v3", *table]) == 0
    published = "gitops-compiler/main/cluster-dev-k3s"
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
    files = files_at(remote, ROLLBACK_BRANCH)
    lock = json.loads(files["clusters/dev-k3s/config-lock.json"])
    assert _layer(lock, "cluster/dev-k3s")["version"] == 1
    assert _layer(lock, "defaults")["version"] == 2  # only the pinned layer went back
    addon = json.loads(files["clusters/dev-k3s/addons/ingress-nginx.json"])
    assert addon["values"] == {"controller": {"replicaCount": 2}}  # v1 had no override

    pull = next(p for p in fake_github.pulls() if p["head"]["ref"] == ROLLBACK_BRANCH)
    assert pull["title"] == "Rollback dev-k3s to cluster/dev-k3s@1, defaults@2, env/dev@1"
    body = pull["body"]
    assert "**Rollback.**" in body
    assert "- **dev-k3s**: `cluster/dev-k3s@3` → `cluster/dev-k3s@1`" in body
    assert "`values.controller.replicaCount` | `3` | `2`" in body
    labels = fake_github.received("POST", f"/repos/{FAKE_REPO}/issues/{pull['number']}/labels")
    assert labels[-1].json == {"labels": ["gitops-compiler", "rollback"]}


def test_rollback_needs_a_time_or_versions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["rollback", "--cluster", "dev-k3s", "--repo", "/nowhere"])
    assert exited.value.code == 2


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
