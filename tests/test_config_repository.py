"""A config repository of one's own, as a new user makes it (issue 20, "done when").

The wheel is built from this working tree and installed into a fresh venv in a
temporary directory, away from any checkout; from there `init` writes a
repository in which validate, golden check, the published pre-commit hooks (the
real pre-commit) and the `run:` steps of the workflow `init` wrote (with the
composite action's steps in place of its `uses:`) all pass, offline: pip reads
the wheelhouse `make test` builds, and the cue is this checkout's launcher, as a
runner's would be the one the action installs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler import __version__
from tests.conftest import ROOT
from tests.test_precommit import (  # noqa: F401  (fixtures)
    _IDENTITY,
    WHEELHOUSE,
    _pre_commit,
    hook_repo,
    pre_commit_home,
)

pytestmark = pytest.mark.slow
ACTION = "acme/gitops-compiler@"
GITHUB = {"github.base_ref": "main"}  # the pull request's context the steps read


def _expand(text: str, context: Mapping[str, str]) -> str:
    """`${{ name }}` as Actions fills it in; a name the test does not know fails."""
    return re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", lambda m: context[m.group(1)], text)


def _run(argv: list[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{argv}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def _offline() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {
        **env, **_IDENTITY, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }  # fmt: skip


@pytest.fixture(scope="module")
def installed(hook_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """The bin directory of a fresh venv holding the wheel (not editable) and its deps."""
    work = tmp_path_factory.mktemp("wheel")
    env = _offline()
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", "dist", str(hook_repo)], work, env
    )
    (wheel,) = (work / "dist").glob("gitops_compiler-*.whl")
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", "venv"], work, env)
    _run([str(work / "venv/bin/python"), "-m", "pip", "install", "--quiet", str(wheel)], work, env)
    return work / "venv/bin"


def _user_env(bin_dir: Path, summary: Path) -> dict[str, str]:
    return {
        **_offline(),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GITOPS_CUE": str(ROOT / "tools/cue-wasm/cue"),
        "GITHUB_STEP_SUMMARY": str(summary),
    }


def test_init_from_the_wheel_then_validate_golden_hooks_and_workflow_pass(
    installed: Path,
    hook_repo: Path,  # noqa: F811
    pre_commit_home: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    env = _user_env(installed, tmp_path / "summary.md")
    where = _run([str(installed / "python"), "-c", "import compiler; print(compiler.__file__)"],
                 tmp_path, env).stdout  # fmt: skip
    assert str(installed.parent) in where and str(ROOT) not in where

    _run(["gitops-compiler", "init", "config", "--env", "dev,prod"], tmp_path, env)
    repo = tmp_path / "config"
    assert not (repo / "policies/rbac.cue").exists()  # the built-in rules come from the wheel
    _run(["git", "init", "--quiet", "-b", "main", "."], repo, env)
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "--quiet", "-m", "config repository"], repo, env)
    _run(["git", "init", "--quiet", "--bare", str(tmp_path / "origin.git")], tmp_path, env)
    _run(["git", "remote", "add", "origin", str(tmp_path / "origin.git")], repo, env)
    _run(["git", "push", "--quiet", "origin", "main"], repo, env)

    valid = _run(["gitops-compiler", "validate", "--all", "--source", "snapshot"], repo, env)
    assert "2 cluster(s) valid" in valid.stdout
    assert "golden files match" in _run(["gitops-compiler", "golden", "check"], repo, env).stdout

    _hooks_pass(repo, hook_repo, pre_commit_home, env)

    # A pull request: a change to prod, with its golden files, checked as CI would.
    overlay = repo / "overlays/prod/10-platform.yaml"
    overlay.write_text(overlay.read_text().replace("cpu: 500m", "cpu: 750m"))
    _run(["git", "checkout", "--quiet", "-b", "more-cpu"], repo, env)
    _run(["gitops-compiler", "golden", "update"], repo, env)
    _run(["git", "commit", "--quiet", "-am", "more cpu in prod"], repo, env)
    ran = [name for name, argv, cwd, step_env in _workflow_steps(repo, env)
           if _run(argv, cwd, step_env)]  # fmt: skip
    assert ran == [
        "Install gitops-compiler", "Install cue", "gitops-compiler validate",
        "Install gitops-compiler", "Install cue", "gitops-compiler golden",
        "Install gitops-compiler", "Install cue", "gitops-compiler diff",
    ]  # fmt: skip
    summary = (tmp_path / "summary.md").read_text()
    assert "every cluster valid" in summary and "golden/ is current" in summary
    assert "example-prod" in summary and "750m" in summary  # the diff, as the PR body shows it


def _hooks_pass(repo: Path, hook_repo: Path, home: Path, env: Mapping[str, str]) -> None:  # noqa: F811
    """`pre-commit run --all-files` with the hooks `init` named, fetched from this tree's
    commit instead of the network (same ids, same entries)."""
    config = repo / ".pre-commit-config.yaml"
    written = yaml.safe_load(config.read_text())
    assert written["repos"][0]["rev"] == f"v{__version__}"
    rev = _run(["git", "rev-parse", "HEAD"], hook_repo, env).stdout.strip()
    written["repos"][0].update(repo=str(hook_repo), rev=rev)
    config.write_text(yaml.safe_dump(written))
    _run(["git", "add", ".pre-commit-config.yaml"], repo, env)
    done = _pre_commit(home, repo, "run", "--all-files", "--verbose")
    assert done.returncode == 0, done.stdout + done.stderr
    for hook in ("gitops-compiler validate", "gitops-compiler golden check", "format"):
        assert re.search(rf"{hook}\.+Passed", done.stdout), done.stdout
    _run(["git", "checkout", "--", ".pre-commit-config.yaml"], repo, env)
    _run(["git", "reset", "--quiet"], repo, env)


def _workflow_steps(
    repo: Path, env: Mapping[str, str]
) -> Iterator[tuple[str, list[str], Path, dict[str, str]]]:
    """The pull-request job's steps: its own `run:`s, and the action's for each `uses:` of
    it; `actions/*` (checkout, setup-python) are what this test already did."""
    flow = yaml.safe_load((repo / ".github/workflows/gitops-compiler.yml").read_text())
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    defaults = {k: str(v["default"]) for k, v in action["inputs"].items() if "default" in v}
    for step in flow["jobs"]["check"]["steps"]:
        uses = step.get("uses", "")
        if uses.startswith(ACTION):
            assert uses == f"{ACTION}v{__version__}"
            given = {k: _expand(str(v), GITHUB) for k, v in step.get("with", {}).items()}
            inputs = {**defaults, **given}
            for inner in action["runs"]["steps"]:
                if "run" in inner:
                    yield _step(inner, inputs, repo, env)
        elif "run" in step:
            yield _step(step, {}, repo, env)
        else:
            assert uses.startswith("actions/"), uses


def _step(
    step: Mapping[str, Any], inputs: Mapping[str, str], repo: Path, env: Mapping[str, str]
) -> tuple[str, list[str], Path, dict[str, str]]:
    context = {**{f"inputs.{k}": v for k, v in inputs.items()}, **GITHUB}

    def expand(text: str) -> str:
        return _expand(text, context)

    step_env = {**env, **{k: expand(str(v)) for k, v in step.get("env", {}).items()}}
    name = expand(step.get("name", ""))
    cwd = repo / expand(step.get("working-directory", "."))
    assert step.get("shell", "bash") == "bash"
    return name, ["bash", "-e", "-c", expand(step["run"])], cwd, step_env
