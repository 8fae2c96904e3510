"""A fake GitLab REST API v4 on 127.0.0.1: the merge-request calls publish makes, over real HTTP.

    with FakeGitLab() as gitlab:
        forge = GitLabForge(FAKE_PROJECT, FAKE_TOKEN, api_url=gitlab.api_url)
        ...
        gitlab.merge_requests()          # as GitLab's JSON
        gitlab.received("PUT", MR_1)     # method, path (still URL-encoded), query, headers, json

It answers as https://docs.gitlab.com/api/merge_requests/ and
https://docs.gitlab.com/api/rest/ document:

- GET  /api/v4/projects/:id/merge_requests?state=&source_branch=&target_branch=&page=&per_page=
  -> 200, a list, newest first, with X-Page, X-Per-Page, X-Total, X-Next-Page ("" on the
  last page) and a Link header (rel="next", rel="first", rel="last")
- POST /api/v4/projects/:id/merge_requests {source_branch, target_branch, title, description,
  labels} -> 201; 409 {"message": ["Another open merge request already exists for this
  source branch: !N"]} when one is open for the same source and target branch;
  400 {"error": "title is missing"} for a missing parameter
- PUT  /api/v4/projects/:id/merge_requests/:iid {title, description, labels, add_labels}
  -> 200 (labels are created on the fly; `labels` replaces, `add_labels` adds)

`:id` is the URL-encoded path (`group%2Fsub%2Fname`) or the numeric id. No token
-> 401 {"message": "401 Unauthorized"}; a token the project does not know -> 404
{"message": "404 Project Not Found"}; GitLab answers 404, not 403, for what a token
cannot see. `script()` answers as FakeGitHub's does (see tests/fake_github.py).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote, unquote, urlencode

import pytest

from tests.fake_github import Answer, Request, _Handler, _matches, _Script
from tests.loopback import LoopbackServer

FAKE_TOKEN = "glpat-fakeToken0123456789"
FAKE_JOB_TOKEN = "glcbt-fakeJobToken0123456"
FAKE_PROJECT = "platform/clusters/argocd-config"
MRS = f"/api/v4/projects/{quote(FAKE_PROJECT, safe='')}/merge_requests"
_NOT_JSON = object()
_ROUTES = (
    ("GET", re.compile(r"/api/v4/projects/(?P<id>[^/]+)/merge_requests"), "_list"),
    ("POST", re.compile(r"/api/v4/projects/(?P<id>[^/]+)/merge_requests"), "_create"),
    ("PUT", re.compile(r"/api/v4/projects/(?P<id>[^/]+)/merge_requests/(?P<iid>\d+)"), "_update"),
)


def _error(status: int, message: Any) -> Answer:
    return status, {}, {"message": message}


class FakeGitLab(LoopbackServer):
    def __init__(
        self,
        *,
        token: str = FAKE_TOKEN,
        job_token: str = FAKE_JOB_TOKEN,
        projects: Sequence[str] = (FAKE_PROJECT,),
        filters: bool = True,  # False: ignore source_branch and target_branch, as an old GitLab
    ) -> None:
        super().__init__()
        self.filters = filters
        self.token, self.job_token = token, job_token
        self.project = projects[0]
        self.requests: list[Request] = []
        self.url = self.api_url = ""
        self._ids = {path: number for number, path in enumerate(projects, start=101)}
        self._mrs: dict[str, list[dict[str, Any]]] = {path: [] for path in projects}
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
        answer = (status, dict(headers or {}), {} if body is None else body)
        with self._lock:
            self._scripts.append(_Script(answer, times, method, path, perform))

    def add_merge_request(
        self, source: str, target: str = "main", title: str = "t", description: str = ""
    ) -> dict[str, Any]:
        with self._lock:
            return self._new(self.project, source, target, title, description, [])

    def close_merge_request(self, iid: int) -> None:
        with self._lock:
            found = self._find_iid(self.project, iid)
            assert found is not None, f"no merge request !{iid}"
            found["state"] = "closed"

    def merge_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return json.loads(json.dumps(self._mrs[self.project]))

    def received(self, method: str | None = None, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if _matches(r.method, r.path, method, path)]

    # -- lifecycle --------------------------------------------------------------

    def __enter__(self) -> FakeGitLab:
        self._listen(type("Handler", (_Handler,), {"fake": self}))
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/api/v4"
        return self

    # -- the API ----------------------------------------------------------------

    def answer(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], raw: bytes
    ) -> Answer:
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = _NOT_JSON
        with self._lock:
            self.requests.append(
                Request(method, path, query, headers, None if payload is _NOT_JSON else payload)
            )
            script = next(
                (s for s in self._scripts if _matches(method, path, s.method, s.path)), None
            )
            if script is not None:
                script.times -= 1
                if script.times <= 0:
                    self._scripts.remove(script)
                if not script.perform:
                    return script.answer
            served = self._serve(method, path, query, headers, payload)
            return served if script is None else script.answer

    def _serve(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], payload: Any
    ) -> Answer:
        given = headers.get("private-token") or headers.get("job-token")
        if given not in (self.token, self.job_token):
            return _error(401, "401 Unauthorized")
        for route_method, pattern, handler in _ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                project = self._project(unquote(match["id"]))
                if project is None:
                    return _error(404, "404 Project Not Found")
                if payload is _NOT_JSON:
                    return 400, {}, {"error": "The provided content-type is not supported."}
                answer: Answer = getattr(self, handler)(project, match, query, payload)
                return answer
        return 404, {}, {"error": "404 Not Found"}

    def _project(self, ident: str) -> str | None:
        if ident.isdigit():
            return next((p for p, n in self._ids.items() if n == int(ident)), None)
        return ident if ident in self._mrs else None

    def _list(self, project: str, match: re.Match[str], query: dict[str, str], _: Any) -> Answer:
        wanted = {k: query[k] for k in ("source_branch", "target_branch") if k in query}
        wanted = wanted if self.filters else {}
        state = query.get("state", "all")
        found = [
            mr
            for mr in reversed(self._mrs[project])  # newest first, as GitLab sorts by created_at
            if (state == "all" or mr["state"] == state)
            and all(mr[k] == v for k, v in wanted.items())
        ]
        page, per_page = int(query.get("page", 1)), min(int(query.get("per_page", 20)), 100)
        last = max(1, -(-len(found) // per_page))
        shown = found[(page - 1) * per_page : page * per_page]
        url = f"{self.api_url}/projects/{quote(project, safe='')}/merge_requests"

        def link(number: int, rel: str) -> str:
            return f'<{url}?{urlencode(query | {"page": str(number)})}>; rel="{rel}"'

        links = [link(page + 1, "next")] if page < last else []
        links += [link(1, "first"), link(last, "last")]
        return (
            200,
            {
                "X-Page": str(page),
                "X-Per-Page": str(per_page),
                "X-Total": str(len(found)),
                "X-Total-Pages": str(last),
                "X-Next-Page": str(page + 1) if page < last else "",
                "X-Prev-Page": str(page - 1) if page > 1 else "",
                "Link": ", ".join(links),
            },
            shown,
        )

    def _create(self, project: str, match: re.Match[str], query: dict[str, str], p: Any) -> Answer:
        if not isinstance(p, dict):
            return 400, {}, {"error": "source_branch is missing, target_branch is missing"}
        for field in ("source_branch", "target_branch", "title"):
            if not isinstance(p.get(field), str) or not p[field]:
                return 400, {}, {"error": f"{field} is missing"}
        for mr in self._mrs[project]:
            if mr["state"] == "opened" and (mr["source_branch"], mr["target_branch"]) == (
                p["source_branch"],
                p["target_branch"],
            ):
                return _error(
                    409,
                    [f"Another open merge request already exists for this source branch: !{mr['iid']}"],
                )  # fmt: skip
        labels = _labels(p.get("labels"))
        mr = self._new(
            project,
            p["source_branch"],
            p["target_branch"],
            p["title"],
            p.get("description"),
            labels,
        )
        return 201, {}, mr

    def _update(self, project: str, match: re.Match[str], query: dict[str, str], p: Any) -> Answer:
        mr = self._find_iid(project, int(match["iid"]))
        if mr is None:
            return _error(404, "404 Not found")
        if not isinstance(p, dict) or not p:
            return 400, {}, {"error": "title, description, labels, add_labels... are missing, at least one parameter must be provided"}  # fmt: skip
        for field in ("title", "description", "state_event"):
            if field in p:
                mr[{"state_event": "state"}.get(field, field)] = p[field]
        if "labels" in p:
            mr["labels"] = _labels(p["labels"])
        for label in _labels(p.get("add_labels")):
            if label not in mr["labels"]:
                mr["labels"].append(label)
        return 200, {}, mr

    def _new(
        self,
        project: str,
        source: str,
        target: str,
        title: str,
        description: str | None,
        labels: list[str],
    ) -> dict[str, Any]:
        iid = len(self._mrs[project]) + 1
        mr = {
            "id": 9000 + iid,
            "iid": iid,
            "project_id": self._ids[project],
            "title": title,
            "description": description,  # null when none was given
            "state": "opened",
            "source_branch": source,
            "target_branch": target,
            "labels": labels,
            "draft": False,
            "web_url": f"https://gitlab.example.com/{project}/-/merge_requests/{iid}",
        }
        self._mrs[project].append(mr)
        return mr

    def _find_iid(self, project: str, iid: int) -> Any:
        return next((mr for mr in self._mrs[project] if mr["iid"] == iid), None)


def _labels(value: Any) -> list[str]:
    """GitLab's labels parameter: a comma-separated string (or an array)."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return [name.strip() for name in str(value or "").split(",") if name.strip()]


@pytest.fixture
def fake_gitlab() -> Iterator[FakeGitLab]:
    with FakeGitLab() as gitlab:
        yield gitlab
