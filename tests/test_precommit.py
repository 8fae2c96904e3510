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
    hook_repo: Path, home: Path, config: Path, hook: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """`pre-commit run HOOK` with the published hooks referenced by path and rev."""
    rev = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=hook_repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    (config / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hook_repo}\n    rev: {rev}\n    hooks:\n"
        "      - id: gitops-validate\n      - id: gitops-golden\n      - id: gitops-format\n"
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
