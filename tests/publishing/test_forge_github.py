"""GitHubForge against a fake GitHub over real HTTP: the calls, the retries, the messages."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from compiler import __version__
from compiler.errors import EXIT_OUTSIDE, OutsideError, UsageError
from compiler.publishing.forge import (
    PullRequest,
    PullRequestExists,
    PullRequestOutcome,
    open_or_update,
)
from compiler.publishing.forge.github import GitHubForge, github_forge_from_env, parse_repo
from tests.fake_github import FAKE_REPO, FAKE_TOKEN, PULLS, FakeGitHub

NOW = 1_700_000_000.0  # the injected clock: x-ratelimit-reset is counted from it
HEAD = "gitops/3f2a9c"
LABELS = f"/repos/{FAKE_REPO}/issues/1/labels"
PULL_1 = f"/repos/{FAKE_REPO}/pulls/1"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    """The waits the forge asked for; nothing really sleeps."""
    return []


@pytest.fixture
def make_forge(github: FakeGitHub, sleeps: list[float]) -> Iterator[Callable[..., GitHubForge]]:
    made: list[GitHubForge] = []

    def make(repo: str = FAKE_REPO, token: str = FAKE_TOKEN, **options: Any) -> GitHubForge:
        defaults: dict[str, Any] = {"api_url": github.url, "sleep": sleeps.append}
        made.append(GitHubForge(repo, token, **(defaults | {"clock": lambda: NOW} | options)))
        return made[-1]

    yield make
    for forge in made:
        forge.close()


@pytest.fixture
def forge(make_forge: Callable[..., GitHubForge]) -> GitHubForge:
    return make_forge()


def publish(forge: GitHubForge, **changes: Any) -> PullRequestOutcome:
    arguments = {"head": HEAD, "base": "main", "title": "Compile c1", "body": "Changes: ü"}
    return open_or_update(forge, **(arguments | changes))


def calls(github: FakeGitHub) -> list[str]:
    return [f"{r.method} {r.path}" for r in github.requests]


def message(raised: pytest.ExceptionInfo[OutsideError]) -> str:
    """The message, once the token is known to show nowhere a user or a crash log sees."""
    assert raised.value.exit_code == EXIT_OUTSIDE
    err: BaseException | None = raised.value
    while err is not None:
        assert FAKE_TOKEN not in f"{err} {err!r} {err.args!r}"
        err = err.__cause__ or err.__context__
    return str(raised.value)


def pull(number: int = 1, title: str = "Compile c1", body: str = "Changes: ü") -> PullRequest:
    url = f"https://github.com/{FAKE_REPO}/pull/{number}"
    return PullRequest(number, url, HEAD, "main", title, body)


# -- the calls, as GitHub documents them ------------------------------------------


def test_create_sends_the_documented_requests(github: FakeGitHub, forge: GitHubForge) -> None:
    outcome = publish(forge, labels=["gitops", "cluster:c1"])

    assert outcome == PullRequestOutcome(pull(), "created")
    assert calls(github) == [f"GET {PULLS}", f"POST {PULLS}", f"POST {LABELS}"]
    find, create, label = github.requests
    assert find.query == {"state": "open", "head": f"octo-org:{HEAD}", "base": "main"}
    assert create.json == {
        "title": "Compile c1",
        "head": HEAD,
        "base": "main",
        "body": "Changes: ü",
    }
    assert create.headers["content-type"] == "application/json; charset=utf-8"
    assert label.json == {"labels": ["gitops", "cluster:c1"]}
    for request in github.requests:
        assert request.headers["accept"] == "application/vnd.github+json"
        assert request.headers["authorization"] == f"Bearer {FAKE_TOKEN}"
        assert request.headers["x-github-api-version"] == "2022-11-28"
        assert request.headers["user-agent"] == f"gitops-compiler/{__version__}"
    assert [label["name"] for label in github.pulls()[0]["labels"]] == ["gitops", "cluster:c1"]


def test_find_picks_the_open_pull_for_head_and_base(github: FakeGitHub, forge: GitHubForge) -> None:
    github.add_pull("other-branch")
    github.add_pull(HEAD, base="release")
    github.add_pull(HEAD, title="closed")
    github.close_pull(3)
    assert forge.find_open_pull(HEAD, "main") is None
    github.add_pull(HEAD, title="the one", body="")
    assert forge.find_open_pull(HEAD, "main") == pull(4, "the one", "")


def test_changed_title_or_body_is_updated_and_labelled(
    github: FakeGitHub, forge: GitHubForge
) -> None:
    github.add_pull(HEAD, title="Compile c1", body="old")
    outcome = publish(forge, labels=["gitops"])
    assert outcome == PullRequestOutcome(pull(), "updated")
    assert calls(github) == [f"GET {PULLS}", f"PATCH {PULL_1}", f"POST {LABELS}"]
    assert github.requests[1].json == {"title": "Compile c1", "body": "Changes: ü"}
    assert github.pulls()[0]["body"] == "Changes: ü"


@pytest.mark.parametrize("update", [True, False])
def test_an_identical_pull_is_left_alone(
    github: FakeGitHub, forge: GitHubForge, update: bool
) -> None:
    github.add_pull(HEAD, title="Compile c1", body="Changes: ü" if update else "other")
    outcome = publish(forge, labels=["gitops"], update=update)
    assert outcome.action == "unchanged"
    assert calls(github) == [f"GET {PULLS}"]


def test_an_empty_body_that_github_answers_as_null_is_unchanged(
    github: FakeGitHub, forge: GitHubForge
) -> None:
    github.add_pull(HEAD, title="Compile c1", body="")
    assert publish(forge, body="").action == "unchanged"


# -- races and unknown outcomes -----------------------------------------------------


def test_already_exists_means_find_and_update(github: FakeGitHub, forge: GitHubForge) -> None:
    github.add_pull(HEAD, title="Compile c1", body="old")
    with pytest.raises(PullRequestExists, match="A pull request already exists for octo-org:"):
        forge.create_pull(HEAD, "main", "t", "b")
    github.requests.clear()
    github.script(200, body=[], method="GET", path=PULLS)  # a list that lags behind
    outcome = publish(forge)
    assert outcome == PullRequestOutcome(pull(), "updated")
    assert calls(github) == [f"GET {PULLS}", f"POST {PULLS}", f"GET {PULLS}", f"PATCH {PULL_1}"]
    assert len(github.pulls()) == 1


def test_already_exists_but_not_against_this_base(github: FakeGitHub, forge: GitHubForge) -> None:
    exists = {"message": "Validation Failed", "errors": [{"message": "A pull request already exists for octo-org:x."}]}  # fmt: skip
    github.script(422, body=exists, method="POST")
    with pytest.raises(OutsideError, match="none is open against main"):
        publish(forge)


@pytest.mark.parametrize("status", [502, 504, None])  # None: the connection is lost
def test_a_create_that_happened_after_all_is_found_not_repeated(
    github: FakeGitHub, forge: GitHubForge, sleeps: list[float], status: int | None
) -> None:
    github.script(status, method="POST", path=PULLS, perform=True)
    outcome = publish(forge, labels=["gitops"])
    assert outcome == PullRequestOutcome(pull(), "created")
    assert calls(github) == [f"GET {PULLS}", f"POST {PULLS}", f"GET {PULLS}", f"POST {LABELS}"]
    assert len(github.pulls()) == 1
    assert sleeps == []


def test_a_create_that_did_not_happen_is_retried(
    github: FakeGitHub, forge: GitHubForge, sleeps: list[float]
) -> None:
    github.script(502, body="<html>Bad Gateway</html>", method="POST", path=PULLS)
    assert publish(forge).action == "created"
    assert calls(github) == [f"GET {PULLS}", f"POST {PULLS}", f"GET {PULLS}", f"POST {PULLS}"]
    assert len(github.pulls()) == 1
    assert sleeps == [1.0]


def test_labels_are_retried_without_a_search(
    github: FakeGitHub, forge: GitHubForge, sleeps: list[float]
) -> None:
    github.add_pull(HEAD)
    github.script(502, method="POST", path=LABELS, perform=True)
    forge.add_labels(1, ["gitops"])
    assert calls(github) == [f"POST {LABELS}", f"POST {LABELS}"]
    assert [label["name"] for label in github.pulls()[0]["labels"]] == ["gitops"]
    assert sleeps == [1.0]


# -- refusals ------------------------------------------------------------------------


def test_bad_credentials(github: FakeGitHub, make_forge: Callable[..., GitHubForge]) -> None:
    with pytest.raises(OutsideError) as raised:
        make_forge(token="ghp_wrong0123456789").find_open_pull(HEAD, "main")
    text = message(raised)
    assert f"GitHub GET {PULLS}?state=open" in text
    assert "bad credentials: check GITOPS_GITHUB_TOKEN/GITHUB_TOKEN" in text
    assert "GitHub says: Bad credentials" in text
    assert "ghp_wrong" not in text
    assert len(github.requests) == 1


def test_forbidden_names_the_permission(
    github: FakeGitHub, forge: GitHubForge, sleeps: list[float]
) -> None:
    said = {"message": "Resource not accessible by personal access token"}
    accepted = {"X-Accepted-GitHub-Permissions": "pull_requests=write"}
    github.script(403, body=said, headers=accepted, method="POST")
    with pytest.raises(OutsideError) as raised:
        publish(forge)
    text = message(raised)
    assert f"GitHub POST {PULLS}: 403 forbidden" in text
    assert "Resource not accessible by personal access token" in text
    assert "'Pull requests: write'" in text
    assert "GitHub accepts: pull_requests=write" in text
    assert calls(github) == [f"GET {PULLS}", f"POST {PULLS}"]
    assert sleeps == []


def test_not_found(github: FakeGitHub, make_forge: Callable[..., GitHubForge]) -> None:
    with pytest.raises(OutsideError) as raised:
        make_forge("octo-org/missing").find_open_pull(HEAD, "main")
    text = message(raised)
    assert "404 repository octo-org/missing not found or the token cannot see it" in text
    assert "GitHub says: Not Found" in text


def test_other_validation_errors_are_shown(github: FakeGitHub, forge: GitHubForge) -> None:
    invalid = {"message": "Validation Failed", "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}]}  # fmt: skip
    github.script(422, body=invalid, method="POST")
    with pytest.raises(OutsideError) as raised:
        forge.create_pull(HEAD, "main", "t", "b")
    assert not isinstance(raised.value, PullRequestExists)
    assert "422 validation failed (GitHub says: Validation Failed; PullRequest head invalid)" in (
        message(raised)
    )


def test_a_redirect_is_reported_not_followed(github: FakeGitHub, forge: GitHubForge) -> None:
    github.script(301, headers={"Location": "https://api.github.com/repositories/42/pulls"})
    with pytest.raises(OutsideError) as raised:
        forge.find_open_pull(HEAD, "main")
    assert "301 redirected to https://api.github.com/repositories/42/pulls" in message(raised)
    assert len(github.requests) == 1


def test_an_answer_that_is_not_json(github: FakeGitHub, forge: GitHubForge) -> None:
    github.script(200, body="<html>proxy login</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(OutsideError) as raised:
        forge.find_open_pull(HEAD, "main")
    assert "200 with an answer that is not JSON (text/html): '<html>proxy login</html>'" in (
        message(raised)
    )


# -- rate limits and retries ------------------------------------------------------------


def test_too_many_requests_waits_retry_after(
    github: FakeGitHub, forge: GitHubForge, sleeps: list[float]
) -> None:
    github.script(429, body={"message": "slow down"}, headers={"Retry-After": "7"}, method="POST")
    assert publish(forge).action == "created"
    assert sleeps == [7.0]
    assert calls(github) == [f"GET {PULLS}", f"POST {PULLS}", f"POST {PULLS}"]  # no search


def test_a_wait_beyond_max_wait_fails_at_once(
    github: FakeGitHub, forge: GitHubForge, sleeps: list[float]
) -> None:
    github.script(429, headers={"Retry-After": "3600"})
    with pytest.raises(OutsideError) as raised:
        forge.find_open_pull(HEAD, "main")
    text = message(raised)
    assert "429 rate limited" in text
    assert "GitHub asks to wait 3600 s, longer than the 60 s we wait" in text
    assert "retry after 2023-11-14 23:13:20 UTC" in text  # NOW + 3600
    assert sleeps == []
    assert len(github.requests) == 1


def test_primary_rate_limit_waits_until_the_reset(
    github: FakeGitHub, forge: GitHubForge, sleeps: list[float]
) -> None:
    limited = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 30)}
    github.script(403, body={"message": "API rate limit exceeded for user ID 1."}, headers=limited)
    assert forge.find_open_pull(HEAD, "main") is None
    assert sleeps == [31.0]  # until the reset, and a second for clock skew


def test_secondary_rate_limit_without_a_time_waits_a_minute(
    github: FakeGitHub, forge: GitHubForge, sleeps: list[float]
) -> None:
    said = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."}
    github.script(403, body=said)
    assert forge.find_open_pull(HEAD, "main") is None
    assert sleeps == [60.0]


def test_server_errors_back_off_then_succeed(
    github: FakeGitHub, forge: GitHubForge, sleeps: list[float]
) -> None:
    github.script(500, times=2)
    assert forge.find_open_pull(HEAD, "main") is None
    assert sleeps == [1.0, 2.0]
    assert len(github.requests) == 3


def test_server_errors_until_attempts_run_out(
    github: FakeGitHub, forge: GitHubForge, sleeps: list[float]
) -> None:
    github.script(500, body={"message": "Server Error"}, times=10)
    with pytest.raises(OutsideError) as raised:
        forge.update_pull(1, "t", "b")
    text = message(raised)
    assert f"GitHub PATCH {PULL_1}: 500 server error (GitHub says: Server Error)" in text
    assert "gave up after 4 attempts" in text
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(github.requests) == 4


def test_connection_refused(make_forge: Callable[..., GitHubForge], sleeps: list[float]) -> None:
    with socket.socket() as reserved:  # bound, never listening: every connect is refused
        reserved.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{reserved.getsockname()[1]}"
        with pytest.raises(OutsideError) as raised:
            publish(make_forge(api_url=url, max_attempts=2))
    text = message(raised)
    assert f"GitHub GET {PULLS}?state=open" in text
    assert f"cannot connect to {url}: Connection refused; gave up after 2 attempts" in text
    assert sleeps == [1.0]


# -- construction ---------------------------------------------------------------------------


def test_the_token_is_in_no_repr_and_no_usage_error() -> None:
    forge = GitHubForge(FAKE_REPO, f" {FAKE_TOKEN}\n")  # as read from a file
    assert repr(forge) == f"GitHubForge(repo='{FAKE_REPO}', api_url='https://api.github.com')"
    forge.close()
    with pytest.raises(UsageError) as raised:
        GitHubForge(FAKE_REPO, f"{FAKE_TOKEN}\nInjected: header")
    assert FAKE_TOKEN not in f"{raised.value} {raised.value!r}"
    with pytest.raises(UsageError, match="not a GitHub repository in the form owner/name"):
        GitHubForge("https://github.com/octo-org/x", FAKE_TOKEN)


@pytest.mark.parametrize(
    ("environ", "api_url", "expected_url"),
    [
        ({"GITOPS_GITHUB_TOKEN": FAKE_TOKEN, "GITHUB_TOKEN": "ghp_other0"}, None, "https://api.github.com"),
        ({"GITOPS_GITHUB_TOKEN": " ", "GITHUB_TOKEN": FAKE_TOKEN}, None, "https://api.github.com"),
        ({"GITHUB_TOKEN": FAKE_TOKEN, "GITHUB_API_URL": "https://ghe.example/api/v3/"}, None, "https://ghe.example/api/v3"),
        ({"GITHUB_TOKEN": FAKE_TOKEN, "GITHUB_API_URL": "https://ghe.example/api/v3"}, "http://127.0.0.1:9", "http://127.0.0.1:9"),
    ],
)  # fmt: skip
def test_from_env(environ: dict[str, str], api_url: str | None, expected_url: str) -> None:
    forge = github_forge_from_env(FAKE_REPO, environ, api_url)
    assert (forge.repo, forge.api_url) == (FAKE_REPO, expected_url)
    assert forge._headers["Authorization"] == f"Bearer {FAKE_TOKEN}"
    forge.close()


def test_from_env_without_a_token() -> None:
    with pytest.raises(UsageError, match="set GITOPS_GITHUB_TOKEN or GITHUB_TOKEN"):
        github_forge_from_env(FAKE_REPO, {"GITHUB_TOKEN": ""})


@pytest.mark.parametrize(
    ("url", "repo"),
    [
        ("https://github.com/octo-org/cluster-config", "octo-org/cluster-config"),
        ("https://github.com/octo-org/cluster-config.git", "octo-org/cluster-config"),
        ("https://github.com/octo-org/cluster-config/", "octo-org/cluster-config"),
        ("https://x-access-token:ghp_x@github.com/o/r.git", "o/r"),
        ("git@github.com:octo-org/cluster-config.git", "octo-org/cluster-config"),
        ("ssh://git@github.com/octo-org/cluster-config.git", "octo-org/cluster-config"),
        ("ssh://git@GitHub.com:22/o/my.repo.github.io", "o/my.repo.github.io"),
        ("/srv/git/cluster-config.git", None),
        ("file:///srv/git/cluster-config.git", None),
        ("https://gitlab.com/o/r.git", None),
        ("https://github.com.evil.example/o/r", None),
        ("https://github.com/o/r/pulls", None),
        ("https://github.com/o", None),
        ("git@github.com:o/..", None),
    ],
)
def test_parse_repo(url: str, repo: str | None) -> None:
    assert parse_repo(url) == repo


def test_the_fake_stops_with_its_block() -> None:
    with FakeGitHub() as fake:
        port = int(fake.url.rsplit(":", 1)[1])
    with socket.socket() as client, pytest.raises(ConnectionRefusedError):
        client.connect(("127.0.0.1", port))


def test_a_lost_connection_is_retried_by_us_not_by_urllib3(
    github: FakeGitHub, forge: GitHubForge, sleeps: list[float]
) -> None:
    github.script(None, method="GET")
    assert forge.find_open_pull(HEAD, "main") is None
    assert sleeps == [1.0]
    assert len(github.requests) == 2
