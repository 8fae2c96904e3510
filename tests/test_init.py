"""`gitops-compiler init`: a config repository that works at once, offline (issue 20)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from compiler.cli import main


def _init(directory: Path, *args: str) -> int:
    return main(["init", str(directory), *args])


def test_init_writes_a_repository_that_validates_and_matches_its_golden_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "config"
    assert _init(repo, "--env", "dev,stage,prod") == 0
    for name in (
        "gitops-compiler.yaml", "overlays/stage/10-platform.yaml", "policies/waivers.yaml",
        "policies/organisation.cue", ".gitops/snapshot/cluster/example-stage.yaml",
        "golden/clusters/example-prod/kustomization.yaml", ".pre-commit-config.yaml",
        ".github/workflows/gitops-compiler.yml", ".gitignore", "README.md",
    ):  # fmt: skip
        assert (repo / name).is_file(), name
    assert not (repo / "policies/rbac.cue").exists()  # built in: from the package
    capsys.readouterr()
    project = ["--project", str(repo)]
    assert main(["validate", "--all", "--source", "snapshot", *project]) == 0
    assert "3 cluster(s) valid" in capsys.readouterr().out
    assert main(["golden", "check", *project]) == 0, capsys.readouterr()
    overlays = [str(p) for p in sorted(repo.glob("overlays/*/*.yaml"))]
    assert main(["format", "--check", *overlays]) == 0

    # The organisation's own rule is part of every run.
    (repo / "overlays/dev/20-default.yaml").write_text(
        "namespaces:\n  default:\n    labels: {team: platform, environment: dev}\n"
    )
    capsys.readouterr()
    assert main(["validate", "--all", "--source", "snapshot", *project]) == 1
    assert "org-no-default-namespace" in capsys.readouterr().out


def test_the_hooks_and_the_action_are_this_version(tmp_path: Path) -> None:
    from compiler import __version__

    assert _init(tmp_path / "r", "--shards", "3") == 0
    hooks = yaml.safe_load((tmp_path / "r/.pre-commit-config.yaml").read_text())
    assert hooks["repos"][0]["rev"] == f"v{__version__}"
    assert [h["id"] for h in hooks["repos"][0]["hooks"]] == [
        "gitops-validate", "gitops-golden", "gitops-format",
    ]  # fmt: skip
    flow = yaml.safe_load((tmp_path / "r/.github/workflows/gitops-compiler.yml").read_text())
    check, publish = flow["jobs"]["check"], flow["jobs"]["publish"]
    assert "id-token" not in flow["permissions"]  # pull requests need no cloud credentials
    assert [s["with"]["command"] for s in check["steps"][1:]] == ["validate", "golden", "diff"]
    assert all(s["uses"] == f"acme/gitops-compiler@v{__version__}" for s in check["steps"][1:])
    assert publish["strategy"]["matrix"]["shard"] == [1, 2, 3]
    assert "--shard ${{ matrix.shard }}/3" in publish["steps"][-1]["with"]["args"]


# GitLab's documented keywords (https://docs.gitlab.com/ci/yaml/): what CI lint accepts at
# the top level besides jobs, and in a job.
GITLAB_GLOBAL = {"default", "include", "stages", "variables", "workflow", "spec"}
GITLAB_JOB = {
    "after_script", "allow_failure", "artifacts", "before_script", "cache", "coverage",
    "dast_configuration", "dependencies", "environment", "extends", "hooks", "identity",
    "id_tokens", "image", "inherit", "interruptible", "manual_confirmation", "needs", "pages",
    "parallel", "release", "resource_group", "retry", "rules", "script", "run", "secrets",
    "services", "stage", "tags", "timeout", "trigger", "when", "variables",
}  # fmt: skip


def test_init_ci_gitlab_writes_a_gitlab_ci_file_of_documented_keywords(tmp_path: Path) -> None:
    from compiler import __version__

    assert _init(tmp_path / "r", "--ci", "gitlab", "--shards", "3") == 0
    assert not (tmp_path / "r/.github").exists()
    config = yaml.safe_load((tmp_path / "r/.gitlab-ci.yml").read_text())
    jobs = {name: job for name, job in config.items() if name not in GITLAB_GLOBAL}
    assert set(jobs) == {".merge-request", "validate", "golden", "diff", "publish"}
    for name, job in {"default": config["default"], **jobs}.items():
        assert set(job) <= GITLAB_JOB, (name, set(job) - GITLAB_JOB)
    assert config["stages"] == ["check", "publish"]
    assert config["variables"]["GITOPS_COMPILER_VERSION"] == __version__
    merge_request = [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert jobs[".merge-request"]["rules"] == merge_request
    assert {jobs[n]["extends"] for n in ("validate", "golden", "diff")} == {".merge-request"}
    publish = jobs["publish"]
    assert publish["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    assert publish["parallel"] == 3 and "--forge gitlab" in publish["script"][-1]
    assert publish["script"][-1].endswith('--shard "$CI_NODE_INDEX/$CI_NODE_TOTAL"')
    assert ".gitlab-ci.yml" in (tmp_path / "r/README.md").read_text()
    assert _init(tmp_path / "one", "--ci", "gitlab") == 0
    one = yaml.safe_load((tmp_path / "one/.gitlab-ci.yml").read_text())["publish"]
    assert "parallel" not in one and "--shard" not in one["script"][-1]


def test_init_refuses_a_non_empty_directory_and_never_overwrites_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "config"
    repo.mkdir()
    (repo / "README.md").write_text("ours\n")
    assert _init(repo) == 2
    assert "is not empty; pass --existing" in capsys.readouterr().err
    assert _init(repo, "--existing") == 0
    assert (repo / "README.md").read_text() == "ours\n"
    assert "kept" in capsys.readouterr().out and (repo / "gitops-compiler.yaml").is_file()
    assert _init(repo, "--force") == 0
    assert (repo / "README.md").read_text() != "ours\n"


@pytest.mark.parametrize("envs", ["", "Prod", "dev,dev", "dev_1"])
def test_bad_environments_are_bad_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], envs: str
) -> None:
    assert _init(tmp_path / "r", "--env", envs) == 2
    assert "--env" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
