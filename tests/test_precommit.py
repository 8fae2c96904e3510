"""The published hooks, run by the real pre-commit in a config repository.

The hooks are `language: python`: pre-commit builds their environment with
pip, here offline from the wheelhouse `make test` fills (PIP_NO_INDEX). The
hook repository is a commit of this working tree, so what is tested is what is
in the tree, committed or not. `try-repo` builds a fresh environment on every
call (~40 s here), so one test uses it as a user trying the hooks would; the
others reference the same hooks from a `.pre-commit-config.yaml` and
`pre-commit run`, whose environment is built once per session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.sources import Pin
from compiler.sources.dynamodb import DynamoDBStore
from tests.conftest import ROOT

WHEELHOUSE = ROOT / ".wheelhouse"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "hook-test",
    "GIT_AUTHOR_EMAIL": "hook-test@example.com",
    "GIT_COMMITTER_NAME": "hook-test",
    "GIT_COMMITTER_EMAIL": "hook-test@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **_IDENTITY}, check=True, capture_output=True
    )


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This working tree (tracked and new files) as one commit: a fixed rev, so pre-commit
    installs the hooks' environment once per session."""
    if not (WHEELHOUSE / ".built").exists():
        pytest.fail("no .wheelhouse: run the tests with `make test`, which builds it")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    repo = tmp_path_factory.mktemp("hook-repo")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        target = repo / name.decode()
        if source.is_symlink():  # compiler/builtin_policies: the package's link to policies/
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source.readlink())
        elif source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    _git("init", "--quiet", ".", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "--quiet", "-m", "hooks under test", cwd=repo)
    return repo


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def config_repo(tmp_path: Path) -> Iterator[Path]:
    """A config repository: the example project, its DynamoDB layers as a snapshot."""
    repo = tmp_path / "config"
    repo.mkdir()
    shutil.copy2(ROOT / "gitops-compiler.yaml", repo)
    for name in ("overlays", "policies", "golden"):
        shutil.copytree(ROOT / name, repo / name)
    shutil.copytree(ROOT / "examples", repo / ".gitops/snapshot", ignore=_no_readme)
    _git("init", "--quiet", ".", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "--quiet", "-m", "config", cwd=repo)
    yield repo


def _no_readme(directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n.endswith(".md")]


def _pre_commit(home: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **_IDENTITY,
        "PRE_COMMIT_HOME": str(home),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    pre_commit = Path(sys.executable).parent / "pre-commit"
    return subprocess.run(
        [str(pre_commit), *args],
        cwd=config,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_hook(
    hook_repo: Path, home: Path, config: Path, hook: str, *args: str, hook_args: str = ""
) -> subprocess.CompletedProcess[str]:
    """`pre-commit run HOOK` with the published hooks referenced by path and rev;
    `hook_args` (a YAML flow list) is given to the validate and golden hooks."""
    rev = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=hook_repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    extra = f"\n        args: {hook_args}" if hook_args else ""
    (config / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hook_repo}\n    rev: {rev}\n    hooks:\n"
        f"      - id: gitops-validate{extra}\n      - id: gitops-golden{extra}\n"
        "      - id: gitops-format\n"
    )
    _git("add", ".pre-commit-config.yaml", cwd=config)
    return _pre_commit(home, config, "run", hook, "--verbose", *args)


def test_try_repo_validate_hook_on_a_good_overlay(
    hook_repo: Path, tmp_path: Path, config_repo: Path
) -> None:
    done = _pre_commit(
        tmp_path / "home", config_repo, "try-repo", str(hook_repo), "gitops-validate",
        "--verbose", "--files", "overlays/prod/10-quotas.yaml",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 cluster(s) valid" in done.stdout  # prod-eks-1 only: the overlay's env


def test_validate_hook_passes_a_good_overlay_and_names_file_and_line_of_a_bad_one(
    hook_repo: Path, pre_commit_home: Path, config_repo: Path
) -> None:
    good = run_hook(
        hook_repo, pre_commit_home, config_repo, "gitops-validate",
        "--files", "overlays/dev/10-network.yaml",
    )  # fmt: skip
    assert good.returncode == 0, good.stdout + good.stderr
    assert "1 cluster(s) valid" in good.stdout  # dev-k3s only: the overlay's env

    bad = config_repo / "overlays/prod/30-escalate.yaml"
    bad.write_text(
        "roles:\n  read-only:\n    rules:\n"
        "      - {apiGroups: [''], resources: [pods], verbs: ['*']}\n"
    )
    _git("add", "-A", cwd=config_repo)
    failed = run_hook(
        hook_repo, pre_commit_home, config_repo, "gitops-validate",
        "--files", "overlays/prod/30-escalate.yaml",
    )  # fmt: skip
    assert failed.returncode != 0
    assert "overlays/prod/30-escalate.yaml:4" in failed.stdout
    assert "prod-eks-1" in failed.stdout and "Traceback" not in failed.stdout

    bad.write_text("namespaces:\n  monitoring:\n    defaultDeny: on\n")
    broken = run_hook(
        hook_repo, pre_commit_home, config_repo, "gitops-validate",
        "--files", "overlays/prod/30-escalate.yaml",
    )  # fmt: skip
    assert broken.returncode != 0
    assert "30-escalate.yaml:3" in broken.stdout and "quote it" in broken.stdout


def test_golden_hook_fails_after_an_overlay_change_and_passes_after_golden_update(
    hook_repo: Path, pre_commit_home: Path, config_repo: Path
) -> None:
    overlay = config_repo / "overlays/prod/10-quotas.yaml"
    overlay.write_text(overlay.read_text().replace('cpu: "8"', 'cpu: "6"'))
    _git("add", "-A", cwd=config_repo)
    failed = run_hook(hook_repo, pre_commit_home, config_repo, "gitops-golden", "--all-files")
    assert failed.returncode != 0
    assert "-    cpu: '8'\n+    cpu: '6'" in failed.stdout
    assert "gitops-compiler golden update" in failed.stdout

    code = main(["golden", "update", "--project", str(config_repo), "--source", "snapshot"])
    assert code == 0
    _git("add", "-A", cwd=config_repo)
    passed = run_hook(hook_repo, pre_commit_home, config_repo, "gitops-golden", "--all-files")
    assert passed.returncode == 0, passed.stdout


def test_format_hook_rewrites_a_messy_overlay_then_passes(
    hook_repo: Path, pre_commit_home: Path, config_repo: Path
) -> None:
    messy = config_repo / "overlays/dev/20-messy.yaml"
    messy.write_text("namespaces: {zeta: {labels: {team: 'a', environment: dev}}, alpha: null}\n")
    _git("add", "-A", cwd=config_repo)
    first = run_hook(
        hook_repo, pre_commit_home, config_repo, "gitops-format",
        "--files", "overlays/dev/20-messy.yaml",
    )  # fmt: skip
    assert first.returncode != 0  # it changed the file: the commit must pick that up
    assert messy.read_text() == (
        "namespaces:\n  alpha: null\n  zeta:\n    labels:\n      environment: dev\n      team: a\n"
    )
    _git("add", "-A", cwd=config_repo)
    second = run_hook(
        hook_repo, pre_commit_home, config_repo, "gitops-format",
        "--files", "overlays/dev/20-messy.yaml",
    )  # fmt: skip
    assert second.returncode == 0, second.stdout


# -- issue 16: the hooks see what git sees (deletions, renames, links, any snapshot) --


def _commit_all(repo: Path) -> None:
    _git("add", "-A", cwd=repo)
    _git("commit", "--quiet", "-m", "setup", cwd=repo)


def test_a_commit_that_only_deletes_an_overlay_is_checked(
    hook_repo: Path, pre_commit_home: Path, config_repo: Path
) -> None:
    # pre-commit passes no deleted path: before, both hooks were skipped and this landed.
    _git("rm", "--quiet", "overlays/prod/20-no-sandbox.yaml", cwd=config_repo)
    validate = run_hook(hook_repo, pre_commit_home, config_repo, "gitops-validate")
    assert validate.returncode == 1, validate.stdout + validate.stderr
    assert "prod-eks-1: namespaces.sandbox.quotas" in validate.stdout
    assert "violation(s) in 1 cluster(s)" in validate.stdout  # prod only: where it was
    golden = run_hook(hook_repo, pre_commit_home, config_repo, "gitops-golden")
    assert golden.returncode == 1, golden.stdout + golden.stderr
    assert "Skipped" not in golden.stdout


def test_a_rename_across_environments_checks_the_clusters_it_leaves(
    hook_repo: Path, pre_commit_home: Path, config_repo: Path
) -> None:
    _git(
        "mv", "overlays/prod/20-no-sandbox.yaml", "overlays/dev/20-no-sandbox.yaml",
        cwd=config_repo,
    )  # fmt: skip
    done = run_hook(hook_repo, pre_commit_home, config_repo, "gitops-validate")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "prod-eks-1: namespaces.sandbox" in done.stdout  # the old side, never passed


def test_a_linked_overlay_and_a_linked_env_directory_map_to_the_clusters_that_read_them(
    hook_repo: Path, pre_commit_home: Path, config_repo: Path
) -> None:
    shared = config_repo / "shared"
    shared.mkdir()
    link = config_repo / "overlays/prod/20-no-sandbox.yaml"
    original = link.read_text()
    (shared / "no-sandbox.yaml").write_text(original)
    link.unlink()
    link.symlink_to("../../shared/no-sandbox.yaml")
    _commit_all(config_repo)
    # The target changes, not the link: only `shared/no-sandbox.yaml` is staged.
    (shared / "no-sandbox.yaml").write_text("addons: {}\n")
    _git("add", "-A", cwd=config_repo)
    target = run_hook(hook_repo, pre_commit_home, config_repo, "gitops-validate")
    assert target.returncode == 1, target.stdout + target.stderr
    assert "prod-eks-1: namespaces.sandbox" in target.stdout
    _git("reset", "--quiet", "--hard", cwd=config_repo)

    # The whole env directory a link; a file inside its target changes.
    link.unlink()
    link.write_text(original)
    (config_repo / "overlays/prod").rename(config_repo / "prod-overlays")
    (config_repo / "overlays/prod").symlink_to("../prod-overlays")
    _commit_all(config_repo)
    (config_repo / "prod-overlays/10-quotas.yaml").write_text(
        "namespaces: {monitoring: {quotas: null}}\n"
    )
    _git("add", "-A", cwd=config_repo)
    inside = run_hook(hook_repo, pre_commit_home, config_repo, "gitops-validate")
    assert inside.returncode == 1, inside.stdout + inside.stderr
    assert "prod-eks-1: namespaces.monitoring.quotas" in inside.stdout


def test_a_snapshot_elsewhere_is_an_input_of_every_cluster(
    hook_repo: Path, pre_commit_home: Path, config_repo: Path
) -> None:
    (config_repo / ".gitops/snapshot").rename(config_repo / "snap")
    _commit_all(config_repo)
    record = config_repo / "snap/env/prod.yaml"
    record.write_text(record.read_text() + "# reviewed\n")
    _git("add", "-A", cwd=config_repo)
    done = run_hook(
        hook_repo, pre_commit_home, config_repo, "gitops-validate",
        hook_args="[--source, 'snapshot:snap']",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 cluster(s) valid" in done.stdout  # before: "no cluster reads them"
    golden = run_hook(
        hook_repo, pre_commit_home, config_repo, "gitops-golden",
        hook_args="[--source, 'snapshot:snap']",
    )  # fmt: skip
    assert golden.returncode == 0, golden.stdout + golden.stderr
    assert "golden files match" in golden.stdout  # compiled, not skipped as unread


def test_a_snapshot_older_than_the_table_is_a_warning_naming_the_refresh(
    hook_repo: Path, pre_commit_home: Path, config_repo: Path, server_store: DynamoDBStore
) -> None:
    from compiler.sources.snapshot import SnapshotStore, seed

    seed(server_store, SnapshotStore(config_repo / ".gitops/snapshot"))
    newest = server_store.read("env#prod", Pin())
    assert newest is not None
    server_store.put("env#prod", newest.config, cluster=None, author="t", comment="newer")
    project_file = config_repo / "gitops-compiler.yaml"
    project_file.write_text(
        project_file.read_text().replace(
            "table: gitops-config",
            f"table: {server_store.table}\nendpointUrl: {server_store.endpoint_url}",
        )
    )
    _git("add", "-A", cwd=config_repo)
    stale = run_hook(hook_repo, pre_commit_home, config_repo, "gitops-validate")
    assert stale.returncode == 0, stale.stdout + stale.stderr
    assert "the snapshot .gitops/snapshot is older than the table" in stale.stdout
    assert f"env/prod@{newest.version} → @{newest.version + 1}" in stale.stdout
    assert "gitops-compiler snapshot --out .gitops/snapshot" in stale.stdout

    project_file.write_text(
        project_file.read_text().replace(server_store.endpoint_url or "?", "http://127.0.0.1:9")
    )
    _git("add", "-A", cwd=config_repo)
    unknown = run_hook(hook_repo, pre_commit_home, config_repo, "gitops-validate")
    assert unknown.returncode == 0, unknown.stdout + unknown.stderr
    assert "could not check whether the snapshot .gitops/snapshot is current" in unknown.stdout
