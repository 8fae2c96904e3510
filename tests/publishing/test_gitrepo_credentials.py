"""Credentials in `--repo`'s URL never reach a command line (issue 15, class 7).

Real git against a local smart-HTTP server that requires Basic credentials: the
commands we spawn are recorded at `proc.start`, and the commands git spawns in
turn (`git remote-http URL URL`, which is where a URL's password used to show
in `ps`) are read from GIT_TRACE. Neither may hold the token in any form, and
the push must still authenticate with it.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import pytest

from compiler import proc
from compiler.publishing.gitrepo import Workspace, git_environment, split_credentials
from tests.git_http import GitHttpServer
from tests.gitrepos import commit_files, git

URL_TOKEN = "ghp_urlToken/With:Odd@Chars9"  # quoted in the URL; exercises unquoting
HEADER_TOKEN = "ghp_headerTokenQ8v2Lx"


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _forms(token: str) -> list[str]:
    return [token, quote(token, safe=""), _basic("x-access-token", token)]


SPLITS = [
    # url, what git sees, user, password
    ("https://robot:pw@git.example.com/o/r.git", "https://git.example.com/o/r.git", "robot", "pw"),
    ("https://x:a%40b%3Ac@h:8443/r.git", "https://h:8443/r.git", "x", "a@b:c"),
    ("HTTP://u:p@h/r", "http://h/r", "u", "p"),
    ("https://:tok@h/r.git", "https://h/r.git", "", "tok"),
    ("ssh://git:pw@h/r.git", "ssh://git@h/r.git", "git", "pw"),  # ssh cannot use it
    # benign neighbours: nothing to take out, the URL stays byte for byte
    ("https://git.example.com/o/r.git", "https://git.example.com/o/r.git", "", ""),
    ("https://robot@h/r.git", "https://robot@h/r.git", "", ""),  # a user is not a secret
    ("git@github.com:o/r.git", "git@github.com:o/r.git", "", ""),
    ("/srv/argocd.git", "/srv/argocd.git", "", ""),
    ("http://[x", "http://[x", "", ""),
]


@pytest.mark.parametrize(("url", "seen", "user", "password"), SPLITS)
def test_split_credentials(url: str, seen: str, user: str, password: str) -> None:
    assert split_credentials(url) == (seen, user, password)


ENVIRONMENTS = [
    # environ, url, the Basic credentials of the header (None: no header)
    ({}, "https://robot:s3cret-pw@h/r.git", _basic("robot", "s3cret-pw")),
    ({"GITOPS_GIT_TOKEN": HEADER_TOKEN}, "https://robot:s3cret-pw@h/r.git",
     _basic("x-access-token", HEADER_TOKEN)),  # the documented way wins
    ({"GITOPS_GIT_TOKEN": HEADER_TOKEN}, "https://h/r.git", _basic("x-access-token", HEADER_TOKEN)),
    ({}, "https://h/r.git", None),
    ({}, "ssh://git:pw@h/r.git", None),
    ({"GITOPS_GIT_TOKEN": HEADER_TOKEN}, "/srv/r.git", None),
]  # fmt: skip


@pytest.mark.parametrize(("environ", "url", "basic"), ENVIRONMENTS)
def test_the_header_carries_the_credentials(
    environ: dict[str, str], url: str, basic: str | None
) -> None:
    env = git_environment(environ, url)
    if basic is None:
        assert "GIT_CONFIG_COUNT" not in env
    else:
        assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
        assert env["GIT_CONFIG_VALUE_0"] == f"Authorization: Basic {basic}"


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    root = tmp_path / "served"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(root / "argocd.git"))
    commit_files(root / "argocd.git", "main", {"README.md": b"# Argo CD\n"}, "init", author="A")
    return root


@pytest.mark.parametrize("header", [False, True], ids=["url-token", "url-and-header-token"])
def test_a_url_token_authenticates_a_push_without_showing_on_any_command_line(
    served: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, header: bool
) -> None:
    spawned: list[Sequence[str]] = []
    real_start = proc.start

    def spy(argv: Sequence[str], **kwargs: object) -> proc.Running:
        spawned.append([os.fspath(a) for a in argv])
        return real_start(argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(proc, "start", spy)
    trace = tmp_path / "git-trace"
    environ = {**os.environ, "GIT_TRACE": str(trace)}
    wanted = URL_TOKEN
    if header:
        environ["GITOPS_GIT_TOKEN"] = wanted = HEADER_TOKEN
    with GitHttpServer(served, user="x-access-token", password=wanted) as server:
        url = server.url("argocd.git", userinfo=f"x-access-token:{quote(URL_TOKEN, safe='')}")
        ws = Workspace(url, tmp_path / "scratch.git", environ=environ)
        base = ws.heads("main")["main"]
        ws.fetch("main")
        tree = ws.tree_with(base, {"clusters/a/x.yaml": b"a: 1\n"}, ["clusters/a"])
        commit = ws.commit(tree, base, "compiled")
        ws.push(commit, "gitops-compiler/main/all-clusters", expect=None)
    # It authenticated: every request after the first carried the credentials, and
    # the branch is on the remote.
    assert {auth for _, _, auth in server.requests} == {server.credentials}
    pushed = "refs/heads/gitops-compiler/main/all-clusters"
    assert git("--git-dir", str(served / "argocd.git"), "rev-parse", pushed) == commit
    # And no command line held the token: ours, nor those git started.
    started = [" ".join(argv) for argv in spawned]
    descendants = [line for line in trace.read_text().splitlines() if "trace: " in line]
    assert any("ls-remote" in c for c in started) and any("push" in c for c in started)
    assert any("remote-http" in line for line in descendants), "the trace saw git's children"
    for token in (URL_TOKEN, HEADER_TOKEN):
        for form in _forms(token):
            assert not [c for c in [*started, *descendants] if form in c], form
    assert ws.url == server.url("argocd.git")  # what messages name
