"""GitHub's REST API as a `Forge`: plain HTTP through urllib3, every retry our own.

What is retried, and how (https://docs.github.com/en/rest/pulls/pulls,
https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api):

- 429, and a 403 that is a rate limit: wait Retry-After seconds, else until
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
from typing import Any
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
)

from compiler import __version__
from compiler.errors import OutsideError, UsageError
from compiler.operations.httperrors import connection_problem
from compiler.publishing.forge import PullRequest, PullRequestExists
from compiler.secrets import register

DEFAULT_API_URL = "https://api.github.com"
TOKEN_VARIABLES = ("GITOPS_GITHUB_TOKEN", "GITHUB_TOKEN")
_API_VERSION = "2022-11-28"
_WRITE = "Pull requests: write"
_BACKOFF_SECONDS = 1.0  # 1, 2, 4, ... capped by max_wait
_UNNAMED_WAIT = 60.0  # GitHub: "wait for at least one minute" when it names no time
_RESET_MARGIN = 1.0  # our clock and GitHub's may differ by a little
_SHOWN_CHARS = 200
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
    def __init__(
        self,
        repo: str,
        token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 10.0,
        max_attempts: int = 4,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
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
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self._sleep = sleep
        self._clock = clock
        self._headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token}",
            "X-GitHub-Api-Version": _API_VERSION,
            "User-Agent": f"gitops-compiler/{__version__}",
        }
        # retries=False: every retry and redirect decision is ours (the module docstring).
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False
        )

    def __repr__(self) -> str:
        return f"GitHubForge(repo={self.repo!r}, api_url={self.api_url!r})"

    def close(self) -> None:
        self._http.clear()

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
        headers = dict(self._headers)
        body = None
        if payload is not None:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._http.request(
                    method,
                    self.api_url + target,
                    body=body,
                    headers=headers,
                    retries=False,
                    redirect=False,
                )
            except HTTPError as err:
                problem = f"{call} failed: {connection_problem(err, self.timeout, self.api_url)}"
                wait = self._backoff(attempt)
                # Refused or never connected: the request did not go out.
                unknown = not isinstance(err, ConnectTimeoutError)
            else:
                if 200 <= response.status < 300:
                    return _json(response, call)
                problem, wait = self._refusal(response, call, scope, attempt)
                unknown = response.status >= 500
            if recover is not None and unknown:
                try:
                    found = recover()
                except OutsideError as err:
                    raise OutsideError(
                        f"{problem}, so it may or may not have happened; "
                        f"looking for its result failed too: {err.message}"
                    ) from None
                if found is not None:
                    return found
            if attempt == self.max_attempts:
                raise OutsideError(f"{problem}; gave up after {attempt} attempts")
            self._sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _refusal(
        self, response: urllib3.BaseHTTPResponse, call: str, scope: str, attempt: int
    ) -> tuple[str, float]:
        """The problem and the wait before a retry; raises when a retry cannot help."""
        status, headers = response.status, response.headers
        message, details = _said(response)
        said = f"GitHub says: {message}" + "".join(f"; {d}" for d in details)
        if status == 401:
            raise OutsideError(
                f"{call}: 401 bad credentials: check {'/'.join(TOKEN_VARIABLES)} ({said})"
            )
        wait = self._rate_limit_wait(response, message)
        if wait is None and status >= 500:
            wait = _seconds(headers.get("retry-after"))
        if wait is not None:
            problem = (
                f"{call}: {status} {'rate limited' if status < 500 else 'server error'} ({said})"
            )
            if wait > self.max_wait:
                when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self._clock() + wait))
                raise OutsideError(
                    f"{problem}; GitHub asks to wait {wait:.0f} s, longer than the "
                    f"{self.max_wait:g} s we wait: retry after {when}"
                )
            return problem, wait
        if status >= 500:
            return f"{call}: {status} server error ({said})", self._backoff(attempt)
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
            raise _ValidationFailed(f"{call}: 422 validation failed ({said})", details)
        if 300 <= status < 400:
            raise OutsideError(
                f"{call}: {status} redirected to {headers.get('location', 'nowhere')}; "
                f"was the repository renamed or moved? ({said})"
            )
        raise OutsideError(f"{call}: {status} ({said})")

    def _rate_limit_wait(self, response: urllib3.BaseHTTPResponse, message: str) -> float | None:
        if response.status not in (403, 429):
            return None
        headers = response.headers
        retry_after = _seconds(headers.get("retry-after"))
        if retry_after is not None:
            return retry_after
        if headers.get("x-ratelimit-remaining") == "0":
            reset = _seconds(headers.get("x-ratelimit-reset"))
            if reset is not None:
                return max(reset - self._clock(), 0.0) + _RESET_MARGIN
            return _UNNAMED_WAIT
        if response.status == 429 or "rate limit" in message.lower():
            return _UNNAMED_WAIT  # a secondary rate limit that names no time
        return None

    def _backoff(self, attempt: int) -> float:
        return min(_BACKOFF_SECONDS * 2 ** (attempt - 1), self.max_wait)


def _json(response: urllib3.BaseHTTPResponse, call: str) -> Any:
    try:
        return json.loads(response.data)
    except ValueError:  # UnicodeDecodeError included
        kind = response.headers.get("content-type", "no Content-Type")
        raise OutsideError(
            f"{call}: {response.status} with an answer that is not JSON ({kind}): "
            f"{_shown(response.data)!r}"
        ) from None


def _said(response: urllib3.BaseHTTPResponse) -> tuple[str, list[str]]:
    """GitHub's `message`, and its validation `errors` as text; best effort."""
    try:
        data = json.loads(response.data)
    except ValueError:
        return (_shown(response.data) or "nothing"), []
    if not isinstance(data, dict):
        return _shown(response.data), []
    details = []
    for error in data.get("errors") or ():
        if isinstance(error, dict):
            words = (error.get("resource"), error.get("field"), error.get("code"))
            details.append(str(error.get("message") or " ".join(str(w) for w in words if w)))
        else:
            details.append(str(error))
    return str(data.get("message") or "no message"), details


def _shown(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < float("inf") else None


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
