"""A fake GitHub REST API on 127.0.0.1: the pull-request calls publish makes, over real HTTP.

    with FakeGitHub() as github:            # or the `fake_github` fixture
        forge = GitHubForge(FAKE_REPO, FAKE_TOKEN, api_url=github.url)
        ...
        github.pulls()                      # the pull requests, as GitHub's JSON
        github.received("POST", PULLS)      # the requests: method, path, query, headers, json

It answers as https://docs.github.com/en/rest/pulls/pulls documents:

- GET   /repos/{o}/{r}/pulls?state=&head=owner:branch&base=  -> 200, a list, newest first
- POST  /repos/{o}/{r}/pulls {title, head, base, body}       -> 201; 422 when an open pull
  request for the same head and base exists ("A pull request already exists for o:b.")
- PATCH /repos/{o}/{r}/pulls/{n} {title, body, state, base}  -> 200
- POST  /repos/{o}/{r}/issues/{n}/labels {"labels": [...]}   -> 200, the issue's labels

A missing or wrong bearer token -> 401; an unknown repository, pull request or
route -> 404; a body that is not JSON -> 400.

`script(status, ...)` makes the next `times` requests (those matching `method`
and `path`, if given) answer with that status, headers and body instead:
status None hangs up without answering; `perform=True` carries the request
out first (a 502 after the pull request was in fact created). Scripts are
used in the order given; every request is recorded either way. The server
stops when the `with` block (or the fixture) ends.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.loopback import LoopbackServer

FAKE_TOKEN = "ghp_fakeToken0123456789"
FAKE_REPO = "octo-org/cluster-config"
PULLS = f"/repos/{FAKE_REPO}/pulls"
_DOCS = "https://docs.github.com/rest/pulls/pulls"
_REPO = r"/repos/(?P<repo>[^/]+/[^/]+)"
_ROUTES = (
    ("GET", re.compile(rf"{_REPO}/pulls"), "_list"),
    ("POST", re.compile(rf"{_REPO}/pulls"), "_create"),
    ("PATCH", re.compile(rf"{_REPO}/pulls/(?P<number>\d+)"), "_update"),
    ("POST", re.compile(rf"{_REPO}/issues/(?P<number>\d+)/labels"), "_labels"),
)

_NOT_JSON = object()  # a request body that did not parse
Answer = tuple[int | None, dict[str, str], Any]  # status (None: hang up), headers, body


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    json: Any  # the parsed body; None when there is none (or it is not JSON)


@dataclass
class _Script:
    answer: Answer
    times: int
    method: str | None
    path: str | None
    perform: bool


def _error(status: int, message: str, **extra: Any) -> Answer:
    return status, {}, {"message": message, **extra, "documentation_url": _DOCS}


def _invalid(*errors: dict[str, str]) -> Answer:
    return _error(
        422, "Validation Failed", errors=[{"resource": "PullRequest", **e} for e in errors]
    )


class FakeGitHub(LoopbackServer):
    def __init__(self, *, token: str = FAKE_TOKEN, repos: Sequence[str] = (FAKE_REPO,)) -> None:
        super().__init__()
        self.token = token
        self.repo = repos[0]  # the default of the helpers below
        self.requests: list[Request] = []
        self.url = ""
        self._pulls: dict[str, list[dict[str, Any]]] = {repo: [] for repo in repos}
        self._scripts: list[_Script] = []
        self._lock = threading.Lock()

    # -- for tests -------------------------------------------------------------

    def script(
        self,
        status: int | None,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        perform: bool = False,
    ) -> None:
        """Answer the next `times` matching requests so (see the module docstring)."""
        answer = (status, dict(headers or {}), {} if body is None else body)
        with self._lock:
            self._scripts.append(_Script(answer, times, method, path, perform))

    def add_pull(
        self, head: str, base: str = "main", title: str = "t", body: str = "", *, repo: str = ""
    ) -> dict[str, Any]:
        """An open pull request made by someone else (or an earlier run)."""
        with self._lock:
            return self._new_pull(repo or self.repo, head, base, title, body)

    def close_pull(self, number: int, *, repo: str = "") -> None:
        with self._lock:
            pull = self._find_number(repo or self.repo, number)
            assert pull is not None, f"no pull request {number}"
            pull["state"] = "closed"

    def pulls(self, repo: str = "") -> list[dict[str, Any]]:
        with self._lock:
            return json.loads(json.dumps(self._pulls[repo or self.repo]))

    def received(self, method: str | None = None, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if _matches(r.method, r.path, method, path)]

    # -- lifecycle --------------------------------------------------------------

    def __enter__(self) -> FakeGitHub:
        self._listen(type("Handler", (_Handler,), {"fake": self}))
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    # -- the API ----------------------------------------------------------------

    def answer(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], raw: bytes
    ) -> Answer:
        """What the server sends back for one request; called by the handler's thread."""
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = _NOT_JSON
        with self._lock:
            recorded = None if payload is _NOT_JSON else payload
            self.requests.append(Request(method, path, query, headers, recorded))
            script = next(
                (s for s in self._scripts if _matches(method, path, s.method, s.path)), None
            )
            if script is not None:
                script.times -= 1
                if script.times <= 0:
                    self._scripts.remove(script)
                if not script.perform:
                    return script.answer
            served = self._serve(method, path, query, headers.get("authorization", ""), payload)
            return served if script is None else script.answer

    def _serve(
        self, method: str, path: str, query: dict[str, str], auth: str, payload: Any
    ) -> Answer:
        if not auth:
            return _error(401, "Requires authentication")
        if auth not in (f"Bearer {self.token}", f"token {self.token}"):
            return _error(401, "Bad credentials")
        for route_method, pattern, handler in _ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                if match["repo"] not in self._pulls:
                    return _error(404, "Not Found")
                if payload is _NOT_JSON:
                    return _error(400, "Problems parsing JSON")
                answer: Answer = getattr(self, handler)(match, query, payload)
                return answer
        return _error(404, "Not Found")

    def _list(self, match: re.Match[str], query: dict[str, str], payload: Any) -> Answer:
        state, head, base = query.get("state", "open"), query.get("head"), query.get("base")
        found = []
        for pull in reversed(self._pulls[match["repo"]]):  # newest first, as GitHub sorts
            if state != "all" and pull["state"] != state:
                continue
            # As GitHub does: a head filter without "owner:" is ignored, not applied.
            if head and ":" in head and pull["head"]["label"] != head:
                continue
            if base and pull["base"]["ref"] != base:
                continue
            found.append(pull)
        return 200, {}, found[: int(query.get("per_page", 30))]

    def _create(self, match: re.Match[str], query: dict[str, str], payload: Any) -> Answer:
        repo, owner = match["repo"], match["repo"].split("/")[0]
        if not isinstance(payload, dict):
            return _error(400, "Problems parsing JSON")
        for field in ("title", "head", "base"):
            if not isinstance(payload.get(field), str) or not payload[field]:
                return _invalid({"field": field, "code": "missing_field"})
        head = payload["head"]
        head_owner, _, branch = head.rpartition(":")
        if head_owner not in ("", owner):
            return _invalid({"field": "head", "code": "invalid"})  # forks are not faked
        for pull in self._pulls[repo]:
            if pull["state"] == "open" and (pull["head"]["ref"], pull["base"]["ref"]) == (
                branch,
                payload["base"],
            ):
                message = f"A pull request already exists for {owner}:{branch}."
                return _invalid({"code": "custom", "message": message})
        body = payload.get("body") or ""
        pull = self._new_pull(repo, branch, payload["base"], payload["title"], body)
        return 201, {"Location": pull["url"]}, pull

    def _update(self, match: re.Match[str], query: dict[str, str], payload: Any) -> Answer:
        pull = self._find_number(match["repo"], int(match["number"]))
        if pull is None:
            return _error(404, "Not Found")
        if not isinstance(payload, dict):
            return _error(400, "Problems parsing JSON")
        for field in ("title", "state"):
            if field in payload:
                pull[field] = payload[field]
        if "body" in payload:
            pull["body"] = payload["body"] or None  # GitHub answers null for an empty body
        if "base" in payload:
            owner = match["repo"].split("/")[0]
            pull["base"] = {"ref": payload["base"], "label": f"{owner}:{payload['base']}"}
        return 200, {}, pull

    def _labels(self, match: re.Match[str], query: dict[str, str], payload: Any) -> Answer:
        pull = self._find_number(match["repo"], int(match["number"]))
        if pull is None:
            return _error(404, "Not Found")
        names = payload.get("labels") if isinstance(payload, dict) else payload
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return _error(422, "Invalid request.", errors=["labels must be a list of strings"])
        for name in names:
            if name not in [label["name"] for label in pull["labels"]]:
                pull["labels"].append({"name": name, "color": "ededed", "default": False})
        return 200, {}, pull["labels"]

    def _new_pull(self, repo: str, head: str, base: str, title: str, body: str) -> dict[str, Any]:
        owner = repo.split("/")[0]
        number = len(self._pulls[repo]) + 1  # this fake has no issues to share numbers with
        pull = {
            "url": f"{self.url}/repos/{repo}/pulls/{number}",
            "html_url": f"https://github.com/{repo}/pull/{number}",
            "number": number,
            "state": "open",
            "title": title,
            "body": body or None,  # GitHub answers null for an empty body
            "user": {"login": owner},
            "labels": [],
            "head": {"ref": head, "label": f"{owner}:{head}"},
            "base": {"ref": base, "label": f"{owner}:{base}"},
        }
        self._pulls[repo].append(pull)
        return pull

    def _find_number(self, repo: str, number: int) -> Any:
        return next((p for p in self._pulls[repo] if p["number"] == number), None)


def _matches(method: str, path: str, want_method: str | None, want_path: str | None) -> bool:
    return (want_method is None or want_method.upper() == method) and (
        want_path is None or want_path == path
    )


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGitHub  # set on the subclass each server makes

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        status, extra, body = self.fake.answer(self.command, url.path, query, headers, raw)
        if status is None:
            self.close_connection = True  # hang up without a word
            return
        if isinstance(body, bytes | str):
            data, kind = (body if isinstance(body, bytes) else body.encode()), "text/plain"
        else:
            data, kind = json.dumps(body).encode(), "application/json; charset=utf-8"
        self.send_response(status)
        if not any(name.lower() == "content-type" for name in extra):
            self.send_header("Content-Type", kind)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read `requests`, not stderr


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """A running FakeGitHub: token FAKE_TOKEN, repository FAKE_REPO, URL `.url`."""
    with FakeGitHub() as github:
        yield github
