"""`gitops-compiler doctor` (issue 20): each gap named with its fix; exit 1 only for
what the purpose asked needs; token values never shown."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.snapshot import SnapshotStore, seed
from tests.conftest import REGION, ROOT

SECRET = "ghp_doctorNeverPrintsThis123"


@pytest.fixture
def repo(tmp_path: Path, server_store: DynamoDBStore) -> Path:
    """A config repository whose table (moto's server) holds what its snapshot holds."""
    seed(server_store, SnapshotStore(ROOT / "examples"))
    argocd = tmp_path / "argocd.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(argocd)], check=True)
    root = tmp_path / "config"
    shutil.copytree(ROOT / "examples", root / ".gitops/snapshot")
    (root / "gitops-compiler.yaml").write_text(
        f"table: {server_store.table}\nregion: {REGION}\n"
        f"endpointUrl: {server_store.endpoint_url}\nargocd:\n  repoURL: {argocd}\n"
    )
    return root


def _doctor(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["doctor", "--project", str(root), *args])
    return code, capsys.readouterr().out


def test_everything_there(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITOPS_GITHUB_TOKEN", SECRET)
    code, out = _doctor(repo, capsys, "--for", "publish")
    assert code == 0, out
    assert "ok       cue: cue version" in out
    assert "key schema pk + sk; the snapshot is current" in out
    assert "set: GITOPS_GITHUB_TOKEN (values not shown)" in out
    assert "argocd repository:" in out and "reachable" in out
    assert SECRET not in out


def test_gaps_are_named_with_their_fix_and_fail_only_the_purpose_that_needs_them(
    repo: Path,
    server_store: DynamoDBStore,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("GITOPS_GITHUB_TOKEN", "GITHUB_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    server_store.put("env#dev", {"namespaces": {}}, cluster=None, author="a", comment="newer")
    code, out = _doctor(repo, capsys)
    assert code == 0, out  # the checks need cue, git and the snapshot: all there
    assert "warning  tokens: none of GITOPS_GITHUB_TOKEN" in out
    assert "the snapshot is behind the table for 1 layer(s) (env#dev)" in out
    assert "run `gitops-compiler snapshot --out .gitops/snapshot`" in out

    code, out = _doctor(repo, capsys, "--for", "publish")
    assert code == 1
    assert "MISSING  tokens" in out and "fix: set GITOPS_GITHUB_TOKEN" in out

    monkeypatch.setenv("GITOPS_CUE", str(repo / "no-such-cue"))
    shutil.rmtree(repo / ".gitops/snapshot")
    code, out = _doctor(repo, capsys, "--cue", str(repo / "no-such-cue"))
    assert code == 1
    assert "MISSING  cue: --cue names" in out and "fix: install cue" in out
    assert f"MISSING  snapshot: no snapshot in {repo / '.gitops/snapshot'}" in out


def test_a_table_with_another_key_schema_is_named(
    repo: Path, capsys: pytest.CaptureFixture[str], dynamodb_server: str
) -> None:
    import boto3

    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=dynamodb_server)
    client.create_table(
        TableName="other-table",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    text = (repo / "gitops-compiler.yaml").read_text()
    (repo / "gitops-compiler.yaml").write_text("table: other-table\n" + text.split("\n", 1)[1])
    code, out = _doctor(repo, capsys, "--for", "publish")
    assert code == 1
    assert "key schema {'id': 'HASH'}, not pk (HASH) + sk (RANGE)" in out


def test_the_fix_names_the_projects_own_snapshot_directory(
    repo: Path, server_store: DynamoDBStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """A project whose `source:` is `snapshot:examples` refreshes `examples/`, not the
    default `.gitops/snapshot`."""
    (repo / ".gitops/snapshot").rename(repo / "examples")
    project_file = repo / "gitops-compiler.yaml"
    project_file.write_text(project_file.read_text() + "source: snapshot:examples\n")
    server_store.put("env#dev", {"namespaces": {}}, cluster=None, author="a", comment="newer")
    _, out = _doctor(repo, capsys)
    assert (
        "behind the table for 1 layer(s) (env#dev): run `gitops-compiler snapshot --out examples`"
        in out
    )
    shutil.rmtree(repo / "examples")
    _, out = _doctor(repo, capsys)
    assert (
        "fix: run `gitops-compiler snapshot --out examples` (reads the table) and commit examples"
        in out
    )


def test_a_repository_url_that_git_would_read_as_an_option_is_refused(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    project_file = repo / "gitops-compiler.yaml"
    text = project_file.read_text()
    hostile = f"--upload-pack=touch {marker};"
    project_file.write_text(text.replace("repoURL: ", f"repoURL: '{hostile}'\n  # ", 1))
    code = main(["doctor", "--project", str(repo), "--for", "publish"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "gitops-compiler.yaml:5: argocd.repoURL" in err
    assert not marker.exists()
