"""GitLab's REST API v4 as a `Forge`: merge requests, over the shared HTTP retry loop.

The calls (https://docs.gitlab.com/api/merge_requests/):

- GET  /projects/:id/merge_requests?state=opened&source_branch=&target_branch=
  finds the open merge request of our branch (pages followed by `X-Next-Page`);
- POST /projects/:id/merge_requests creates one; GitLab answers 409 when an
  open merge request for the branch exists (a race with another run): find it;
- PUT  /projects/:id/merge_requests/:iid changes title and description, and
  adds labels (`add_labels`, comma-separated: GitLab creates missing labels).

`:id` is the project's path URL-encoded (`group%2Fsub%2Fname`), so nested
groups need no look-up. Retries as the GitHub forge: 429 waits Retry-After,
else until `RateLimit-Reset` (https://docs.gitlab.com/security/rate_limits/),
else a minute; 5xx and lost connections back off with jitter (the shards of
one CI run must not come back together); a create whose outcome is unknown is
looked for before it is repeated. The token travels in one header only.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import quote, urlencode

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
from compiler.publishing.forge import MERGE_REQUEST, PullRequest, PullRequestExists
from compiler.publishing.forge.rest import (
    come_back_later,
    json_answer,
    json_request,
    look_up,
    shown,
    unanswered,
)
from compiler.secrets import register

# GitLab refuses longer descriptions (the `description` limit of merge requests).
GITLAB_DESCRIPTION_LIMIT = 1_048_576
PRIVATE_TOKEN = "GITLAB_TOKEN"
JOB_TOKEN = "CI_JOB_TOKEN"
_JITTER = 0.25
_MAX_PAGES = 20  # 2,000 merge requests for one branch would be a bug somewhere else
_WRITE = "the `api` scope and at least the Developer role"

_TOKEN = re.compile(r"[\x21-\x7e]+")  # http.client echoes a bad header value in its error
_SEGMENT = r"[A-Za-z0-9_.][A-Za-z0-9_.+-]*"
_PROJECT = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})+")  # group[/subgroup...]/name


def check_project(path: str) -> str:
    """A GitLab project path, `GROUP/[SUB/...]NAME`; a UsageError otherwise."""
    path = path.strip().strip("/")
    path = path.removesuffix(".git")
    parts = path.split("/")
    if not _PROJECT.fullmatch(path) or any(p in (".", "..") or p.endswith(".") for p in parts):
        raise UsageError(f"{path!r} is not a GitLab project path in the form GROUP/SUB/NAME")
    return path


class GitLabForge:
    body_limit = GITLAB_DESCRIPTION_LIMIT
    term = MERGE_REQUEST

    def __init__(
        self,
        project: str,
        token: str,
        *,
        api_url: str,
        job_token: bool = False,  # CI_JOB_TOKEN: the JOB-TOKEN header, and its own advice
        timeout: float = 10.0,
        max_attempts: int = 4,
        max_wait: float = 60.0,
        sleep: Sleep = time.sleep,
        clock: Callable[[], float] = time.time,  # for RateLimit-Reset, in epoch seconds
        draw: Callable[[], float] | None = None,  # the jitter's random number, for tests
    ) -> None:
        self.project = check_project(project)
        token = token.strip()
        self._variable = JOB_TOKEN if job_token else PRIVATE_TOKEN
        if not _TOKEN.fullmatch(token):
            raise UsageError(
                f"the GitLab token is empty or holds spaces or non-ASCII characters: "
                f"check {self._variable}"
            )
        if not api_url.startswith(("https://", "http://")):
            raise UsageError(f"the GitLab API URL {api_url!r} must start with https://")
        self.api_url = api_url.rstrip("/")
        self._base = f"/projects/{quote(self.project, safe='')}/merge_requests"
        self._headers = {
            "Accept": "application/json",
            "JOB-TOKEN" if job_token else "PRIVATE-TOKEN": token,
            "User-Agent": f"gitops-compiler/{__version__}",
        }
        policy = RetryPolicy(
            attempts=max_attempts, max_wait=max_wait, jitter=_JITTER, rate_limit=_RATE_LIMIT
        )
        extra = {"draw": draw} if draw is not None else {}
        self._http = HttpClient(timeout=timeout, policy=policy, sleep=sleep, clock=clock, **extra)

    def __repr__(self) -> str:
        return f"GitLabForge(project={self.project!r}, api_url={self.api_url!r})"

    def close(self) -> None:
        self._http.close()

    # -- the Forge calls ------------------------------------------------------

    def find_open_pull(self, head: str, base: str) -> PullRequest | None:
        found = self._find(head, base)
        return None if found is None else _merge_request(found, f"GitLab GET {self._base}")

    def create_pull(self, head: str, base: str, title: str, body: str) -> PullRequest:
        payload = {"source_branch": head, "target_branch": base, "title": title}
        payload["description"] = body
        try:
            data = self._call(
                "POST", self._base, payload=payload, recover=lambda: self._find(head, base)
            )
        except _Conflict as err:
            raise PullRequestExists(err.message) from None
        return _merge_request(data, f"GitLab POST {self._base}")

    def update_pull(self, number: int, title: str, body: str) -> PullRequest:
        path = f"{self._base}/{number}"
        data = self._call("PUT", path, payload={"title": title, "description": body})
        return _merge_request(data, f"GitLab PUT {path}")

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        # `add_labels` keeps the labels reviewers set; `labels` would replace them.
        bad = [label for label in labels if "," in label or not label.strip()]
        if bad:
            raise UsageError(f"GitLab label {bad[0]!r}: a label is not empty and has no comma")
        self._call("PUT", f"{self._base}/{number}", payload={"add_labels": ",".join(labels)})

    # -- HTTP -----------------------------------------------------------------

    def _find(self, head: str, base: str) -> Any:
        query = {"state": "opened", "source_branch": head, "target_branch": base}
        page = "1"
        for _ in range(_MAX_PAGES):
            query |= {"per_page": "100", "page": page}
            listed, next_page = self._call("GET", self._base, query=query)
            if not isinstance(listed, list):
                raise OutsideError(f"GitLab GET {self._base} answered with no list")
            for item in listed:
                # Checked again here: a GitLab too old for a filter ignores it.
                if isinstance(item, dict) and (
                    item.get("source_branch"),
                    item.get("target_branch"),
                    item.get("state"),
                ) == (head, base, "opened"):
                    return item
            if not next_page:
                return None
            page = next_page
        raise OutsideError(f"GitLab GET {self._base}: more than {_MAX_PAGES} pages of results")

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        payload: object = None,
        recover: Callable[[], Any] | None = None,
    ) -> Any:
        """The JSON GitLab answers (for a GET, with the next page's number), after
        the retries above; `recover` finds what a create may have done."""
        target = f"{path}?{urlencode(query)}" if query else path
        call = f"GitLab {method} {target}"
        request = json_request(method, self.api_url + target, self._headers, payload)

        def attempt(number: int) -> Any:
            answer = self._http.attempt(
                number,
                request,
                lambda response: _describe(call, response),
                lambda err: unanswered(call, err, self._http, self.api_url),
            )
            if isinstance(answer, Failure):
                return answer
            if 200 <= answer.status < 300:
                data = json_answer(answer, call)
                return (data, answer.headers.get("x-next-page", "")) if method == "GET" else data
            self._refuse(answer, call)

        try:
            return self._http.retrying(attempt, recover=look_up(recover) if recover else None)
        except GaveUp as err:
            if err.asked is None:
                raise
            raise come_back_later("GitLab", err.problem, err.asked, self._http) from None

    def _refuse(self, response: Response, call: str) -> NoReturn:
        """Explain an answer that a retry cannot change."""
        status, said = response.status, _says(response)
        job = self._variable == JOB_TOKEN
        if job and status in (401, 403, 404):
            raise OutsideError(
                f"{call}: {status} ({said}): CI_JOB_TOKEN cannot use the merge requests API "
                f"(GitLab's job token allowlist does not include it): set {PRIVATE_TOKEN} to a "
                f"project access token with {_WRITE} on {self.project}"
            )
        if status == 401:
            raise OutsideError(
                f"{call}: 401 unauthorized: check {PRIVATE_TOKEN}: it may be revoked or expired "
                f"({said})"
            )
        if status == 403:
            # Even for a read: `read_api` alone would fail at the next call, the create.
            raise OutsideError(
                f"{call}: 403 forbidden ({said}): the token needs {_WRITE} on {self.project}"
            )
        if status == 404:
            raise OutsideError(
                f"{call}: 404 project {self.project} not found at {self.api_url}, or the token "
                f"cannot see it ({said})"
            )
        if status == 409:
            raise _Conflict(f"{call}: 409 conflict ({said})")
        if 300 <= status < 400:
            raise OutsideError(
                f"{call}: {status} redirected to {response.headers.get('location', 'nowhere')}; "
                f"was the project renamed or moved? ({said})"
            )
        raise OutsideError(f"{call}: {status} ({said})")


def gitlab_forge_from_env(project: str, environ: Mapping[str, str], api_url: str) -> GitLabForge:
    """GITLAB_TOKEN (a personal, project or group access token), else CI_JOB_TOKEN in
    GitLab CI; both are masked in every message from now on."""
    token = environ.get(PRIVATE_TOKEN, "").strip()
    job = not token and bool(environ.get(JOB_TOKEN, "").strip())
    if job:
        token = environ[JOB_TOKEN].strip()
    if not token:
        raise UsageError(
            f"no GitLab token: set {PRIVATE_TOKEN} to a token with {_WRITE} on {project}"
        )
    register(token)
    return GitLabForge(project, token, api_url=api_url, job_token=job)


class _Conflict(OutsideError):
    """409: an open merge request for this source branch exists."""


def _describe(call: str, response: Response) -> str:
    """A retried answer: a rate limit or a server error."""
    kind = "rate limited" if response.status < 500 else "server error"
    return f"{call}: {response.status} {kind} ({_says(response)})"


def _says(response: Response) -> str:
    """GitLab's `message` (a string, a list, or field -> list) or `error`; best effort."""
    try:
        data = json.loads(response.data)
    except ValueError:
        return f"GitLab says: {shown(response.data) or 'nothing'}"
    said = data.get("message", data.get("error")) if isinstance(data, dict) else data
    if isinstance(said, dict):
        said = "; ".join(f"{key} {_words(value)}" for key, value in said.items())
    elif isinstance(said, list):
        said = "; ".join(map(str, said))
    return f"GitLab says: {shown(str(said).encode()) if said else 'no message'}"


def _words(value: object) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


_RATE_LIMIT = RateLimit(
    statuses=frozenset({429}),
    remaining_header="ratelimit-remaining",
    reset_header="ratelimit-reset",
    unnamed_wait=60.0,
)


def _merge_request(data: Any, call: str) -> PullRequest:
    try:
        return PullRequest(
            number=int(data["iid"]),  # the project-scoped number, as in `!12`
            url=str(data["web_url"]),
            head=str(data["source_branch"]),
            base=str(data["target_branch"]),
            title=str(data["title"]),
            body=str(data.get("description") or ""),  # null for a merge request without one
        )
    except (KeyError, TypeError, ValueError) as err:
        raise OutsideError(
            f"{call}: the answer is not a merge request as GitLab documents it ({err!r})"
        ) from None
