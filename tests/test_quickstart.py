"""The README's quick start, run as it is written (issue 17: a newcomer goes from
`make demo` through a published change and a rollback with no step it does not show).

The block after `<!-- quickstart -->` runs in bash in a copy of the project, with
two substitutions: `make demo` becomes the command the target runs once the venv and
the cue launcher are installed (they are, for the tests), and `/tmp/` a directory of
the test. No AWS variable, no GITOPS_CUE: the point is that none is needed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from compiler.project import load_project
from tests.conftest import ROOT

MARKER = "<!-- quickstart -->"


def quickstart() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(re.escape(MARKER) + r"\n```sh\n(.*?)\n```\n", text, re.S)
    assert block, f"README.md has no sh block after {MARKER}"
    return block.group(1)


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "checkout"
    project.mkdir()
    shutil.copy2(ROOT / "gitops-compiler.yaml", project)
    for name in ("overlays", "policies", "examples"):
        shutil.copytree(ROOT / name, project / name)
    (project / ".venv").symlink_to(Path(sys.executable).parent.parent)
    (project / "tools").symlink_to(ROOT / "tools")
    return project


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GITOPS_"))}
    env.update(HOME=str(tmp_path / "home"), GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    env.update(GIT_AUTHOR_NAME="New Engineer", GIT_AUTHOR_EMAIL="new@example.com")
    env.update(GIT_COMMITTER_NAME="New Engineer", GIT_COMMITTER_EMAIL="new@example.com")
    env["GITOPS_CACHE_DIR"] = os.environ["GITOPS_CACHE_DIR"]  # the session's, not $HOME's
    return env


def test_the_quick_start_runs_as_written(tmp_path: Path) -> None:
    script = quickstart()
    assert script.startswith("make demo\n")
    script = script.replace("make demo\n", ".venv/bin/python -m compiler.demo out\n", 1)
    script = script.replace("/tmp/", f"{tmp_path}/")
    project, env = _project(tmp_path), _environment(tmp_path)
    try:
        ran = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:  # the server `local up` started, whatever happened
        subprocess.run(
            [".venv/bin/gitops-compiler", "local", "down"],
            cwd=project,
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, output
    assert "Traceback" not in output
    # The edit's diff, the published change with its pull request, the rollback.
    assert "~ ResourceQuota dev-team/dev-quota" in ran.stdout
    assert 'spec.hard.cpu: "4" -> "6"' in ran.stdout
    assert "pull request title: Cluster config: dev-k3s" in ran.stdout
    assert "reverted cluster/dev-k3s@3 to cluster/dev-k3s@2 as @4" in ran.stderr
    assert "nothing to publish: the compiled tree equals main" in ran.stdout
    assert "rollback of cluster/dev-k3s@3 to cluster/dev-k3s@2" in ran.stdout


def _yaml_blocks() -> list[dict[str, object]]:
    text = (ROOT / "README.md").read_text()
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)\n```", text, re.S)]


def test_the_readme_appproject_is_the_one_the_applicationsets_name() -> None:
    """The AppProject of the README (issue 17, item 9) fits the project file's
    `argocd:` settings and the example clusters, and the ApplicationSets name it."""
    [project] = [b for b in _yaml_blocks() if b.get("kind") == "AppProject"]
    settings = load_project(ROOT).argocd
    assert project["apiVersion"] == "argoproj.io/v1alpha1"
    assert project["metadata"] == {"name": settings.project, "namespace": settings.namespace}
    spec = project["spec"]
    assert settings.repo_url in spec["sourceRepos"]
    servers = {
        json.loads(p.read_text())["server"] for p in ROOT.glob("golden/clusters/*/cluster.json")
    }
    assert {d["server"] for d in spec["destinations"]} == servers
    kinds = {(k["group"], k["kind"]) for k in spec["clusterResourceWhitelist"]}
    assert ("", "Namespace") in kinds and ("projectcalico.org", "IPPool") in kinds
    for path in (ROOT / "golden/applicationsets").glob("*.yaml"):
        appset = yaml.safe_load(path.read_text())
        assert appset["metadata"]["namespace"] == settings.namespace
        assert appset["spec"]["template"]["spec"]["project"] == settings.project
