"""GitHub's REST API as a `Forge`, over the shared HTTP retry loop (`operations.http`).

What is retried, and how (https://docs.github.com/en/rest/pulls/pulls,
https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api):

- 429, and a 403 that is a rate limit: wait Retry-After, else until
  x-ratelimit-reset, else a minute; a wait over `max_wait` fails at once,
  saying when to retry.
- 5xx, a refused or lost connection, a timeout: back off exponentially.
- A create whose outcome is unknown (a 5xx, or the connection lost after the
  request went out) is never repeated blindly: look for the pull request by
  head first. Updates and labels are idempotent and simply retried.

Every call makes at most `max_attempts` requests (a create's look-ups are
calls of their own). The token goes into one header and nowhere else: not in
messages, not in the repr.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import urlencode

from compiler import __version__
from compiler.errors import OutsideError, UsageError
from compiler.operations.http import (
    Failure,
    GaveUp,
    HttpClient,
    RateLimit,
    Response,
    RetryPolicy,
    Sleep,
)
from compiler.publishing.forge import PULL_REQUEST, PullRequest, PullRequestExists
from compiler.publishing.forge.rest import (
    come_back_later,
    json_answer,
    json_request,
    look_up,
    shown,
    unanswered,
)
from compiler.publishing.prbody import GITHUB_BODY_LIMIT
from compiler.secrets import register

DEFAULT_API_URL = "https://api.github.com"
TOKEN_VARIABLES = ("GITOPS_GITHUB_TOKEN", "GITHUB_TOKEN")
_API_VERSION = "2022-11-28"
_WRITE = "Pull requests: write"
_ALREADY_EXISTS = "a pull request already exists"

_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # http.client echoes a bad header value in its error
_OWNER_NAME = r"(?P<owner>[A-Za-z0-9][A-Za-z0-9-]*)/(?P<name>[A-Za-z0-9._-]+?)(?:\.git)?/?"
_REPO_URLS = (
    re.compile(rf"https?://(?:[^@/\s]+@)?github\.com/{_OWNER_NAME}", re.IGNORECASE),
    re.compile(rf"ssh://git@github\.com(?::22)?/{_OWNER_NAME}", re.IGNORECASE),
    re.compile(rf"git@github\.com:{_OWNER_NAME}", re.IGNORECASE),
)


def parse_repo(url: str) -> str | None:
    """ "owner/name" of a github.com remote URL (https, ssh or scp form); None otherwise."""
    for pattern in _REPO_URLS:
        match = pattern.fullmatch(url.strip())
        if match and match["name"] not in (".", ".."):
            return f"{match['owner']}/{match['name']}"
    return None


def github_forge_from_env(
    repo: str, environ: Mapping[str, str], api_url: str | None = None
) -> GitHubForge:
    token = next((environ[n].strip() for n in TOKEN_VARIABLES if environ.get(n, "").strip()), "")
    if not token:
        raise UsageError(
            f"no GitHub token: set {' or '.join(TOKEN_VARIABLES)} to a token that may write "
            f"pull requests on {repo}"
        )
    register(token)
    url = api_url or environ.get("GITHUB_API_URL") or DEFAULT_API_URL  # set by GitHub Actions
    return GitHubForge(repo, token, api_url=url)


class _ValidationFailed(OutsideError):
    def __init__(self, message: str, details: list[str]) -> None:
        super().__init__(message)
        self.details = details


class GitHubForge:
    body_limit = GITHUB_BODY_LIMIT
    term = PULL_REQUEST

    def __init__(
        self,
        repo: str,
        token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 10.0,
        max_attempts: int = 4,
        max_wait: float = 60.0,
        sleep: Sleep = time.sleep,
        clock: Callable[[], float] = time.time,  # for x-ratelimit-reset, in epoch seconds
    ) -> None:
        if not _REPO.fullmatch(repo):
            raise UsageError(f"{repo!r} is not a GitHub repository in the form owner/name")
        token = token.strip()
        if not _TOKEN.fullmatch(token):
            raise UsageError(
                f"the GitHub token is empty or holds spaces or non-ASCII characters: "
                f"check {'/'.join(TOKEN_VARIABLES)}"
            )
        if not api_url.startswith(("https://", "http://")):
            raise UsageError(f"the GitHub API URL {api_url!r} must start with https://")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.repo = repo
        self.api_url = api_url.rstrip("/")
        self._headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token}",
            "X-GitHub-Api-Version": _API_VERSION,
            "User-Agent": f"gitops-compiler/{__version__}",
        }
        policy = RetryPolicy(attempts=max_attempts, max_wait=max_wait, rate_limit=_RATE_LIMIT)
        self._http = HttpClient(timeout=timeout, policy=policy, sleep=sleep, clock=clock)

    def __repr__(self) -> str:
        return f"GitHubForge(repo={self.repo!r}, api_url={self.api_url!r})"

    def close(self) -> None:
        self._http.close()

    @property
    def _sleep(self) -> Sleep:
        return self._http.sleep

    @_sleep.setter
    def _sleep(self, sleep: Sleep) -> None:
        # The fault corpus swaps the sleep of a forge that `github_forge_from_env` made.
        self._http.sleep = sleep

    # -- the Forge calls ------------------------------------------------------

    def find_open_pull(self, head: str, base: str) -> PullRequest | None:
        found = self._find(head, base)
        return None if found is None else _pull(found, f"GitHub GET /repos/{self.repo}/pulls")

    def create_pull(self, head: str, base: str, title: str, body: str) -> PullRequest:
        path = f"/repos/{self.repo}/pulls"
        payload = {"title": title, "head": head, "base": base, "body": body}
        try:
            data = self._call("POST", path, payload=payload, recover=lambda: self._find(head, base))
        except _ValidationFailed as err:
            if any(_ALREADY_EXISTS in detail.lower() for detail in err.details):
                raise PullRequestExists(err.message) from None
            raise
        return _pull(data, f"GitHub POST {path}")

    def update_pull(self, number: int, title: str, body: str) -> PullRequest:
        path = f"/repos/{self.repo}/pulls/{number}"
        data = self._call("PATCH", path, payload={"title": title, "body": body})
        return _pull(data, f"GitHub PATCH {path}")

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        path = f"/repos/{self.repo}/issues/{number}/labels"
        self._call("POST", path, payload={"labels": list(labels)})

    # -- HTTP -----------------------------------------------------------------

    def _find(self, head: str, base: str) -> Any:
        # GitHub ignores a `head` filter without the "owner:" prefix and lists every pull request.
        owner = self.repo.split("/")[0]
        query = {"state": "open", "head": f"{owner}:{head}", "base": base}
        found = self._call("GET", f"/repos/{self.repo}/pulls", query=query, scope="read")
        if not isinstance(found, list):
            raise OutsideError(f"GitHub GET /repos/{self.repo}/pulls answered with no list")
        return found[0] if found else None

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        payload: object = None,
        scope: str = "write",
        recover: Callable[[], Any] | None = None,
    ) -> Any:
        """The JSON GitHub answers, after the retries above; `recover` finds what a
        non-idempotent request may have done when its outcome is unknown."""
        target = f"{path}?{urlencode(query)}" if query else path
        call = f"GitHub {method} {target}"
        request = json_request(method, self.api_url + target, self._headers, payload)

        def attempt(number: int) -> Any:
            answer = self._http.attempt(
                number,
                request,
                lambda response: self._describe(call, response),
                lambda err: unanswered(call, err, self._http, self.api_url),
            )
            if isinstance(answer, Failure):
                return answer
            if 200 <= answer.status < 300:
                return json_answer(answer, call)
            self._refuse(answer, call, scope)

        try:
            return self._http.retrying(attempt, recover=look_up(recover) if recover else None)
        except GaveUp as err:
            if err.asked is None:
                raise
            raise come_back_later("GitHub", err.problem, err.asked, self._http) from None

    def _describe(self, call: str, response: Response) -> str:
        """A retried answer: a rate limit or a server error."""
        kind = "rate limited" if response.status < 500 else "server error"
        return f"{call}: {response.status} {kind} ({_says(response)})"

    def _refuse(self, response: Response, call: str, scope: str) -> NoReturn:
        """Explain an answer that a retry cannot change."""
        status, headers = response.status, response.headers
        said = _says(response)
        if status == 401:
            raise OutsideError(
                f"{call}: 401 bad credentials: check {'/'.join(TOKEN_VARIABLES)} ({said})"
            )
        if status == 403:
            needed = "Pull requests: read" if scope == "read" else _WRITE
            accepted = headers.get("x-accepted-github-permissions")
            raise OutsideError(
                f"{call}: 403 forbidden ({said}): the token needs '{needed}' on {self.repo} "
                f"(fine-grained token) or the 'repo' scope (classic token)"
                + (f"; GitHub accepts: {accepted}" if accepted else "")
            )
        if status == 404:
            raise OutsideError(
                f"{call}: 404 repository {self.repo} not found or the token cannot see it ({said})"
            )
        if status == 422:
            raise _ValidationFailed(f"{call}: 422 validation failed ({said})", _said(response)[1])
        if 300 <= status < 400:
            raise OutsideError(
                f"{call}: {status} redirected to {headers.get('location', 'nowhere')}; "
                f"was the repository renamed or moved? ({said})"
            )
        raise OutsideError(f"{call}: {status} ({said})")


def _said(response: Response) -> tuple[str, list[str]]:
    """GitHub's `message`, and its validation `errors` as text; best effort."""
    try:
        data = json.loads(response.data)
    except ValueError:
        return (shown(response.data) or "nothing"), []
    if not isinstance(data, dict):
        return shown(response.data), []
    details = []
    for error in data.get("errors") or ():
        if isinstance(error, dict):
            words = (error.get("resource"), error.get("field"), error.get("code"))
            details.append(str(error.get("message") or " ".join(str(w) for w in words if w)))
        else:
            details.append(str(error))
    return str(data.get("message") or "no message"), details


def _says(response: Response) -> str:
    message, details = _said(response)
    return f"GitHub says: {message}" + "".join(f"; {d}" for d in details)


def _says_rate_limit(response: Response) -> bool:
    """A 429, or a 403 whose message names a rate limit (a secondary one names no time)."""
    return response.status == 429 or "rate limit" in _said(response)[0].lower()


_RATE_LIMIT = RateLimit(
    statuses=frozenset({403, 429}),
    remaining_header="x-ratelimit-remaining",
    reset_header="x-ratelimit-reset",
    unnamed_wait=60.0,  # GitHub: "wait for at least one minute" when it names no time
    says_limited=_says_rate_limit,
)


def _pull(data: Any, call: str) -> PullRequest:
    try:
        return PullRequest(
            number=int(data["number"]),
            url=str(data["html_url"]),
            head=str(data["head"]["ref"]),
            base=str(data["base"]["ref"]),
            title=str(data["title"]),
            body=str(data.get("body") or ""),  # GitHub answers null for an empty body
        )
    except (KeyError, TypeError, ValueError) as err:
        raise OutsideError(
            f"{call}: the answer is not a pull request as GitHub documents it ({err!r})"
        ) from None
