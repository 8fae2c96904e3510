"""`gitops-compiler doctor`: what a run needs, checked, with how to fix each gap.

Each check is read-only: `cue version`, `git --version`, DynamoDB's
DescribeTable and one latest-version read per snapshot layer, `git ls-remote`
of the Argo CD repository. Token variables are reported present or absent,
never their values. A check `needed` for the purpose asked (`check`: validate,
golden and the hooks; `publish`: also the table, a token and the Argo CD
repository) makes the run fail when it fails; the others only inform.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler import proc
from compiler.errors import CompilerError
from compiler.options import DEFAULT_SNAPSHOT
from compiler.project import Project, resolve_endpoint

PURPOSES = ("check", "publish")
TOKENS = (
    "GITOPS_GIT_TOKEN", "GITOPS_GITHUB_TOKEN", "GITHUB_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN",
    "ARGOCD_AUTH_TOKEN",
)  # fmt: skip
_FORGE_TOKENS = ("GITOPS_GITHUB_TOKEN", "GITHUB_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN")
_TIMEOUT = 20.0


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    needed: bool = False  # for the purpose asked: a failure fails the run


class _Failed(Exception):
    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail, self.fix = detail, fix


def examine(
    project: Project, *, purpose: str, cue: str | None, environ: Mapping[str, str]
) -> list[Finding]:
    publish = purpose == "publish"
    checks: list[tuple[str, bool, Callable[[], str]]] = [
        ("cue", True, lambda: _cue(cue, environ)),
        ("git", True, _git),
        ("snapshot", project.source.startswith("snapshot"), lambda: _snapshot(project)),
        ("dynamodb", publish, lambda: _dynamodb(project)),
        ("tokens", publish, lambda: _tokens(environ)),
        ("argocd repository", publish, lambda: _argocd_repo(project, environ)),
    ]
    found = []
    for name, needed, check in checks:
        try:
            found.append(Finding(name, True, check(), needed=needed))
        except _Failed as failed:
            found.append(Finding(name, False, failed.detail, failed.fix, needed))
    return found


def _cue(flag: str | None, environ: Mapping[str, str]) -> str:
    from compiler.policy.cue import HOW_TO_GET_CUE, find_cue
    from compiler.policy.cue_binary import supported_cue_version

    try:
        binary = find_cue(flag, environ, project=Path.cwd())
        return f"cue version {supported_cue_version(binary, environ=environ)} ({binary})"
    except CompilerError as err:
        # find_cue's message ends with the fix: shown once, on its own line.
        detail = str(err).replace(f": {HOW_TO_GET_CUE}", "").replace(f"; {HOW_TO_GET_CUE}", "")
        raise _Failed(detail, HOW_TO_GET_CUE) from None


def _git() -> str:
    try:
        ran = proc.run(["git", "--version"], cwd=None, env=None, timeout=_TIMEOUT)
    except CompilerError as err:
        raise _Failed(str(err), "install git (https://git-scm.com)") from None
    return ran.stdout.decode().strip()


def _layers(directory: Path) -> Iterator[tuple[str, Any]]:
    from compiler.model import pk_from_layer_name
    from compiler.sources import Pin
    from compiler.sources.snapshot import SnapshotStore

    store = SnapshotStore(directory)
    for path in sorted(directory.rglob("*.yaml")):
        pk = pk_from_layer_name(path.relative_to(directory).with_suffix("").as_posix())
        yield pk, store.read(pk, Pin())


def _snapshot_dir(project: Project) -> Path:
    named = project.source.partition(":")[2] or DEFAULT_SNAPSHOT
    return project.root / named


def _refresh(project: Project) -> tuple[str, str]:
    """The command that writes the project's own snapshot (`source:` may name another
    directory than the default), and that directory as the project names it."""
    directory = _snapshot_dir(project)
    shown = (
        directory.relative_to(project.root).as_posix()
        if directory.is_relative_to(project.root)
        else str(directory)
    )
    return f"`gitops-compiler snapshot --out {shown}`", shown


def _snapshot(project: Project) -> str:
    directory = _snapshot_dir(project)
    command, shown = _refresh(project)
    fix = f"run {command} (reads the table) and commit {shown}"
    if not directory.is_dir():
        raise _Failed(f"no snapshot in {directory}", fix)
    try:
        latest = [v.created_at for _, v in _layers(directory) if v is not None]
    except CompilerError as err:
        raise _Failed(str(err), fix) from None
    if not latest:
        raise _Failed(f"the snapshot in {directory} holds no layer", fix)
    return f"{directory}: {len(latest)} layer(s), the newest version written {max(latest)}"


def _dynamodb(project: Project) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    from compiler.options import dynamodb_store

    endpoint = resolve_endpoint(None, project)
    where = f"table {project.table} at {endpoint or 'AWS ' + project.region}"
    store = dynamodb_store(project)  # a `local up` server's credentials included
    client: Any = store._client
    try:
        described = client.describe_table(TableName=project.table)["Table"]
    except (BotoCoreError, ClientError) as err:
        raise _Failed(
            f"{where}: {err}",
            "set AWS credentials (AWS_PROFILE or the AWS_* variables) and the project file's "
            "table/region/endpointUrl, or run `gitops-compiler local up`",
        ) from None
    keys = {k["AttributeName"]: k["KeyType"] for k in described["KeySchema"]}
    if keys != {"pk": "HASH", "sk": "RANGE"}:
        raise _Failed(
            f"{where}: key schema {keys}, not pk (HASH) + sk (RANGE)",
            "point the project file at the gitops-compiler table, or `gitops-compiler table create`",
        )
    return f"{where}: key schema pk + sk; {_snapshot_age(project, store)}"


def _snapshot_age(project: Project, store: Any) -> str:

    directory = _snapshot_dir(project)
    if not directory.is_dir():
        return "no snapshot to compare"
    behind = []
    try:
        layers = list(_layers(directory))
        # The table's latest numbers in batches (heads, without content), not a read each.
        latest = store.read_latest_numbers([pk for pk, _ in layers])
        for pk, kept in layers:
            current = latest.get(pk)
            if isinstance(current, CompilerError):
                raise current
            if current is not None and (kept is None or current > kept.version):
                behind.append(pk)
    except CompilerError as err:
        return f"snapshot not compared: {err}"
    if behind:
        return (
            f"the snapshot is behind the table for {len(behind)} layer(s) ({', '.join(behind)}): "
            f"run {_refresh(project)[0]}"
        )
    return "the snapshot is current"


def _tokens(environ: Mapping[str, str]) -> str:
    present = [name for name in TOKENS if environ.get(name)]
    if not any(name in present for name in _FORGE_TOKENS):
        raise _Failed(
            f"none of {', '.join(_FORGE_TOKENS)} is set",
            "set GITOPS_GITHUB_TOKEN (GitHub) or GITLAB_TOKEN (GitLab) in the environment",
        )
    return f"set: {', '.join(present)} (values not shown)"


def _argocd_repo(project: Project, environ: Mapping[str, str]) -> str:
    from compiler.secrets import redact

    url = project.argocd.repo_url
    env = {**environ, "GIT_TERMINAL_PROMPT": "0"}
    fix = "check argocd.repoURL in gitops-compiler.yaml and GITOPS_GIT_TOKEN"
    try:
        ran = proc.run(
            ["git", "ls-remote", "--heads", "--", url], cwd=None, env=env, timeout=_TIMEOUT
        )
    except CompilerError as err:
        raise _Failed(redact(str(err)), fix) from None
    if ran.returncode != 0:
        raise _Failed(redact(proc.failure(ran)), fix)
    heads = len(ran.stdout.splitlines())
    return f"{redact(url)}: reachable, {heads} branch(es)"


def needs_fixing(findings: list[Finding]) -> bool:
    return any(f.needed and not f.ok for f in findings)
