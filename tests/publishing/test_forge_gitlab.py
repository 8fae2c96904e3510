"""What is GitLab's own: the requests as its API documents them, pagination, the 409,
the job token, project paths, `--forge auto`, and `publish --forge gitlab` end to end
against a real bare repository. The guarantees both forges share are in test_forges.py."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from compiler import __version__
from compiler.cli import main
from compiler.errors import OutsideError, UsageError
from compiler.publishing.forge import PullRequestExists, open_or_update
from compiler.publishing.forge.gitlab import GitLabForge, check_project, gitlab_forge_from_env
from compiler.publishing.forge.select import Choice, choose_forge, make_forge, parse_remote
from tests.conftest import ROOT
from tests.fake_gitlab import FAKE_JOB_TOKEN, FAKE_PROJECT, FAKE_TOKEN, MRS, FakeGitLab
from tests.gitrepos import git, has_branch

HEAD = "gitops-compiler/main/all-clusters"
CI_VARIABLES = (
    "GITLAB_TOKEN", "CI_JOB_TOKEN", "CI_API_V4_URL", "CI_SERVER_HOST", "GITLAB_CI",
    "GITHUB_ACTIONS", "GITHUB_SERVER_URL", "GITHUB_API_URL", "GITHUB_TOKEN",
    "GITOPS_GITHUB_TOKEN", "GH_TOKEN", "GITOPS_GIT_TOKEN",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _no_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test's environment only, whichever CI runs it."""
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with FakeGitLab() as fake:
        yield fake


@pytest.fixture
def make(gitlab: FakeGitLab) -> Iterator[Callable[..., GitLabForge]]:
    made: list[GitLabForge] = []

    def build(token: str = FAKE_TOKEN, **options: Any) -> GitLabForge:
        defaults = {"api_url": gitlab.api_url, "sleep": lambda s: None}
        made.append(GitLabForge(FAKE_PROJECT, token, **(defaults | options)))
        return made[-1]

    yield build
    for forge in made:
        forge.close()


def test_the_requests_are_as_gitlab_documents_them(
    gitlab: FakeGitLab, make: Callable[..., GitLabForge]
) -> None:
    outcome = open_or_update(
        make(), head=HEAD, base="main", title="T", body="B ü", labels=["gitops-compiler", "c:1"]
    )
    assert outcome.pull.url == f"https://gitlab.example.com/{FAKE_PROJECT}/-/merge_requests/1"
    find, create, label = gitlab.requests
    assert find.path == create.path == "/api/v4/projects/platform%2Fclusters%2Fargocd-config/merge_requests"  # fmt: skip
    assert find.query == {
        "state": "opened", "source_branch": HEAD, "target_branch": "main",
        "per_page": "100", "page": "1",
    }  # fmt: skip
    assert create.json == {
        "source_branch": HEAD, "target_branch": "main", "title": "T", "description": "B ü"
    }  # fmt: skip
    assert (label.method, label.path, label.json) == ("PUT", f"{MRS}/1", {"add_labels": "gitops-compiler,c:1"})  # fmt: skip
    for request in gitlab.requests:
        assert request.headers["private-token"] == FAKE_TOKEN
        assert "authorization" not in request.headers and "job-token" not in request.headers
        assert request.headers["user-agent"] == f"gitops-compiler/{__version__}"


def test_labels_reviewers_set_are_kept(
    gitlab: FakeGitLab, make: Callable[..., GitLabForge]
) -> None:
    gitlab.add_merge_request(HEAD)
    make().add_labels(1, ["needs-review"])
    make().add_labels(1, ["gitops-compiler", "needs-review"])
    assert gitlab.merge_requests()[0]["labels"] == ["needs-review", "gitops-compiler"]
    with pytest.raises(UsageError, match="has no comma"):
        make().add_labels(1, ["a,b"])


def test_pages_are_followed_and_branches_checked_again(make: Callable[..., GitLabForge]) -> None:
    with FakeGitLab(filters=False) as old:  # a GitLab that ignores the branch filters
        old.add_merge_request(HEAD, title="ours")
        for n in range(150):
            old.add_merge_request(f"other-{n}")
        old.add_merge_request(HEAD, target="release")
        forge = make(api_url=old.api_url)
        found = forge.find_open_pull(HEAD, "main")
        assert found is not None and (found.number, found.title) == (1, "ours")
        assert [r.query["page"] for r in old.requests] == ["1", "2"]
        old.requests.clear()
        old.close_merge_request(1)
        assert forge.find_open_pull(HEAD, "main") is None
        assert [r.query["page"] for r in old.requests] == ["1", "2"]  # and X-Next-Page ends


def test_409_is_a_race_and_names_the_merge_request(
    gitlab: FakeGitLab, make: Callable[..., GitLabForge]
) -> None:
    gitlab.add_merge_request(HEAD)
    with pytest.raises(PullRequestExists, match=r"409 conflict.*already exists for this source branch: !1"):  # fmt: skip
        make().create_pull(HEAD, "main", "t", "b")


def test_409_for_another_target_branch_is_reported(
    gitlab: FakeGitLab, make: Callable[..., GitLabForge]
) -> None:
    gitlab.script(409, body={"message": ["Another open merge request already exists for this source branch: !7"]}, method="POST")  # fmt: skip
    with pytest.raises(OutsideError, match="none is open against main"):
        open_or_update(make(), head=HEAD, base="main", title="t", body="b")


def test_a_parameter_error_shows_gitlabs_error_field(
    gitlab: FakeGitLab, make: Callable[..., GitLabForge]
) -> None:
    with pytest.raises(OutsideError) as raised:
        make().create_pull(HEAD, "main", "", "b")
    assert str(raised.value).endswith("400 (GitLab says: title is missing)")


@pytest.mark.parametrize("status", [401, 403, 404])
def test_the_job_token_says_what_it_cannot_do(
    gitlab: FakeGitLab, make: Callable[..., GitLabForge], status: int
) -> None:
    gitlab.script(status, body={"message": f"{status} Forbidden"})
    forge = make(FAKE_JOB_TOKEN, job_token=True)
    with pytest.raises(OutsideError) as raised:
        forge.find_open_pull(HEAD, "main")
    text = str(raised.value)
    assert "CI_JOB_TOKEN cannot use the merge requests API" in text
    assert "set GITLAB_TOKEN to a project access token with the `api` scope" in text
    assert gitlab.requests[0].headers["job-token"] == FAKE_JOB_TOKEN
    assert "private-token" not in gitlab.requests[0].headers and FAKE_JOB_TOKEN not in text


@pytest.mark.parametrize(
    ("environ", "header", "value"),
    [
        ({"GITLAB_TOKEN": FAKE_TOKEN, "CI_JOB_TOKEN": FAKE_JOB_TOKEN}, "PRIVATE-TOKEN", FAKE_TOKEN),
        ({"GITLAB_TOKEN": " ", "CI_JOB_TOKEN": FAKE_JOB_TOKEN}, "JOB-TOKEN", FAKE_JOB_TOKEN),
    ],
)
def test_from_env(environ: dict[str, str], header: str, value: str) -> None:
    forge = gitlab_forge_from_env(FAKE_PROJECT, environ, "https://gitlab.example.com/api/v4")
    assert forge._headers[header] == value
    assert value not in repr(forge)
    forge.close()
    with pytest.raises(UsageError, match="set GITLAB_TOKEN to a token with the `api` scope"):
        gitlab_forge_from_env(FAKE_PROJECT, {}, "https://gitlab.example.com/api/v4")


@pytest.mark.parametrize(
    ("path", "ok"),
    [("g/n", True), ("g/sub/deeper/n.git", True), ("my.group/n_1", True), ("n", False),
     ("g//n", False), ("g/../n", False), ("g/n./", False), ("g/n?x=1", False)],
)  # fmt: skip
def test_project_paths(path: str, ok: bool) -> None:
    if ok:
        assert "/" in check_project(path) and not check_project(path).endswith(".git")
    else:
        with pytest.raises(UsageError, match="not a GitLab project path"):
            check_project(path)


@pytest.mark.parametrize(
    ("url", "host", "root", "path"),
    [
        ("https://gitlab.com/g/sub/n.git", "gitlab.com", "https://gitlab.com", "g/sub/n"),
        ("https://oauth2:tok@GitLab.Example.com:8443/g/n/", "gitlab.example.com", "https://gitlab.example.com:8443", "g/n"),
        ("git@gitlab.example.com:g/sub/n.git", "gitlab.example.com", "https://gitlab.example.com", "g/sub/n"),
        ("ssh://git@gitlab.example.com:2222/g/n.git", "gitlab.example.com", "https://gitlab.example.com", "g/n"),
        ("http://127.0.0.1:8080/g/n", "127.0.0.1", "http://127.0.0.1:8080", "g/n"),
    ],
)  # fmt: skip
def test_parse_remote(url: str, host: str, root: str, path: str) -> None:
    remote = parse_remote(url)
    assert remote is not None and (remote.host, remote.api_root, remote.path) == (host, root, path)


@pytest.mark.parametrize(
    "url", ["/srv/git/argocd.git", "file:///srv/a.git", "https://h/only", "C:\\a"]
)
def test_parse_remote_of_no_forge(url: str) -> None:
    assert parse_remote(url) is None


@pytest.mark.parametrize(
    ("url", "environ", "kind"),
    [
        ("https://github.com/o/r.git", {}, "github"),
        ("git@gitlab.com:g/sub/r.git", {}, "gitlab"),
        ("https://git.corp/g/r.git", {"GITLAB_CI": "true", "CI_SERVER_HOST": "git.corp"}, "gitlab"),
        ("https://git.corp/g/r.git", {"GITLAB_CI": "", "CI_SERVER_HOST": "git.corp"}, "none"),
        ("https://ghe.corp/o/r", {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://ghe.corp"}, "github"),
        ("https://ghe.corp/o/r", {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com"}, "none"),
        ("https://gitlab.com.evil.example/g/r", {}, "none"),
        ("/srv/git/argocd.git", {"GITLAB_CI": "true", "CI_SERVER_HOST": "git.corp"}, "none"),
    ],
)  # fmt: skip
def test_auto(url: str, environ: dict[str, str], kind: str) -> None:
    choice = choose_forge("auto", url, None, environ)
    assert choice.kind == kind and choice.note is not None
    if kind == "none":
        assert "the branch is pushed, open its pull request yourself" in choice.note


def test_auto_with_forge_repo_and_a_local_path() -> None:
    local = "/srv/git/argocd.git"
    assert choose_forge("auto", local, "g/r", {"CI_API_V4_URL": "http://x/api/v4"}).kind == "gitlab"
    assert choose_forge("auto", local, "o/r", {"GITHUB_API_URL": "http://x"}).kind == "github"
    both = {"CI_API_V4_URL": "http://x/api/v4", "GITHUB_API_URL": "http://x"}
    for environ in ({}, both):
        with pytest.raises(UsageError, match="pass --forge github or --forge gitlab"):
            choose_forge("auto", local, "g/r", environ)


@pytest.mark.parametrize(
    ("url", "environ", "api_url"),
    [
        ("https://gitlab.example.com/g/s/r.git", {}, "https://gitlab.example.com/api/v4"),
        ("git@gitlab.example.com:g/s/r.git", {"CI_API_V4_URL": "https://gitlab.example.com:8443/api/v4"}, "https://gitlab.example.com:8443/api/v4"),
        ("https://other.example/g/r.git", {"CI_API_V4_URL": "https://gitlab.example.com/api/v4"}, "https://other.example/api/v4"),
        ("/srv/git/argocd.git", {"CI_API_V4_URL": "https://gitlab.example.com/api/v4"}, "https://gitlab.example.com/api/v4"),
    ],
)  # fmt: skip
def test_the_api_url(url: str, environ: dict[str, str], api_url: str) -> None:
    forge = make_forge(Choice("gitlab"), url, "g/s/r", environ | {"GITLAB_TOKEN": FAKE_TOKEN})
    assert isinstance(forge, GitLabForge) and forge.api_url == api_url
    forge.close()


def test_a_local_path_needs_the_api_url_and_the_project() -> None:
    with pytest.raises(UsageError, match="set CI_API_V4_URL"):
        make_forge(Choice("gitlab"), "/srv/a.git", "g/r", {"GITLAB_TOKEN": FAKE_TOKEN})
    with pytest.raises(UsageError, match="pass --forge-repo GROUP/SUB/NAME"):
        make_forge(Choice("gitlab"), "/srv/a.git", None, {"GITLAB_TOKEN": FAKE_TOKEN})


# -- publish end to end: real git, the fake GitLab -------------------------------------------


@pytest.fixture
def gitlab_env(gitlab: FakeGitLab, monkeypatch: pytest.MonkeyPatch) -> FakeGitLab:
    monkeypatch.setenv("GITLAB_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("CI_API_V4_URL", gitlab.api_url)
    return gitlab


def _publish(remote: Path, source: Path, *extra: str) -> int:
    return main(
        ["publish", "--from", str(source), "--all", "--repo", str(remote),
         "--forge-repo", FAKE_PROJECT, "--run-id", "gl1", *extra]
    )  # fmt: skip


def test_publish_opens_leaves_then_updates_one_merge_request(
    remote: Path, tmp_path: Path, gitlab_env: FakeGitLab, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _publish(remote, ROOT / "golden", "--forge", "gitlab") == 0, capsys.readouterr().err
    [mr] = gitlab_env.merge_requests()
    assert (mr["source_branch"], mr["target_branch"], mr["labels"]) == (HEAD, "main", ["gitops-compiler"])  # fmt: skip
    assert "Trace id `ms-gl1-git-e40`" in mr["description"]
    out = capsys.readouterr().out
    assert f"merge request !1 created: {mr['web_url']}" in out and "pull request" not in out
    # auto: CI_API_V4_URL names GitLab's API, and --forge-repo asks for a forge.
    before = len(gitlab_env.requests)
    assert _publish(remote, ROOT / "golden", "--run-id", "gl2") == 0
    assert [r.method for r in gitlab_env.requests[before:]] == ["GET"]
    assert "merge request !1 unchanged" in capsys.readouterr().out
    changed = tmp_path / "changed"
    shutil.copytree(ROOT / "golden", changed)
    (changed / "clusters/dev-k3s/cluster.json").write_text('{"name": "dev-k3s"}\n')
    assert _publish(remote, changed, "--run-id", "gl3") == 0
    [mr] = gitlab_env.merge_requests()
    assert "ms-gl3-git-e40" in mr["description"] and "!1 updated" in capsys.readouterr().out
    assert len(gitlab_env.received("POST")) == 1


def test_the_description_is_cut_to_the_forges_limit(
    remote: Path, gitlab_env: FakeGitLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(GitLabForge, "body_limit", 1_500)  # GitLab's is 1,048,576
    assert _publish(remote, ROOT / "golden", "--forge", "gitlab") == 0
    [mr] = gitlab_env.merge_requests()
    assert len(mr["description"]) <= 1_500 and "**Truncated" in mr["description"]


def test_a_refused_token_exits_3_after_the_push(
    remote: Path, gitlab_env: FakeGitLab, capsys: pytest.CaptureFixture[str]
) -> None:
    gitlab_env.script(403, body={"message": "403 Forbidden"}, method="GET")
    assert _publish(remote, ROOT / "golden", "--forge", "gitlab") == 3
    err = capsys.readouterr().err
    assert "403 forbidden" in err and "`api` scope" in err and "Traceback" not in err
    assert has_branch(remote, HEAD)


def test_auto_without_a_forge_pushes_and_says_so(
    remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["publish", "--from", str(ROOT / "golden"), "--all", "--repo", str(remote), "--run-id", "n1"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "--forge auto: no forge for a local repository" in captured.err
    assert has_branch(remote, HEAD) and "open the pull request from" in captured.out


def test_no_byte_produced_holds_the_token(
    remote: Path,
    project_dir: Path,
    gitlab_env: FakeGitLab,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GITOPS_GIT_TOKEN", FAKE_TOKEN)
    code = main(
        ["--debug", "publish", "--project", str(project_dir), "--source", "snapshot:examples",
         "--all", "--repo", str(remote), "--forge", "gitlab", "--forge-repo", FAKE_PROJECT]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    produced = captured.out + captured.err + json.dumps(gitlab_env.merge_requests())
    produced += git(f"--git-dir={remote}", "log", "--all", "-p", "--format=%B")
    produced += "".join(json.dumps(r.json) + r.path for r in gitlab_env.requests)
    assert FAKE_TOKEN not in produced


# -- the body as GitLab Flavored Markdown --------------------------------------------------

# What GLFM reads in plain text beyond GFM (https://docs.gitlab.com/user/markdown/):
# references (@user, #issue, !merge request, ~label, %milestone, &epic, $snippet),
# emoji shortcodes, and `$` against a code span (inline math).
_GLFM_ONLY = re.compile(
    r"(?<![\w/])(?:[@#!~%&$][\w\"]|:[a-z0-9_+-]+:)|\[\[_TOC_\]\]|\$$|^\$", re.MULTILINE
)


def _glfm_surprises(body: str) -> list[str]:
    parser = MarkdownIt("commonmark").enable("table")  # GLFM tables are GFM's
    found = []
    for block in parser.parse(body):
        for token in block.children or ():
            if token.type == "text" and _GLFM_ONLY.search(token.content):
                found.append(token.content)
    return found


def test_the_body_reads_the_same_in_glfm(
    remote: Path, gitlab_env: FakeGitLab, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _publish(remote, ROOT / "golden", "--forge", "gitlab") == 0
    [mr] = gitlab_env.merge_requests()
    golden = (ROOT / "tests/golden/pr-body-prod-quota.md").read_text()
    for body in (mr["description"], golden):
        assert _glfm_surprises(body) == []
        tables = [t for t in MarkdownIt("commonmark").enable("table").parse(body) if t.type == "table_open"]  # fmt: skip
        assert len(tables) == body.count("|---|\n")  # every table parses as one
    assert _glfm_surprises("see !12 and @alice, ~bug, %v1 :smile: $`x`") != []
