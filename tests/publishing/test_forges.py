"""The guarantees every forge gives, written once and run against GitHub and GitLab.

Each forge talks real HTTP to its fake (tests/fake_github.py, tests/fake_gitlab.py),
which answers as the forge's REST documentation says. A `Side` is what differs:
the paths, how a pull request is stored, how a rate limit is said.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pytest

from compiler.errors import EXIT_OUTSIDE, OutsideError
from compiler.publishing.forge import Forge, PullRequestOutcome, open_or_update
from compiler.publishing.forge.github import GitHubForge
from compiler.publishing.forge.gitlab import GitLabForge
from tests import fake_github, fake_gitlab
from tests.fake_github import FakeGitHub
from tests.fake_gitlab import FakeGitLab

NOW = 1_700_000_000.0
HEAD = "gitops-compiler/main/cluster-c1"
JITTER_DRAW = 0.5  # GitLab's back-off is jittered: 1 - 0.25 * 0.5 of GitHub's


@dataclass(frozen=True)
class Side:
    name: str
    token: str
    find: str  # "METHOD path" of each call, as the fake records it
    create: str
    update: str  # of pull request 1
    label: str
    backoff: float  # the factor the jitter applies to every back-off
    start: Callable[[], AbstractContextManager[Any]]
    make: Callable[..., Any]  # (fake, sleeps, **options) -> the forge
    add: Callable[[Any, str, str], None]  # (fake, title, body): an open pull request for HEAD
    stored: Callable[[Any], list[tuple[str, str, list[str]]]]  # title, body, labels
    rate_limited: tuple[int, dict[str, str], Any]  # a rate limit with a reset 30 s away
    wrong_token: str
    refused: tuple[int, Any]  # a 403 as the forge says it
    refusals: tuple[str, str, str]  # what a 401, 403 and 404 message tell to check


def _github_make(fake: FakeGitHub, sleeps: list[float], **options: Any) -> GitHubForge:
    repo = options.pop("repo", fake_github.FAKE_REPO)
    token = options.pop("token", fake_github.FAKE_TOKEN)
    defaults = {"api_url": fake.url, "sleep": sleeps.append, "clock": lambda: NOW}
    return GitHubForge(repo, token, **(defaults | options))


def _gitlab_make(fake: FakeGitLab, sleeps: list[float], **options: Any) -> GitLabForge:
    project = options.pop("repo", fake_gitlab.FAKE_PROJECT)
    token = options.pop("token", fake_gitlab.FAKE_TOKEN)
    defaults = {"api_url": fake.api_url, "sleep": sleeps.append, "clock": lambda: NOW}
    defaults["draw"] = lambda: JITTER_DRAW
    return GitLabForge(project, token, **(defaults | options))


def _github_stored(fake: FakeGitHub) -> list[tuple[str, str, list[str]]]:
    return [(p["title"], p["body"] or "", [x["name"] for x in p["labels"]]) for p in fake.pulls()]


def _gitlab_stored(fake: FakeGitLab) -> list[tuple[str, str, list[str]]]:
    return [(m["title"], m["description"] or "", m["labels"]) for m in fake.merge_requests()]


GITHUB = Side(
    name="github",
    token=fake_github.FAKE_TOKEN,
    find=f"GET {fake_github.PULLS}",
    create=f"POST {fake_github.PULLS}",
    update=f"PATCH {fake_github.PULLS}/1",
    label=f"POST /repos/{fake_github.FAKE_REPO}/issues/1/labels",
    backoff=1.0,
    start=FakeGitHub,
    make=_github_make,
    add=lambda fake, title, body: fake.add_pull(HEAD, title=title, body=body),
    stored=_github_stored,
    rate_limited=(
        403,
        {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 30)},
        {"message": "API rate limit exceeded for user ID 1."},
    ),
    wrong_token="ghp_wrong0123456789",
    refused=(403, {"message": "Resource not accessible by personal access token"}),
    refusals=(
        "check GITOPS_GITHUB_TOKEN/GITHUB_TOKEN",
        "'Pull requests: write'",
        "repository octo-org/missing not found or the token cannot see it",
    ),
)

GITLAB = Side(
    name="gitlab",
    token=fake_gitlab.FAKE_TOKEN,
    find=f"GET {fake_gitlab.MRS}",
    create=f"POST {fake_gitlab.MRS}",
    update=f"PUT {fake_gitlab.MRS}/1",
    label=f"PUT {fake_gitlab.MRS}/1",
    backoff=1 - 0.25 * JITTER_DRAW,
    start=FakeGitLab,
    make=_gitlab_make,
    add=lambda fake, title, body: fake.add_merge_request(HEAD, title=title, description=body),
    stored=_gitlab_stored,
    rate_limited=(
        429,
        {
            "RateLimit-Limit": "600",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(int(NOW) + 30),
        },
        "Retry later",
    ),
    wrong_token="glpat-wrong0123456789",
    refused=(403, {"message": "403 Forbidden"}),
    refusals=(
        "check GITLAB_TOKEN",
        "the `api` scope and at least the Developer role on platform/clusters/argocd-config",
        "project octo-org/missing not found at http://127.0.0.1:",
    ),
)


@pytest.fixture(params=[GITHUB, GITLAB], ids=lambda side: side.name)
def side(request: pytest.FixtureRequest) -> Side:
    chosen: Side = request.param
    return chosen


@pytest.fixture
def fake(side: Side) -> Iterator[Any]:
    with side.start() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make(side: Side, fake: Any, sleeps: list[float]) -> Iterator[Callable[..., Any]]:
    made: list[Any] = []

    def build(**options: Any) -> Any:
        made.append(side.make(fake, sleeps, **options))
        return made[-1]

    yield build
    for forge in made:
        forge.close()


@pytest.fixture
def forge(make: Callable[..., Any]) -> Forge:
    built: Forge = make()
    return built


def publish(forge: Forge, **changes: Any) -> PullRequestOutcome:
    arguments = {"head": HEAD, "base": "main", "title": "Compile c1", "body": "Changes: ü | x"}
    return open_or_update(forge, **(arguments | changes))


def calls(fake: Any) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests]


def message(side: Side, raised: pytest.ExceptionInfo[OutsideError]) -> str:
    """The message, once the token shows nowhere a user or a crash log sees."""
    assert raised.value.exit_code == EXIT_OUTSIDE
    err: BaseException | None = raised.value
    while err is not None:
        assert side.token not in f"{err} {err!r} {err.args!r}"
        err = err.__cause__ or err.__context__
    return str(raised.value)


# -- create, update, unchanged ---------------------------------------------------------


def test_create(side: Side, fake: Any, forge: Forge) -> None:
    outcome = publish(forge, labels=["gitops-compiler", "cluster:c1"])
    assert (outcome.action, outcome.pull.number, outcome.pull.head) == ("created", 1, HEAD)
    assert calls(fake) == [side.find, side.create, side.label]
    assert side.stored(fake) == [
        ("Compile c1", "Changes: ü | x", ["gitops-compiler", "cluster:c1"])
    ]


def test_update(side: Side, fake: Any, forge: Forge) -> None:
    side.add(fake, "Compile c1", "old")
    outcome = publish(forge, labels=["gitops-compiler"])
    assert (outcome.action, outcome.pull.body) == ("updated", "Changes: ü | x")
    assert calls(fake) == [side.find, side.update, side.label]
    assert side.stored(fake) == [("Compile c1", "Changes: ü | x", ["gitops-compiler"])]


@pytest.mark.parametrize("body", ["Changes: ü | x", ""])
def test_unchanged(side: Side, fake: Any, forge: Forge, body: str) -> None:
    side.add(fake, "Compile c1", body)  # an empty body: GitHub and GitLab answer null
    assert publish(forge, body=body, labels=["gitops-compiler"]).action == "unchanged"
    assert calls(fake) == [side.find]


def test_an_unmoved_branch_leaves_a_different_body_alone(
    side: Side, fake: Any, forge: Forge
) -> None:
    side.add(fake, "Compile c1", "what reviewers read")
    assert publish(forge, update=False).action == "unchanged"
    assert calls(fake) == [side.find]


# -- one pull request per scope: races and unknown outcomes -------------------------------


def test_a_create_race_finds_and_updates(side: Side, fake: Any, forge: Forge) -> None:
    side.add(fake, "Compile c1", "old")
    method, path = side.find.split(" ")
    fake.script(200, body=[], method=method, path=path)  # a list that lags behind
    outcome = publish(forge)
    assert (outcome.action, outcome.pull.number) == ("updated", 1)
    assert calls(fake) == [side.find, side.create, side.find, side.update]
    assert len(side.stored(fake)) == 1


@pytest.mark.parametrize("status", [502, None])  # None: the connection is lost
def test_a_create_that_happened_after_all_is_found_not_repeated(
    side: Side, fake: Any, forge: Forge, sleeps: list[float], status: int | None
) -> None:
    method, path = side.create.split(" ")
    fake.script(status, method=method, path=path, perform=True)
    assert publish(forge).action == "created"
    assert calls(fake) == [side.find, side.create, side.find]
    assert len(side.stored(fake)) == 1 and sleeps == []


def test_a_create_that_did_not_happen_is_retried(
    side: Side, fake: Any, forge: Forge, sleeps: list[float]
) -> None:
    method, path = side.create.split(" ")
    fake.script(502, body="<html>Bad Gateway</html>", method=method, path=path)
    assert publish(forge).action == "created"
    assert calls(fake) == [side.find, side.create, side.find, side.create]
    assert len(side.stored(fake)) == 1
    assert sleeps == [1.0 * side.backoff]


# -- rate limits and server errors ------------------------------------------------------


def test_retry_after_is_waited(side: Side, fake: Any, forge: Forge, sleeps: list[float]) -> None:
    fake.script(429, body={"message": "slow down"}, headers={"Retry-After": "7"}, method="POST")
    assert publish(forge).action == "created"
    assert sleeps == [7.0]  # the server's wait, never jittered
    assert calls(fake) == [side.find, side.create, side.create]


def test_a_spent_quota_waits_until_its_reset(
    side: Side, fake: Any, forge: Forge, sleeps: list[float]
) -> None:
    status, headers, body = side.rate_limited
    fake.script(status, headers=headers, body=body)
    assert forge.find_open_pull(HEAD, "main") is None
    assert sleeps == [31.0]  # until the reset, and a second for clock skew


def test_a_wait_beyond_max_wait_fails_at_once(
    side: Side, fake: Any, forge: Forge, sleeps: list[float]
) -> None:
    fake.script(429, headers={"Retry-After": "3600"})
    with pytest.raises(OutsideError) as raised:
        forge.find_open_pull(HEAD, "main")
    text = message(side, raised)
    assert "429 rate limited" in text and "longer than the 60 s we wait" in text
    assert "retry after 2023-11-14 23:13:20 UTC" in text
    assert sleeps == [] and len(fake.requests) == 1


def test_server_errors_back_off_then_succeed(
    side: Side, fake: Any, forge: Forge, sleeps: list[float]
) -> None:
    fake.script(500, times=2)
    assert forge.find_open_pull(HEAD, "main") is None
    assert sleeps == [1.0 * side.backoff, 2.0 * side.backoff]
    assert len(fake.requests) == 3


def test_server_errors_until_attempts_run_out(
    side: Side, fake: Any, forge: Forge, sleeps: list[float]
) -> None:
    fake.script(503, body={"message": "Service Unavailable"}, times=10)
    with pytest.raises(OutsideError) as raised:
        forge.update_pull(1, "t", "b")
    text = message(side, raised)
    method, path = side.update.split(" ")
    assert f"{method} {path.removeprefix('/api/v4')}: 503 server error" in text
    assert "Service Unavailable" in text and "gave up after 4 attempts" in text
    assert sleeps == [x * side.backoff for x in (1.0, 2.0, 4.0)]


# -- refusals: exit 3, naming what to check ----------------------------------------------


def test_bad_credentials(side: Side, fake: Any, make: Callable[..., Any]) -> None:
    with pytest.raises(OutsideError) as raised:
        make(token=side.wrong_token).find_open_pull(HEAD, "main")
    text = message(side, raised)
    assert "401" in text and side.refusals[0] in text and side.wrong_token not in text
    assert len(fake.requests) == 1


def test_forbidden(side: Side, fake: Any, forge: Forge, sleeps: list[float]) -> None:
    status, said = side.refused
    fake.script(status, body=said, method="POST")
    with pytest.raises(OutsideError) as raised:
        publish(forge)
    text = message(side, raised)
    assert "403 forbidden" in text and side.refusals[1] in text and said["message"] in text
    assert calls(fake) == [side.find, side.create] and sleeps == []


def test_not_found(side: Side, make: Callable[..., Any]) -> None:
    with pytest.raises(OutsideError) as raised:
        make(repo="octo-org/missing").find_open_pull(HEAD, "main")
    text = message(side, raised)
    assert "404" in text and side.refusals[2] in text


# -- the token ------------------------------------------------------------------------------


def test_the_token_is_in_no_byte_produced(
    side: Side, fake: Any, forge: Forge, make: Callable[..., Any]
) -> None:
    """Everything the forge hands back (pull requests, errors of every kind, its repr) and
    everything it sent besides the one header."""
    produced = [repr(forge), repr(publish(forge, labels=["gitops-compiler"]))]
    for status in (401, 403, 404, 409, 422, 500):
        fake.script(status, body={"message": f"no {status}"}, times=4)
        with pytest.raises(OutsideError) as raised:
            forge.update_pull(1, "t", "b")
        produced.append(message(side, raised))
    with pytest.raises(OutsideError) as raised:
        make(token=side.token + "x").find_open_pull(HEAD, "main")
    produced.append(message(side, raised))
    produced += [json.dumps(r.json) for r in fake.requests] + [r.path for r in fake.requests]
    assert not [text for text in produced if side.token in text]
    for request in fake.requests:
        carrying = [k for k, v in request.headers.items() if side.token in v]
        assert carrying in ([], ["authorization"], ["private-token"])
