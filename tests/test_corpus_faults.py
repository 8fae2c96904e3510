"""Issue 8, second half: the fault corpus. Filesystems, outside systems and secrets.

Every row of `tests/corpus/{filesystem,outside,secrets}.yaml` is a case (the
files' headers describe the fields): a setup below prepares the case
directory and returns a command line, the command runs (in this process, or
in a child without root's power over file modes), and the row's expectations
are checked: the exit code, a message fragment, no traceback, the paths that
must be exactly as they were, and further named checks. A row may instead
name a procedure that runs a whole scenario (SIGKILL during emit, a publish
searched for credentials), or a test elsewhere that already holds the case.

Nothing here reaches a network: DynamoDB, git and GitHub are servers of the
test on 127.0.0.1, stopped when the case ends, and back-off waits are recorded
instead of slept.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import boto3
import botocore.endpoint
import pytest
import yaml

import compiler.publishing.publisher
from compiler import emit, stagedfiles
from compiler.cli import main
from compiler.policy.cue import CuePolicies
from compiler.publishing.forge import github as github_forge
from tests.conftest import ROOT, tree
from tests.fake_dynamodb import THROTTLED, FakeDynamoDB, error
from tests.fake_github import FAKE_REPO, FAKE_TOKEN, FakeGitHub
from tests.git_http import GitHttpServer
from tests.gitrepos import commit_files, git, has_branch
from tests.test_emit import _DROP_DAC

CORPUS = Path(__file__).parent / "corpus"
TABLES = ("filesystem.yaml", "outside.yaml", "secrets.yaml")
BRANCH_ALL = "gitops-compiler/main/all-clusters"
OWNED = ["applicationsets", "clusters"]
GIT = shutil.which("git") or "git"  # cases may empty PATH; the checks still need git
USER_FILE = b"the user's own file, outside the directories the compile owns\n"
_ROW_KEYS = frozenset(
    {"id", "setup", "with", "exit", "message", "untouched", "then", "without_root",
     "procedure", "covered_by", "xfail"}
)  # fmt: skip


# ------------------------------------------------------------------------- the case


@dataclass
class Result:
    exit: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Case:
    dir: Path
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]
    stack: ExitStack
    sleeps: list[float] = field(default_factory=list)  # back-off waits, recorded
    state: dict[str, Any] = field(default_factory=dict)  # what setups leave for checks

    @property
    def out(self) -> Path:
        return self.dir / "out"

    def run(self, argv: list[str], *, without_root: bool = False) -> Result:
        if without_root:
            # A child that cannot override file modes (root's capabilities dropped).
            done = subprocess.run(
                [sys.executable, "-c", _DROP_DAC, str(ROOT), *argv],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            return Result(done.returncode, done.stdout, done.stderr)
        code = main(argv)
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def script(
        self, name: str, body: str, mode: int = 0o755, *, version: str | None = None
    ) -> Path:
        """`version`: the answer to `<name> version` (a compile asks cue's first)."""
        path = self.dir / "bin-scripts" / name
        path.parent.mkdir(exist_ok=True)
        if version is not None:
            body = f'if [ "$1" = version ]; then echo "cue version {version}"; exit 0; fi\n{body}'
        # Its own PATH: the compiler's may be emptied by the case.
        path.write_text(f"#!/bin/sh\nPATH=/usr/bin:/bin\n{body}\n")
        path.chmod(mode)
        return path

    def empty_path(self) -> Path:
        """PATH of the compiler: a directory with nothing in it."""
        empty = self.dir / "empty-bin"
        empty.mkdir(exist_ok=True)
        self.monkeypatch.setenv("PATH", str(empty))
        return empty


@pytest.fixture
def case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Case]:
    """An isolated case: no user git config, no credentials, temp files kept in the case."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in [k for k in os.environ if k.startswith("GIT_CONFIG_") and k[-1].isdigit()]:
        monkeypatch.delenv(key)
    for key in (
        "GIT_CONFIG_COUNT", "GITOPS_GIT_TOKEN", "GITOPS_GITHUB_TOKEN", "GITHUB_TOKEN",
        "GH_TOKEN", "GITHUB_API_URL", "GITOPS_AUDIT_LOG", "GITOPS_ALERT",
        "GITOPS_STATUS_WEBHOOK", "GITOPS_LOG_FORMAT",
    ):  # fmt: skip
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask an instance for keys
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # crash logs land in the case
    with ExitStack() as stack:
        made = Case(tmp_path, monkeypatch, capsys, stack)
        # botocore's back-off and the forge's waits: recorded, never slept.
        monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=made.sleeps.append))
        real_from_env = github_forge.github_forge_from_env

        def recording_forge(*args: Any, **kwargs: Any) -> github_forge.GitHubForge:
            forge = real_from_env(*args, **kwargs)
            forge._sleep = made.sleeps.append
            return forge

        monkeypatch.setattr(github_forge, "github_forge_from_env", recording_forge)
        yield made


# ------------------------------------------------------------------------- rows


def _rows() -> list[dict[str, Any]]:
    rows = []
    for name in TABLES:
        for row in yaml.safe_load((CORPUS / name).read_text(encoding="utf-8")):
            rows.append({**row, "table": name})
    return rows


ROWS = _rows()


def _params(rows: list[dict[str, Any]]) -> list[Any]:
    return [
        pytest.param(
            row,
            id=row["id"],
            marks=[pytest.mark.xfail(strict=True, reason=row["xfail"])] if "xfail" in row else [],
        )
        for row in rows
    ]


def test_every_row_is_well_formed() -> None:
    ids = [row["id"] for row in ROWS]
    assert len(ids) == len(set(ids)), "duplicate ids"
    groups = {row["table"] for row in ROWS}
    assert groups == set(TABLES)
    for row in ROWS:
        unknown = set(row) - _ROW_KEYS - {"table"}
        assert not unknown, (row["id"], unknown)
        kinds = [k for k in ("setup", "procedure", "covered_by") if k in row]
        assert len(kinds) == 1, (row["id"], kinds)
        if "setup" in row:
            assert row["setup"] in SETUPS, row["id"]
            assert isinstance(row["exit"], int) and row["message"], row["id"]
            assert set(row.get("then", {})) <= set(CHECKS), row["id"]
        if "procedure" in row:
            assert row["procedure"] in PROCEDURES, row["id"]


@pytest.mark.parametrize("row", _params([r for r in ROWS if "covered_by" in r]))
def test_a_row_covered_elsewhere_names_a_real_test(row: dict[str, Any]) -> None:
    path, _, name = row["covered_by"].partition("::")
    source = (ROOT / path).read_text(encoding="utf-8")
    assert re.search(rf"^def {re.escape(name)}\(", source, re.MULTILINE), row["covered_by"]


@pytest.mark.parametrize("row", _params([r for r in ROWS if "setup" in r]))
def test_fault(row: dict[str, Any], case: Case) -> None:
    argv = SETUPS[row["setup"]](case, **row.get("with", {}))
    before = {path: fingerprint(case.dir / path) for path in row.get("untouched", [])}
    result = case.run(argv, without_root=row.get("without_root", False))
    assert result.exit == row["exit"], result.text
    assert row["message"] in result.text, result.text
    assert "Traceback" not in result.text
    for path, print_ in before.items():
        assert fingerprint(case.dir / path) == print_, f"{path} changed"
    for name, argument in row.get("then", {}).items():
        CHECKS[name](case, result, argument)


@pytest.mark.parametrize("row", _params([r for r in ROWS if "procedure" in r]))
def test_procedure(row: dict[str, Any], case: Case) -> None:
    PROCEDURES[row["procedure"]](case, row, **row.get("with", {}))


# ------------------------------------------------------------------------- fingerprints


def fingerprint(path: Path) -> object:
    """What `untouched` compares: entries, kinds, modes, link targets and bytes of a
    tree (a walker of its own, not the emitter's); the refs of a bare repository."""
    if path.suffix == ".git" and (path / "HEAD").is_file():
        return subprocess.run(
            [GIT, f"--git-dir={path}", "for-each-ref", "--format=%(refname) %(objectname)"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
    if path.is_symlink():
        return ("link", str(path.readlink()))
    if not path.exists():
        return None
    if path.is_file():
        return _entry(path, ".")
    entries = [_entry(path, ".")]
    for dirpath, dirnames, filenames in os.walk(path):
        base = Path(dirpath)
        for name in sorted(dirnames) + sorted(filenames):
            entries.append(_entry(base / name, (base / name).relative_to(path).as_posix()))
    return sorted(entries)


def _entry(path: Path, rel: str) -> tuple[str, ...]:
    info = path.lstat()
    mode = oct(stat.S_IMODE(info.st_mode))
    if stat.S_ISLNK(info.st_mode):
        return (rel, "link", str(path.readlink()))
    if stat.S_ISDIR(info.st_mode):
        return (rel, "dir", mode)
    return (rel, "file", mode, hashlib.sha256(path.read_bytes()).hexdigest())


def tree_hash(root: Path) -> str:
    """One hash of a whole tree: every path, its kind and its bytes or link target."""
    entries = fingerprint(root)
    assert isinstance(entries, list)
    # Modes aside (the third field of a file or a directory): content is what counts here.
    kept = [entry if entry[1] == "link" else (*entry[:2], *entry[3:]) for entry in entries]
    return hashlib.sha256(json.dumps(kept).encode()).hexdigest()


def leftovers(out: Path) -> list[str]:
    """Staging or aside directories of a write, next to `out`."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def golden_files() -> dict[str, bytes]:
    return tree(ROOT / "golden")


def compiled_part(out: Path) -> dict[str, bytes]:
    return {k: v for k, v in tree(out).items() if k.startswith(("applicationsets/", "clusters/"))}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------- setups


def old_tree(case: Case) -> Path:
    """`out` as a previous compile left it, so that a write would show: the golden tree
    with one file changed and a stale cluster, plus a file of the user's."""
    shutil.copytree(ROOT / "golden", case.out)
    (case.out / "clusters/dev-k3s/cluster.json").write_bytes(b'{"name": "dev-k3s", "old": 1}\n')
    (case.out / "clusters/gone/cluster.json").parent.mkdir()
    (case.out / "clusters/gone/cluster.json").write_bytes(b'{"name": "gone"}\n')
    (case.out / "README.md").write_bytes(USER_FILE)
    return case.out


def compile_argv(case: Case, *extra: str, cue: Path | None = None) -> list[str]:
    cue = cue or case.script("cue", "echo '[]'", version="v0.17.1")
    return ["compile", "--all", "--project", str(ROOT), "--source", "snapshot:examples",
            "--out", str(case.out), "--cue", str(cue), *extra]  # fmt: skip


def out_is_a_symlink(case: Case) -> list[str]:
    elsewhere = case.dir / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_bytes(b"not the compiler's\n")
    case.out.symlink_to(elsewhere)
    return compile_argv(case)


def out_is_a_file(case: Case) -> list[str]:
    case.out.write_bytes(b"a file where the tree should go\n")
    return compile_argv(case)


def planted_link(case: Case, at: str, to: str) -> list[str]:
    """A link planted in an owned directory, pointing outside `out`."""
    outside = case.dir / "outside"
    outside.mkdir()
    (outside / "victim.json").write_bytes(b"someone else's file\n")
    old_tree(case)
    where = case.out / at
    if where.is_dir():
        shutil.rmtree(where)
    else:
        where.unlink()
    where.symlink_to(case.dir / to)
    return compile_argv(case)


def link_above_owned(case: Case) -> list[str]:
    """Compiling one cluster owns `clusters/dev-k3s`; `clusters` itself links elsewhere."""
    outside = case.dir / "outside"
    shutil.copytree(ROOT / "golden/clusters", outside)
    case.out.mkdir()
    (case.out / "clusters").symlink_to(outside)
    argv = compile_argv(case)
    argv[argv.index("--all")] = "--cluster=dev-k3s"
    return argv


def link_outside_owned(case: Case) -> list[str]:
    outside = case.dir / "outside"
    outside.mkdir()
    (outside / "notes.md").write_bytes(b"docs kept elsewhere\n")
    old_tree(case)
    (case.out / "docs").symlink_to(outside)
    return compile_argv(case)


def read_only(case: Case, path: str) -> list[str]:
    old_tree(case)
    target = case.dir / path
    if not target.exists():
        target.mkdir()
        (target / "notes.md").write_bytes(USER_FILE)
    target.chmod(0o555)
    case.stack.callback(_writable, case.dir)
    return compile_argv(case)


def _writable(root: Path) -> None:
    for dirpath, _, _ in os.walk(root):
        if not Path(dirpath).is_symlink():
            Path(dirpath).chmod(0o755)


def disk_full(
    case: Case, at: str, after_bytes: int = 0, after: int = 0, fresh: bool = False
) -> list[str]:
    """ENOSPC once the emit has written `after_bytes` bytes, or at its `after`th mkdir."""
    if not fresh:
        old_tree(case)
        for path in (case.out / "clusters").rglob("*.yaml"):  # a new config: every file differs
            path.write_bytes(path.read_bytes() + b"# compiled from the old config\n")
    staging = f".{case.out.name}.staging-"
    hits = case.state.setdefault("disk_full", [])

    def emitting(path: str | os.PathLike[str]) -> bool:
        parts = Path(path).parts
        return any(part.startswith(staging) for part in parts)

    def full() -> OSError:
        hits.append(1)
        return OSError(28, "No space left on device")

    if at == "write":
        written = [0]
        real_write = stagedfiles.write_new  # every new file of the staged tree goes through it

        def write_new(path: str, data: bytes) -> None:
            if emitting(path):
                written[0] += len(data)
                if written[0] > after_bytes:
                    raise full()
            real_write(path, data)

        case.monkeypatch.setattr(stagedfiles, "write_new", write_new)
    else:
        made = [0]
        real_mkdir = os.mkdir

        def mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
            if emitting(path):
                made[0] += 1
                if made[0] >= after:
                    raise full()
            real_mkdir(path, *args, **kwargs)

        case.monkeypatch.setattr(os, "mkdir", mkdir)
    return compile_argv(case)


def compile_with_cue(
    case: Case,
    cue: str,
    mode: str = "755",
    timeout: float | None = None,
    kubectl: str | None = None,
    version: str | None = "v0.17.1",
) -> list[str]:
    """A compile over an existing tree with a cue that misbehaves, on an empty PATH;
    `version`: what it says to `cue version` (None: the script's own answer)."""
    old_tree(case)
    bin_dir = case.empty_path()
    case.monkeypatch.delenv("GITOPS_CUE", raising=False)
    if kubectl == "broken":
        calls = case.dir / "kubectl-calls"
        case.state["kubectl_calls"] = calls
        kubectl_path = bin_dir / "kubectl"
        kubectl_path.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
        kubectl_path.chmod(0o755)
    if timeout is not None:
        # The one cue call of a run gets `timeout` (and a little for its documents), not
        # a minute.
        real_init = CuePolicies.__init__

        def short(self: CuePolicies, *args: Any, **kwargs: Any) -> None:
            real_init(self, *args, **kwargs)
            self.timeout = timeout

        case.monkeypatch.setattr(CuePolicies, "__init__", short)
    if cue == "missing":
        # A project without tools/ of its own (a config repository): the checkout's
        # launcher would be found there (issue 17), and it needs node on PATH.
        project = case.dir / "project"
        project.mkdir(exist_ok=True)
        shutil.copy2(ROOT / "gitops-compiler.yaml", project)
        for name in ("overlays", "policies", "examples"):
            shutil.copytree(ROOT / name, project / name, dirs_exist_ok=True)
        argv = compile_argv(case)
        argv[argv.index("--project") + 1] = str(project)
        return argv[: argv.index("--cue")] + argv[argv.index("--cue") + 2 :]
    if cue == "launcher":
        return compile_argv(case, cue=ROOT / "tools/cue-wasm/cue")
    return compile_argv(case, cue=case.script("cue", cue, int(mode, 8), version=version))


_FAILURES = {
    "throttled": THROTTLED,
    "server_error": error("InternalServerError", "Internal server error", status=500),
    "table_missing": error("ResourceNotFoundException", "Requested resource not found"),
    "bad_credentials": error(
        "UnrecognizedClientException", "The security token included in the request is invalid."
    ),
    "html": (200, b"<html><body>Welcome to nginx!</body></html>\n"),
}


def dynamodb(
    case: Case,
    fail: str | None = None,
    times: int = 0,
    credentials: bool = True,
    unreachable: bool = False,
) -> list[str]:
    old_tree(case)
    if unreachable:
        endpoint = f"http://127.0.0.1:{closed_port()}"
    else:
        fake = case.stack.enter_context(FakeDynamoDB(ROOT / "examples"))
        case.state["dynamodb"] = fake
        if fail is not None:
            fake.fail(times, _FAILURES[fail])
        endpoint = fake.url
    if not credentials:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            case.monkeypatch.delenv(key, raising=False)
        empty = case.dir / "aws-empty"
        empty.write_text("")
        case.monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
        case.monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
        # A session made earlier in this process may hold credentials already.
        case.monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    argv = compile_argv(case)
    argv[argv.index("--source") + 1] = "dynamodb"
    return [*argv, "--endpoint-url", endpoint]


def make_remote(bare: Path) -> Path:
    """A bare Argo CD repository whose main holds a README (as tests/gitrepos.py's fixture)."""
    bare.parent.mkdir(parents=True, exist_ok=True)
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    commit_files(bare, "main", {"README.md": b"# Argo CD\n"}, "init", author="Alice")
    return bare


def _count_pushes(case: Case, bare: Path, then: str = "exit 0") -> None:
    """A pre-receive hook that counts the pushes that reach the remote, then runs `then`."""
    pushes = case.dir / "pushes"
    case.state["pushes"] = pushes
    hook = bare / "hooks/pre-receive"
    hook.write_text(f"#!/bin/sh\ncat > /dev/null\necho push >> {pushes}\n{then}\n")
    hook.chmod(0o755)


def publish_argv(repo: str, *extra: str) -> list[str]:
    return ["publish", "--from", str(ROOT / "golden"), "--all", "--repo", repo,
            "--run-id", "c1", *extra]  # fmt: skip


def git_remote(
    case: Case,
    deny_non_fast_forward: bool = False,
    pre_receive: str | None = None,
    url: str | None = None,
    path: str | None = None,
) -> list[str]:
    bare = make_remote(case.dir / "argocd.git")
    case.state["remote"] = bare
    if deny_non_fast_forward:
        # An earlier publish (our trailer) on a base that has moved on since.
        message = f"Cluster config: old\n\nGitops-Compiler-Branch: {BRANCH_ALL}\n"
        commit_files(bare, BRANCH_ALL, {"clusters/old/cluster.json": b"{}\n"}, message,
                     author="gitops-compiler")  # fmt: skip
        git(f"--git-dir={bare}", "config", "receive.denyNonFastForwards", "true")
    _count_pushes(case, bare, pre_receive or "exit 0")
    if path == "empty":
        case.empty_path()
    repo = url.format(closed_port=closed_port(), case=case.dir) if url else str(bare)
    return publish_argv(repo, "--forge", "none")


def git_http(case: Case, refuse_push: bool = False, wrong_token: bool = False) -> list[str]:
    make_remote(case.dir / "served/argocd.git")
    server = case.stack.enter_context(
        GitHttpServer(case.dir / "served", user="x-access-token", password=GIT_TOKEN)
    )
    if refuse_push:
        server.refuse_push = "this token may read but not write"
    case.monkeypatch.setenv(
        "GITOPS_GIT_TOKEN", "ghp_notTheGitToken000" if wrong_token else GIT_TOKEN
    )
    return publish_argv(server.url("argocd.git"), "--forge", "none")


def forge(
    case: Case,
    token: str = FAKE_TOKEN,
    script: list[dict[str, Any]] | None = None,
    forge_repo: str = FAKE_REPO,
    existing_pull: bool = False,
    api_url: str | None = None,
) -> list[str]:
    bare = make_remote(case.dir / "argocd.git")
    case.state["remote"] = bare
    github = case.stack.enter_context(FakeGitHub())
    case.state["github"] = github
    for answer in script or []:
        github.script(
            answer["status"],
            body=answer.get("body"),
            headers=answer.get("headers"),
            times=answer.get("times", 1),
            method=answer.get("method"),
        )
    if existing_pull:
        github.add_pull(BRANCH_ALL, "main", title="an older title", body="an older body")
    case.monkeypatch.setenv("GITHUB_TOKEN", token)
    api = api_url.format(closed_port=closed_port()) if api_url else github.url
    case.monkeypatch.setenv("GITHUB_API_URL", api)
    return publish_argv(str(bare), "--forge", "github", "--forge-repo", forge_repo)


SETUPS: dict[str, Callable[..., list[str]]] = {
    "out_is_a_symlink": out_is_a_symlink,
    "out_is_a_file": out_is_a_file,
    "planted_link": planted_link,
    "link_above_owned": link_above_owned,
    "link_outside_owned": link_outside_owned,
    "read_only": read_only,
    "disk_full": disk_full,
    "compile_with_cue": compile_with_cue,
    "dynamodb": dynamodb,
    "git_remote": git_remote,
    "git_http": git_http,
    "forge": forge,
}


# ------------------------------------------------------------------------- checks


def _tree_is_golden(case: Case, result: Result, expected: bool) -> None:
    assert (compiled_part(case.out) == golden_files()) is expected
    assert tree(case.out).get("README.md", USER_FILE) == USER_FILE


def _no_leftovers(case: Case, result: Result, expected: bool) -> None:
    assert (leftovers(case.out) == []) is expected, leftovers(case.out)


def _absent(case: Case, result: Result, path: str) -> None:
    assert not (case.dir / path).exists() and not (case.dir / path).is_symlink()


def _message(case: Case, result: Result, fragment: str) -> None:
    assert fragment in result.text, result.text


def _disk_full_hit(case: Case, result: Result, expected: bool) -> None:
    assert bool(case.state["disk_full"]) is expected  # the fault really happened


def _requests(case: Case, result: Result, count: int) -> None:
    assert len(case.state["dynamodb"].requests) == count, case.state["dynamodb"].requests


def _backoff(case: Case, result: Result, count: int) -> None:
    """botocore's standard mode: exponential back-off of base 2, at most 20 s, jittered."""
    assert len(case.sleeps) == count, case.sleeps
    for attempt, wait in enumerate(case.sleeps):
        assert 0 <= wait <= min(20, 2**attempt), case.sleeps


def _waits(case: Case, result: Result, expected: list[float]) -> None:
    assert case.sleeps == expected


def _pushes(case: Case, result: Result, count: int) -> None:
    pushes: Path = case.state["pushes"]
    assert len(pushes.read_text().split()) == count


def _branch_pushed(case: Case, result: Result, expected: bool) -> None:
    assert has_branch(case.state["remote"], BRANCH_ALL) is expected


def _pulls(case: Case, result: Result, count: int) -> None:
    assert len(case.state["github"].pulls()) == count


def _kubectl_calls(case: Case, result: Result, count: int) -> None:
    calls: Path = case.state["kubectl_calls"]
    assert len(calls.read_text().splitlines() if calls.exists() else []) == count


CHECKS: dict[str, Callable[[Case, Result, Any], None]] = {
    "tree_is_golden": _tree_is_golden,
    "no_leftovers": _no_leftovers,
    "absent": _absent,
    "message": _message,
    "disk_full_hit": _disk_full_hit,
    "requests": _requests,
    "backoff": _backoff,
    "waits": _waits,
    "pushes": _pushes,
    "branch_pushed": _branch_pushed,
    "pulls": _pulls,
    "kubectl_calls": _kubectl_calls,
}


# ------------------------------------------------------------------------- SIGKILL

_WRITER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from compiler import emit

out, mode = Path(sys.argv[2]), sys.argv[4]
loaded = json.loads(Path(sys.argv[3]).read_text())
trees = {key: {p: text.encode() for p, text in files.items()} for key, files in loaded.items()}
if mode == "rename":
    emit._exchange = lambda a, b: False  # as where renameat2 is missing
owned = ["applicationsets", "clusters"]
emit.write_tree(out, trees["new"], owned=owned)
prepare = emit._prepare


def announced(*args, **kwargs):
    # One byte as each staging begins (a write that found changes), so that the parent
    # aims its kill at the staging and swap rather than at the read-only comparison.
    sys.stdout.write("s")
    sys.stdout.flush()
    return prepare(*args, **kwargs)


emit._prepare = announced
print("ready", flush=True)  # from here on, writing without a pause
deadline = time.monotonic() + 60  # bounded, should the parent die before killing us
while time.monotonic() < deadline:
    for key in ("old", "new"):
        emit.write_tree(out, trees[key], owned=owned)
"""


def _changed_project(case: Case) -> Path:
    """The example project with a prod overlay: an add-on deleted, a quota raised."""
    project = case.dir / "project"
    project.mkdir()
    shutil.copy2(ROOT / "gitops-compiler.yaml", project)
    for name in ("overlays", "policies", "examples"):
        shutil.copytree(ROOT / name, project / name)
    (project / "overlays/prod/90-change.yaml").write_text(
        "addons:\n  logging: null\n"
        "namespaces:\n  monitoring:\n    quotas:\n      monitoring-quota: {cpu: '12'}\n"
    )
    return project


_compiled: dict[str, dict[str, bytes]] = {}  # the changed project's tree, compiled once


def _new_tree(case: Case) -> dict[str, bytes]:
    if "new" not in _compiled:
        argv = compile_argv(case)
        argv[argv.index("--project") + 1] = str(_changed_project(case))
        argv[argv.index("--out") + 1] = str(case.dir / "new")
        assert case.run(argv).exit == 0
        _compiled["new"] = tree(case.dir / "new")
    return _compiled["new"]


def sigkill_during_emit(case: Case, row: dict[str, Any], kills: int, seed: int, mode: str) -> None:
    trees = {"old": golden_files(), "new": _new_tree(case)}
    assert trees["old"] != trees["new"] and set(trees["old"]) != set(trees["new"])
    source = case.dir / "trees.json"
    source.write_text(
        json.dumps({k: {p: b.decode() for p, b in t.items()} for k, t in trees.items()})
    )
    # The whole tree each way, the user's file outside the owned directories included.
    expected = {}
    for key, files in trees.items():
        emit.write_tree(case.dir / f"expected-{key}", files, owned=OWNED)
        (case.dir / f"expected-{key}/README.md").write_bytes(USER_FILE)
        expected[tree_hash(case.dir / f"expected-{key}")] = key
    out = case.out
    emit.write_tree(out, trees["old"], owned=OWNED)
    (out / "README.md").write_bytes(USER_FILE)
    # The window to kill in: from the start of a write's staging (the child announces
    # it) to the end of the write, as long as it takes here; the comparison before the
    # staging writes nothing and is left out.
    swaps: list[float] = []
    began: list[float] = []
    real_prepare = emit._prepare

    def announced(*args: Any, **kwargs: Any) -> Path:
        began.append(time.perf_counter())
        return real_prepare(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(emit, "_prepare", announced)
        for key in ("new", "old"):
            emit.write_tree(out, trees[key], owned=OWNED)
            swaps.append(time.perf_counter() - began[-1])
    one_swap = max(swaps)
    rng = random.Random(seed)
    seen: list[str] = []
    cut = 0
    for _ in range(kills):
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(ROOT), str(out), str(source), mode],
            bufsize=0,  # unbuffered reads: select() then sees every byte not yet read
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert child.stdout is not None
            ready, _, _ = select.select([child.stdout], [], [], 30)
            assert ready and child.stdout.readline() == b"ready\n", "the writer did not start"
            # After a random number of swaps (the child writes without pause), at a
            # random moment of the next one or just after it.
            for _ in range(rng.randrange(1, 4)):
                ready, _, _ = select.select([child.stdout], [], [], 30)
                assert ready and child.stdout.read(1) == b"s", "the writer stopped swapping"
            time.sleep(rng.uniform(0, 1.2) * one_swap)
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            _, stderr = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, stderr.decode()
        cut += bool(leftovers(out))  # a staging dir: the kill landed inside a write
        if mode == "rename":
            emit._recover(out)  # what the next run does first, under its lock
        got = tree_hash(out) if out.exists() else "no tree"
        assert got in expected, f"kill {len(seen) + 1}: `out` is neither the old nor the new tree"
        seen.append(expected[got])
    assert cut >= kills // 2, f"only {cut} of {kills} kills landed inside a write"
    # The next run starts from whatever a kill left, and writes a whole tree.
    emit.write_tree(out, trees["new"], owned=OWNED)
    assert tree_hash(out) in expected and expected[tree_hash(out)] == "new"
    assert leftovers(out) == []


# ------------------------------------------------------------------------- secrets

GIT_TOKEN = "ghp_gitHeaderToken8f3Kq2"  # GITOPS_GIT_TOKEN
URL_TOKEN = "ghp_gitUrlTokenZ7w1Lm"  # in the repository URL
GITHUB_TOKEN = "ghp_forgeTokenQ4pX9c"  # GITHUB_TOKEN, for the API


def _forms(token: str) -> list[str]:
    """A token as it may leak: raw, URL-quoted, and in the Basic credentials git sends."""
    return [token, quote(token, safe=""), _basic(token).removeprefix("Basic ")]


def publish_secrets(
    case: Case, row: dict[str, Any], credential: str, compile: bool, fault: str
) -> None:
    served = case.dir / "served"
    bare = make_remote(served / "argocd.git")
    password = GIT_TOKEN if credential == "header" else URL_TOKEN
    server = case.stack.enter_context(
        GitHttpServer(served, user="x-access-token", password=password)
    )
    github = case.stack.enter_context(
        FakeGitHub(token="ghp_theTokenGitHubWants0" if fault == "forge_refused" else GITHUB_TOKEN)
    )
    tokens = [URL_TOKEN, GITHUB_TOKEN]
    if credential == "header":
        case.monkeypatch.setenv("GITOPS_GIT_TOKEN", GIT_TOKEN)
        tokens.append(GIT_TOKEN)
    case.monkeypatch.setenv("GITHUB_TOKEN", GITHUB_TOKEN)
    case.monkeypatch.setenv("GITHUB_API_URL", github.url)
    if fault == "push_refused":
        server.refuse_push = "this token may read but not write"
    url = server.url("argocd.git", userinfo=f"x-access-token:{URL_TOKEN}")
    produced = case.dir / "produced"
    produced.mkdir()
    hook = case.script(
        "hook",
        f'cat >> "{produced}/$GITOPS_NOTIFY.jsonl"; echo >> "{produced}/$GITOPS_NOTIFY.jsonl"',
    )
    source = (
        ["--project", str(ROOT), "--source", "snapshot:examples"]
        if compile
        else ["--from", str(ROOT / "golden")]
    )
    argv = [
        "--log-format", "json", "--audit-log", str(produced / "audit.jsonl"),
        "--alert", f"command:{hook}", "--status-webhook", f"command:{hook}",
        "publish", *source, "--all", "--repo", url, "--forge-repo", FAKE_REPO, "--run-id", "s1",
    ]  # fmt: skip
    case.monkeypatch.setattr(sys, "argv", ["gitops-compiler", *argv])  # for the crash log
    if fault == "internal_error":

        def bug(*args: Any, **kwargs: Any) -> str:
            raise RuntimeError(f"bug: {url} {' '.join(tokens)} Basic {_forms(URL_TOKEN)[-1]}")

        case.monkeypatch.setattr(compiler.publishing.publisher, "render_body", bug)
    result = case.run(argv)
    assert result.exit == row["exit"], result.text
    assert row["message"] in result.text, result.text

    # Where the credentials were meant to go, they went: the test is not vacuous.
    sent = {auth for _, _, auth in server.requests}
    if row.get("then", {}).get("sent"):
        wanted = GIT_TOKEN if row["then"]["sent"] == "header" else URL_TOKEN
        assert _basic(wanted) in sent
    assert all(
        r.headers.get("authorization") == f"Bearer {GITHUB_TOKEN}" for r in github.received()
    )

    # Everything the run produced, in one text to search.
    assert (produced / "status.jsonl").is_file() and (produced / "audit.jsonl").is_file()
    seen = [result.out, result.err]
    leftover = [p for p in Path(tempfile.gettempdir()).rglob("*") if p.is_file()]
    if fault == "internal_error":
        assert leftover, "the crash log is searched too"
    for path in [*produced.rglob("*"), *leftover]:
        if path.is_file():
            seen.append(path.read_bytes().decode("utf-8", "replace"))
    for request in github.received():
        headers = {k: v for k, v in request.headers.items() if k != "authorization"}
        seen.append(
            json.dumps([request.method, request.path, request.query, headers, request.json])
        )
    seen += [f"{method} {path}" for method, path, _ in server.requests]
    for path in bare.rglob("*"):
        if path.is_file() and "objects" not in path.relative_to(bare).parts:
            seen.append(path.read_bytes().decode("utf-8", "replace"))
    objects = subprocess.run(
        ["git", f"--git-dir={bare}", "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    seen.append(objects.decode("utf-8", "replace"))
    everything = "\n".join(seen)
    assert "ms-s1-" in everything  # the trace ids: what was searched is the run's output
    if row["exit"] == 0:
        assert "Trace-Id: ms-s1-git-e40" in objects.decode("utf-8", "replace")
        assert any("ms-s1-git-e40" in json.dumps(r.json) for r in github.received("POST"))
    for token in tokens:
        for form in _forms(token):
            assert form not in everything, f"{form!r} (of {token[:8]}…) leaked"


def _basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()


PROCEDURES: dict[str, Callable[..., None]] = {
    "sigkill_during_emit": sigkill_during_emit,
    "publish_secrets": publish_secrets,
}
