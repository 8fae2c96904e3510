"""The pre-commit hook for one changed overlay, as `git commit` runs it.

The workload's project (project file, overlays, policies and its snapshot of the
table) becomes a git repository; each run stages a new value in one overlay of
the changed cluster's environment and times `gitops-compiler validate --hook
--source snapshot:snapshot FILE`, the `gitops-validate` hook of
`.pre-commit-hooks.yaml`, as a whole process. The hook recompiles the clusters
of that environment (a third of the fleet) from the snapshot, and asks the
bench's table whether the snapshot is current, as it asks the real one.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from compiler.yamlio import dump_yaml

_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
_PROJECT = ("gitops-compiler.yaml", "overlays", "policies", "snapshot")


@dataclass(frozen=True)
class HookResult:
    seconds: float  # the median of the runs, each a whole process
    clusters: int  # the clusters the changed overlay affects, recompiled by each run
    runs: int
    fastest: float = 0.0  # the fastest run: on a shared machine, nearer the cost itself


def measure_hook(
    project: Path, env_name: str, endpoint: str, env: Mapping[str, str], runs: int, repo: Path
) -> HookResult:
    """`runs` hook runs, each after staging a new value in `overlays/<env_name>/`."""
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    for name in _PROJECT:
        source = project / name
        if source.is_dir():
            shutil.copytree(source, repo / name)
        else:
            shutil.copy2(source, repo / name)
    genv = {**env, **_GIT_IDENTITY}
    _git(repo, genv, "init", "-q")
    _git(repo, genv, "add", "-A")
    _git(repo, genv, "commit", "-q", "-m", "the workload")
    overlay = Path("overlays") / env_name / "10-addons.yaml"
    # The hook asks the table (boto3's own variable: the project file names no endpoint).
    henv = {**genv, "AWS_ENDPOINT_URL_DYNAMODB": endpoint}
    argv = [sys.executable, "-m", "compiler", "validate", "--hook", "--source"]
    argv += ["snapshot:snapshot", str(overlay)]
    seconds, clusters = [], 0
    for run in range(1, runs + 1):
        (repo / overlay).write_bytes(
            dump_yaml({"addons": {"logging": {"values": {"replicaCount": 10 + run}}}})
        )
        _git(repo, genv, "add", str(overlay))
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=repo, env=henv, capture_output=True, text=True, check=False)
        seconds.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"bench: the hook failed:\n{done.stdout}{done.stderr}")
        found = re.search(r"^(\d+) cluster\(s\) valid", done.stdout, re.MULTILINE)
        if found is None:
            raise SystemExit(f"bench: the hook recompiled nothing:\n{done.stdout}{done.stderr}")
        clusters = int(found.group(1))
    return HookResult(statistics.median(seconds), clusters, runs, min(seconds))


def _git(repo: Path, env: Mapping[str, str], *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env=dict(env), check=True, capture_output=True)
