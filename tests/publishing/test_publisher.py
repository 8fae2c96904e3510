"""Publish against real local bare repositories, with the real `git`.

The Argo CD repository is a bare repository in tmp_path whose `main` starts
with a README. Tests that are about git mechanics publish `--from` the golden
tree (no compile); tests about the PR body compile a changed copy of the project.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.policy.cue import find_cue
from compiler.policy.cue_binary import cue_version
from tests.conftest import ROOT
from tests.fake_github import FAKE_REPO, FAKE_TOKEN, PULLS, FakeGitHub
from tests.gitrepos import commit_files, files_at, git, has_branch

GOLDEN_BODY = Path(__file__).parent.parent / "golden" / "pr-body-prod-quota.md"
BRANCH_ALL = "gitops-compiler/main/all-clusters"
BRANCH_PROD = "gitops-compiler/main/cluster-prod-eks-1"


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user or system git config; a fixed identity for the commits tests make."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in [k for k in os.environ if k.startswith("GIT_CONFIG_") and k[-1].isdigit()]:
        monkeypatch.delenv(key)
    monkeypatch.delenv("GIT_CONFIG_COUNT", raising=False)
    for key in ("GITOPS_GIT_TOKEN", "GITOPS_GITHUB_TOKEN", "GITHUB_TOKEN", "GH_TOKEN"):
        monkeypatch.delenv(key, raising=False)


def golden_files() -> dict[str, bytes]:
    root = ROOT / "golden"
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def publish_from_golden(remote: Path, *extra: str) -> int:
    return main(
        ["publish", "--from", str(ROOT / "golden"), "--all", "--repo", str(remote),
         "--forge", "none", "--run-id", "t1", *extra]
    )  # fmt: skip


def test_first_publish_pushes_one_commit_on_a_scope_branch(
    remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main_before = git(f"--git-dir={remote}", "rev-parse", "main")
    assert publish_from_golden(remote) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"pushed {BRANCH_ALL}" in out and "trace id ms-t1-git-e40" in out
    assert git(f"--git-dir={remote}", "rev-parse", "main") == main_before  # never the base
    on_branch = files_at(remote, BRANCH_ALL)
    assert on_branch == {"README.md": b"# Argo CD\n", **golden_files()}
    assert git(f"--git-dir={remote}", "rev-parse", f"{BRANCH_ALL}^") == main_before
    message = git(f"--git-dir={remote}", "log", "-1", "--format=%B", BRANCH_ALL)
    assert "Trace-Id: ms-t1-git-e40" in message
    assert f"Gitops-Compiler-Branch: {BRANCH_ALL}" in message
    assert "prod-eks-1: defaults@2 env/prod@2" in message and "cluster/prod-eks-1@1" in message


def test_rerun_with_the_same_inputs_touches_nothing(
    remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert publish_from_golden(remote) == 0
    first = git(f"--git-dir={remote}", "rev-parse", BRANCH_ALL)
    capsys.readouterr()
    assert publish_from_golden(remote, "--run-id", "t2") == 0
    assert git(f"--git-dir={remote}", "rev-parse", BRANCH_ALL) == first
    assert "already holds this tree" in capsys.readouterr().out


def test_tree_equal_to_base_publishes_nothing(
    remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit_files(remote, "main", golden_files(), "merged earlier", author="Alice")
    branches_before = git(f"--git-dir={remote}", "branch", "--list")
    assert publish_from_golden(remote) == 0
    assert "nothing to publish" in capsys.readouterr().out
    assert git(f"--git-dir={remote}", "branch", "--list") == branches_before


def test_a_new_config_updates_the_branch_as_one_commit_on_the_base(
    remote: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert publish_from_golden(remote) == 0
    changed = tmp_path / "changed"
    shutil.copytree(ROOT / "golden", changed)
    quota = (
        changed / "clusters/prod-eks-1/namespaces/monitoring/resourcequota-monitoring-quota.yaml"
    )
    quota.write_text(quota.read_text().replace("cpu: '8'", "cpu: '10'"))
    commit_files(remote, "main", {"OWNERS": b"alice\n"}, "main moved on", author="Alice")
    code = main(
        ["publish", "--from", str(changed), "--all", "--repo", str(remote), "--forge", "none",
         "--run-id", "t2"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    # Our earlier commit is replaced (it was ours), rebuilt on the moved base.
    assert git(f"--git-dir={remote}", "rev-parse", f"{BRANCH_ALL}^") == git(
        f"--git-dir={remote}", "rev-parse", "main"
    )
    on_branch = files_at(remote, BRANCH_ALL)
    assert b"cpu: '10'" in on_branch[quota.relative_to(changed).as_posix()]
    assert on_branch["OWNERS"] == b"alice\n"


def test_a_commit_someone_else_made_on_the_branch_is_kept(
    remote: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert publish_from_golden(remote) == 0
    theirs = commit_files(remote, BRANCH_ALL, {"NOTES.md": b"why\n"}, "a note", author="Bob")
    changed = tmp_path / "changed"
    shutil.copytree(ROOT / "golden", changed)
    (changed / "clusters/dev-k3s/cluster.json").write_text('{"name": "dev-k3s"}\n')
    code = main(
        ["publish", "--from", str(changed), "--all", "--repo", str(remote), "--forge", "none"]
    )
    assert code == 0
    assert git(f"--git-dir={remote}", "rev-parse", f"{BRANCH_ALL}^") == theirs
    assert "not made by gitops-compiler" in capsys.readouterr().err
    assert files_at(remote, BRANCH_ALL)["NOTES.md"] == b"why\n"


def _pre_push_hook(tmp_path: Path, remote: Path, commit: str, times: int) -> dict[str, str]:
    """A pre-push hook that, the first `times` pushes, moves our branch on the remote
    to `commit` after git read the remote's refs and before it sends: a real race."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    counter = tmp_path / "pushes"
    counter.write_text("0")
    hook = hooks / "pre-push"
    hook.write_text(
        "#!/bin/sh\n"
        f'n=$(cat "{counter}"); echo $((n + 1)) > "{counter}"\n'
        f'if [ "$n" -lt {times} ]; then\n'
        f'  git --git-dir="{remote}" update-ref refs/heads/{BRANCH_ALL} {commit}\n'
        "fi\n"
    )
    hook.chmod(0o755)
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.hooksPath",
            "GIT_CONFIG_VALUE_0": str(hooks)}  # fmt: skip


def test_a_concurrent_push_is_fetched_and_rebuilt_on_top(
    remote: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    theirs = commit_files(remote, "elsewhere", {"X.md": b"x\n"}, "racing commit", author="Carol")
    for key, value in _pre_push_hook(tmp_path, remote, theirs, times=1).items():
        monkeypatch.setenv(key, value)
    assert publish_from_golden(remote) == 0, capsys.readouterr().err
    assert (tmp_path / "pushes").read_text().strip() == "2"  # rejected once, then pushed
    # The racing commit was not ours: the retry built on top of it.
    assert git(f"--git-dir={remote}", "rev-parse", f"{BRANCH_ALL}^") == theirs
    assert files_at(remote, BRANCH_ALL, "clusters") == {
        k: v for k, v in golden_files().items() if k.startswith("clusters/")
    }


def test_a_branch_that_keeps_moving_fails_after_bounded_retries(
    remote: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    theirs = commit_files(remote, "elsewhere", {"X.md": b"x\n"}, "racing commit", author="Carol")
    hook_env = _pre_push_hook(tmp_path, remote, theirs, times=100)
    # Every push: the hook moves the branch away from what we fetched (alternating targets).
    hook = tmp_path / "hooks" / "pre-push"
    hook.write_text(
        hook.read_text().replace(
            f"update-ref refs/heads/{BRANCH_ALL} {theirs}",
            f'update-ref refs/heads/{BRANCH_ALL} $(git --git-dir="{remote}" commit-tree '
            f"{theirs}^{{tree}} -p {theirs} -m n$n)",
        )
    )
    for key, value in hook_env.items():
        monkeypatch.setenv(key, value)
    assert publish_from_golden(remote) == 3
    err = capsys.readouterr().err
    assert "rejected 4 times" in err and "Traceback" not in err
    assert (tmp_path / "pushes").read_text().strip() == "4"


def test_missing_base_branch_is_bad_usage(remote: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert publish_from_golden(remote, "--base", "release") == 2
    assert "base branch 'release' does not exist" in capsys.readouterr().err


def test_unreachable_remote_is_an_outside_failure_and_masks_credentials(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "https://robot:s3cr3t-t0ken-value@127.0.0.1:9/org/argocd.git"
    code = main(
        ["publish", "--from", str(ROOT / "golden"), "--all", "--repo", url, "--forge", "none"]
    )
    captured = capsys.readouterr()
    assert code == 3
    assert "s3cr3t-t0ken-value" not in captured.err + captured.out
    # git is given the URL without its user info (issue 15, class 7): the message
    # names the host, the credentials are not even masked there, they are absent.
    assert "the remote https://127.0.0.1:9/org/argocd.git" in captured.err


def test_violations_publish_nothing(
    remote: Path, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project_dir / "overlays/prod/30-bad.yaml").write_text(
        "roles:\n  read-only:\n    rules:\n      - {apiGroups: ['*'], resources: ['*'], verbs: ['*']}\n"
    )
    code = main(
        ["publish", "--project", str(project_dir), "--source", "snapshot:examples", "--all",
         "--repo", str(remote), "--forge", "none"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert "overlays/prod/30-bad.yaml" in captured.err and "nothing published" in captured.err
    assert not has_branch(remote, BRANCH_ALL)


def _merge_into_main(remote: Path, branch: str) -> None:
    git(f"--git-dir={remote}", "update-ref", "refs/heads/main", branch)


def _prod_quota(project: Path, cpu: str, *, deployers: bool) -> None:
    overlay = project / "overlays/prod/10-quotas.yaml"
    text = overlay.read_text().replace('cpu: "8"', f'cpu: "{cpu}"')
    if deployers:
        text += (
            "  payments:\n    access:\n      deployers:\n        clusterRole: edit\n"
            "        groups: [payments-deployers]\n"
        )
    overlay.write_text(text)


def _publish_project(project: Path, remote: Path, *extra: str) -> int:
    return main(
        ["publish", "--project", str(project), "--source", "snapshot:examples", "--repo",
         str(remote), "--forge", "none", "--run-id", "golden", *extra]
    )  # fmt: skip


def test_pr_body_for_prod_quota_change_and_new_rolebinding_matches_golden(
    remote: Path, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _prod_quota(project_dir, "4", deployers=False)
    assert _publish_project(project_dir, remote, "--all") == 0
    _merge_into_main(remote, BRANCH_ALL)
    overlay = project_dir / "overlays/prod/10-quotas.yaml"
    overlay.write_text(overlay.read_text().replace('cpu: "4"', 'cpu: "8"'))
    _prod_quota(project_dir, "8", deployers=True)
    capsys.readouterr()
    assert _publish_project(project_dir, remote, "--cluster", "prod-eks-1", "--dry-run") == 0
    out = capsys.readouterr().out
    body = out.split("pull request body:\n", 1)[1]
    # The policy section names the cue that ran (issue 18): the tests run on either.
    version = cue_version(find_cue(None, os.environ))
    assert f") on cue {version}: one `cue` run" in body
    body = body.replace(f"on cue {version}:", "on cue VERSION:")
    if os.environ.get("GITOPS_UPDATE_GOLDEN"):
        GOLDEN_BODY.write_text(body)
    assert body == GOLDEN_BODY.read_text()
    # What the reviewer must see, stated apart from the golden file:
    security = body.split("### prod-eks-1")[0]
    assert '`spec.hard.cpu`: `"4"` → `"8"`' in security
    assert "overlays/prod/10-quotas.yaml:6" in security
    assert "grants ClusterRole `edit` to Group `payments-deployers`" in security
    assert "Trace id `ms-golden-git-e40`" in body
    assert not has_branch(remote, BRANCH_PROD)  # a dry run pushes nothing
    assert f"branch: {BRANCH_PROD}" in out and "Trace-Id: ms-golden-git-e40" in out


def test_deleted_namespace_shows_as_removed_with_the_layer_that_deleted_it(
    remote: Path, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _publish_project(project_dir, remote, "--all") == 0
    _merge_into_main(remote, BRANCH_ALL)
    (project_dir / "overlays/prod/30-no-monitoring.yaml").write_text(
        "namespaces:\n  monitoring: null\n"
    )
    capsys.readouterr()
    assert _publish_project(project_dir, remote, "--cluster", "prod-eks-1") == 0
    assert f"pushed {BRANCH_PROD}" in capsys.readouterr().out
    on_branch = files_at(remote, BRANCH_PROD, "clusters/prod-eks-1")
    assert not [p for p in on_branch if "/namespaces/monitoring/" in p]
    capsys.readouterr()
    main(["diff", "--project", str(project_dir), "--source", "snapshot:examples",
          "--cluster", "prod-eks-1", "--against", str(ROOT / "golden")])  # fmt: skip
    text = capsys.readouterr().out
    assert "- Namespace monitoring  (deleted by overlays/prod/30-no-monitoring.yaml:2)" in text
    assert "- RoleBinding monitoring/viewers" in text


def test_publish_json_summary(remote: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert publish_from_golden(remote, "--format", "json") == 0
    record = json.loads(capsys.readouterr().out)
    assert record["status"] == "pushed" and record["branch"] == BRANCH_ALL
    assert record["trace_id"] == "ms-t1-git-e40" and record["pull_request"] is None
    assert record["clusters"] == ["dev-k3s", "prod-eks-1", "test-k3s"]
    # issue 17, item 8: the pull request to open by hand, without a second --dry-run run.
    assert record["title"].startswith("Cluster config: ") and "trace id" not in record["title"]
    assert "ms-t1-git-e40" in record["body"] and "prod-eks-1" in record["body"]
    assert publish_from_golden(remote, "--format", "json") == 0  # the branch holds it already
    again = json.loads(capsys.readouterr().out)
    assert again["status"] == "up-to-date" and again["body"] == record["body"]
    assert publish_from_golden(remote) == 0
    out = capsys.readouterr().out
    assert f"pull request title: {record['title']}" in out and record["body"] in out


@pytest.fixture
def github_env(fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    monkeypatch.setenv("GITHUB_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", fake_github.url)
    return fake_github


def _publish_github(remote: Path, source: Path, *extra: str) -> int:
    return main(
        ["publish", "--from", str(source), "--all", "--repo", str(remote), "--forge", "github",
         "--forge-repo", FAKE_REPO, "--run-id", "gh1", *extra]
    )  # fmt: skip


def test_publish_opens_a_pull_request_then_leaves_it_then_updates_it(
    remote: Path, tmp_path: Path, github_env: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _publish_github(remote, ROOT / "golden") == 0, capsys.readouterr().err
    [pull] = github_env.pulls()
    assert (pull["head"]["ref"], pull["base"]["ref"], pull["number"]) == (BRANCH_ALL, "main", 1)
    assert pull["title"] == "Cluster config: dev-k3s, prod-eks-1, test-k3s"
    assert "Trace id `ms-gh1-git-e40`" in pull["body"] and "### prod-eks-1 (added)" in pull["body"]
    [labels] = github_env.received("POST", f"/repos/{FAKE_REPO}/issues/1/labels")
    assert labels.json == {"labels": ["gitops-compiler"]}
    out = capsys.readouterr().out
    assert f"pull request #1 created: {pull['html_url']}" in out

    # The same inputs again: the branch is not moved and the body not rewritten.
    before = len(github_env.received())
    assert _publish_github(remote, ROOT / "golden", "--run-id", "gh2") == 0
    assert [r.method for r in github_env.received()[before:]] == ["GET"]
    assert "#1 unchanged" in capsys.readouterr().out

    # A new config: the same branch and pull request, updated.
    changed = tmp_path / "changed"
    shutil.copytree(ROOT / "golden", changed)
    (changed / "clusters/dev-k3s/cluster.json").write_text('{"name": "dev-k3s"}\n')
    assert _publish_github(remote, changed, "--run-id", "gh3") == 0
    [pull] = github_env.pulls()
    assert "ms-gh3-git-e40" in pull["body"]
    assert len(github_env.received("PATCH")) == 1 and len(github_env.received("POST", PULLS)) == 1
    assert "#1 updated" in capsys.readouterr().out


def test_forge_failures_exit_3_after_the_push_with_a_clear_message(
    remote: Path, github_env: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    github_env.script(403, body={"message": "Resource not accessible by integration"}, method="GET")
    assert _publish_github(remote, ROOT / "golden") == 3
    err = capsys.readouterr().err
    assert "403" in err and "Pull requests" in err and FAKE_TOKEN not in err
    # The branch was pushed; a re-run once the token is fixed opens the pull request.
    assert has_branch(remote, BRANCH_ALL)
    assert _publish_github(remote, ROOT / "golden") == 0
    assert len(github_env.pulls()) == 1


def test_missing_github_token_is_bad_usage_before_any_work(
    remote: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _publish_github(remote, ROOT / "golden") == 2
    assert "GITOPS_GITHUB_TOKEN or GITHUB_TOKEN" in capsys.readouterr().err
    assert not has_branch(remote, BRANCH_ALL)


def test_no_byte_produced_by_a_full_publish_holds_the_token(
    remote: Path,
    project_dir: Path,
    github_env: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GITOPS_GIT_TOKEN", FAKE_TOKEN)
    code = main(
        ["publish", "--project", str(project_dir), "--source", "snapshot:examples", "--all",
         "--repo", str(remote), "--forge-repo", FAKE_REPO]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    produced = captured.out + captured.err + json.dumps(github_env.pulls())
    produced += git(f"--git-dir={remote}", "log", "--all", "-p", "--format=%B")
    assert FAKE_TOKEN not in produced
    sent = [r for r in github_env.received() if r.json is not None]
    assert all(FAKE_TOKEN not in json.dumps(r.json) for r in sent)
