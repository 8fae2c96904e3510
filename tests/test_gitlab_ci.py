"""The `.gitlab-ci.yml` that `init --ci gitlab` writes, run as GitLab would run it (issue 22).

GitLab cannot run here, so this test plays its part: it picks the jobs whose
`rules:` match the pipeline's CI variables, merges `default:` and `extends:`
into each, and runs `before_script` and `script` in one `bash -e -o pipefail`
(as the runner's shell does) in a repository made by `init`. Around it, the real
parts: moto's DynamoDB server seeded from the repository's snapshot, real git
with bare repositories for the config and the Argo CD repository, the real cue,
and the fake GitLab API (tests/fake_gitlab.py) for the merge request. The
compiler is this checkout's (`pip install gitops-compiler==X` is then already
satisfied; PIP_NO_INDEX keeps it offline).
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.fake_gitlab import FAKE_PROJECT, FAKE_TOKEN, FakeGitLab
from tests.gitrepos import git, has_branch

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent  # gitops-compiler and the python of this checkout's venv
_ENV_NAME = r"\$\{?(\w+)\}?"
_RULE = re.compile(rf'^{_ENV_NAME} == (?:"([^"]*)"|{_ENV_NAME})$')
_jobs = itertools.count(1)
BRANCH = "gitops-compiler/main/all-clusters"  # publish --all's branch on the Argo CD repository


@dataclass(frozen=True)
class Job:
    name: str
    returncode: int
    output: str


def _rule_matches(expression: str, env: Mapping[str, str]) -> bool:
    """The two forms the template uses: `$A == "text"` and `$A == $B` (an undefined
    variable is null and equals nothing, https://docs.gitlab.com/ci/jobs/job_rules/)."""
    match = _RULE.fullmatch(expression.strip())
    assert match is not None, f"the test does not know the rule {expression!r}"
    left = env.get(match[1])
    right = match[2] if match[2] is not None else env.get(match[3])
    return left is not None and left == right


def _expand(value: str, env: Mapping[str, str]) -> str:
    """A `variables:` value, as GitLab expands `$NAME` and `${NAME}` in it."""
    return re.sub(_ENV_NAME, lambda m: env.get(m[1], ""), value)


def _pipeline(repo: Path, env: Mapping[str, str]) -> list[Job]:
    """The jobs a pipeline with these CI variables runs, stage by stage; a failed stage
    stops the pipeline, as GitLab's does."""
    config = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    default: dict[str, Any] = config.get("default", {})
    ran: list[Job] = []
    for stage in config["stages"]:
        for name, job in config.items():
            if name.startswith(".") or not isinstance(job, dict) or "script" not in job:
                continue
            if "extends" in job:  # one hidden job, one level: what the template uses
                job = {**config[job["extends"]], **job}
            if job.get("stage", "test") != stage:
                continue
            if not any(_rule_matches(rule["if"], env) for rule in job["rules"]):
                continue
            ran.append(_run_job(name, {**default, **job}, config.get("variables", {}), repo, env))
        if any(done.returncode != 0 for done in ran):
            break
    return ran


def _run_job(
    name: str,
    job: Mapping[str, Any],
    variables: Mapping[str, str],
    repo: Path,
    env: Mapping[str, str],
) -> Job:
    job_env = {**env, "CI_JOB_ID": str(next(_jobs)), "CI_JOB_NAME": name}
    job_env["CI_PROJECT_DIR"] = str(repo)
    for key, value in {**variables, **job.get("variables", {})}.items():
        job_env.setdefault(key, _expand(str(value), job_env))  # CI/CD settings win
    lines = [*job.get("before_script", []), *job["script"]]
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", "\n".join(lines)],
        cwd=repo, env=job_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return Job(name, done.returncode, done.stdout + done.stderr)


@pytest.fixture
def config_repo(tmp_path: Path, remote: Path, dynamodb_server: str) -> tuple[Path, dict[str, str]]:
    """`init --ci gitlab`, committed and pushed to a bare origin; its table (a name of its
    own on the session's moto server) seeded from its snapshot. And the runner's base
    environment: this venv first on PATH, a cue, git's identity, no network for pip."""
    cue = os.environ.get("GITOPS_CUE") or str(ROOT / "tools/cue-wasm/cue")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CI_", "GITLAB", "GITHUB"))},
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "GITOPS_CUE": cue,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_server,
        "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "GIT_AUTHOR_NAME": "Config Author", "GIT_AUTHOR_EMAIL": "author@example.com",
        "GIT_COMMITTER_NAME": "Config Author", "GIT_COMMITTER_EMAIL": "author@example.com",
    }  # fmt: skip
    env.pop("VIRTUAL_ENV", None)
    repo = tmp_path / "config"

    def run(*argv: str) -> str:
        done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"
        return done.stdout

    subprocess.run(
        [str(BIN / "gitops-compiler"), "init", str(repo), "--ci", "gitlab"],
        env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    project = repo / "gitops-compiler.yaml"
    table = f"gitops-config-gl{os.getpid()}-{tmp_path.name[-12:]}".replace("_", "-")
    project.write_text(project.read_text().replace("table: gitops-config\n", f"table: {table}\n"))
    run("gitops-compiler", "table", "create")
    run("gitops-compiler", "config", "seed", ".gitops/snapshot")
    run("git", "init", "--quiet", "-b", "main", ".")
    run("git", "add", "-A")
    run("git", "commit", "--quiet", "-m", "config repository")
    git("init", "--quiet", "--bare", "-b", "main", str(tmp_path / "config.git"))
    run("git", "remote", "add", "origin", str(tmp_path / "config.git"))
    run("git", "push", "--quiet", "origin", "main")
    return repo, env


def _merge_request(env: Mapping[str, str]) -> dict[str, str]:
    return {
        **env, "GITLAB_CI": "true", "CI": "true", "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main", "CI_DEFAULT_BRANCH": "main",
        "CI_PROJECT_PATH": "platform/config", "CI_PIPELINE_ID": "41",
    }  # fmt: skip


def _change(repo: Path, env: Mapping[str, str], branch: str, files: Mapping[str, str]) -> None:
    def run(*argv: str) -> None:
        subprocess.run(argv, cwd=repo, env=env, check=True, capture_output=True, timeout=600)

    run("git", "checkout", "--quiet", "-B", branch, "main")
    for name, text in files.items():
        (repo / name).write_text(text)
    run("git", "add", "-A")
    run("git", "commit", "--quiet", "-m", f"change on {branch}")


def test_merge_request_jobs_pass_on_a_good_change_and_fail_on_a_bad_one(
    config_repo: tuple[Path, dict[str, str]],
) -> None:
    repo, env = config_repo
    overlay = "overlays/prod/10-platform.yaml"
    _change(repo, env, "more-cpu", {overlay: (repo / overlay).read_text().replace("500m", "750m")})
    subprocess.run(["gitops-compiler", "golden", "update"], cwd=repo, env=env, check=True,
                   capture_output=True, timeout=600)  # fmt: skip
    subprocess.run(["git", "commit", "--quiet", "-am", "golden"], cwd=repo, env=env, check=True)
    jobs = _pipeline(repo, _merge_request(env))
    assert [(j.name, j.returncode) for j in jobs] == [
        ("validate", 0),
        ("golden", 0),
        ("diff", 0),
    ], "\n".join(j.output for j in jobs)
    assert "2 cluster(s) valid" in jobs[0].output and "golden files match" in jobs[1].output
    diff = (repo / "gitops-diff.md").read_text()  # the job's artifact
    assert "example-prod" in diff and "750m" in diff and "example-dev" not in diff
    assert git("status", "--porcelain", cwd=repo) == ""  # caches and artifacts are ignored

    # A bad change: the organisation's own rule refuses it, and golden/ was not updated.
    bad = "namespaces:\n  default:\n    labels: {team: platform, environment: dev}\n"
    _change(repo, env, "bad", {"overlays/dev/20-default.yaml": bad})
    jobs = _pipeline(repo, _merge_request(env))
    # Each job reports; the diff of a config that breaks a rule is no diff (exit 1 too).
    assert [(j.name, j.returncode) for j in jobs] == [("validate", 1), ("golden", 1), ("diff", 1)]
    assert "org-no-default-namespace" in jobs[0].output and "example-dev" in jobs[1].output
    assert "Traceback" not in "".join(j.output for j in jobs)


def test_the_default_branch_publishes_a_merge_request_on_gitlab(
    config_repo: tuple[Path, dict[str, str]], remote: Path
) -> None:
    repo, env = config_repo
    overlay = "overlays/prod/10-platform.yaml"
    _change(repo, env, "main", {overlay: (repo / overlay).read_text().replace("500m", "750m")})
    # A version in the table only (not in the snapshot): publish reads the table.
    (repo.parent / "v2.yaml").write_text(
        "namespaces:\n  platform:\n    annotations: {owner: table}\n"
    )
    subprocess.run(["gitops-compiler", "config", "put", "--layer", "cluster/example-prod",
                    str(repo.parent / "v2.yaml"), "-m", "v2"], cwd=repo, env=env, check=True,
                   capture_output=True, timeout=600)  # fmt: skip
    with FakeGitLab() as gitlab:
        push = {
            **env, "GITLAB_CI": "true", "CI": "true", "CI_PIPELINE_SOURCE": "push",
            "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main",
            "CI_PROJECT_PATH": "platform/config", "CI_PIPELINE_ID": "42",
            "CI_API_V4_URL": gitlab.api_url, "CI_SERVER_HOST": "127.0.0.1",
            # The project's CI/CD variables, as its header asks.
            "ARGOCD_REPO": str(remote), "ARGOCD_PROJECT": FAKE_PROJECT, "GITLAB_TOKEN": FAKE_TOKEN,
        }  # fmt: skip
        jobs = _pipeline(repo, push)
        assert [(j.name, j.returncode) for j in jobs] == [("publish", 0)], jobs[0].output
        [mr] = gitlab.merge_requests()
        assert (mr["source_branch"], mr["target_branch"]) == (BRANCH, "main")
        assert "**example-prod** (added)" in mr["description"]
        limits = "clusters/example-prod/namespaces/platform/limitrange.yaml"
        assert "cpu: 750m" in git(f"--git-dir={remote}", "show", f"{BRANCH}:{limits}")
        namespace = "clusters/example-prod/namespaces/platform/namespace.yaml"
        assert "owner: table" in git(f"--git-dir={remote}", "show", f"{BRANCH}:{namespace}")
        assert f"merge request !1 created: {mr['web_url']}" in jobs[0].output
        assert FAKE_TOKEN not in jobs[0].output
        assert has_branch(remote, BRANCH)
        assert re.search(r"Trace-Id: ms-gl42\.\d+-git-e40", git(f"--git-dir={remote}", "log",
                         "-1", "--format=%B", BRANCH))  # fmt: skip

        # Without ARGOCD_REPO the job says what to set, before anything runs.
        del push["ARGOCD_REPO"]
        [job] = _pipeline(repo, push)
        assert (
            job.returncode != 0 and "set ARGOCD_REPO in Settings > CI/CD > Variables" in job.output
        )
