"""The old side of `diff --against`: what the Argo CD repository (or a tree) holds now.

`--against` names one of (issue 17, item 7: a bare repository or a branch name showed
every cluster as added):

- a git repository, bare or not, by path or URL: its branch `base` (default: the
  project file's `argocd.targetRevision`);
- a directory holding a compiled tree (`out/`, `golden/`): its files;
- `REF:PATH`: a revision of the git repository here and a directory in it (`HEAD:golden`);
- `REF`: a branch or revision of the Argo CD repository (`--repo`, default the project
  file's `argocd.repoURL`).

A base with no `clusters/` at all makes every cluster look added: that is a warning, as
it is more often the wrong repository, branch or path than a first publish.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from compiler import proc
from compiler.emit import walk_tree
from compiler.errors import OutsideError, UsageError
from compiler.layout import CLUSTERS_DIR
from compiler.project import ArgoCDSettings
from compiler.publishing.gitrepo import GIT_TIMEOUT, Workspace, check_branch, split_credentials

# scp-like `git@host:path`; `://` covers https, ssh and file URLs.
_SCP = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:")


@dataclass(frozen=True)
class Base:
    """The files of the old side under the owned prefixes, and what they were read from."""

    files: Mapping[str, bytes]
    described: str  # "branch main of /srv/argocd.git", for messages
    has_clusters: bool  # False: no clusters/ at all (the warning)


def read_base(
    against: str,
    prefixes: Sequence[str],
    *,
    repo: str,
    branch: str,
    environ: Mapping[str, str],
    cwd: Path,
) -> Base:
    """The old side named by `against` (see the module's docstring)."""
    if _is_url(against):
        return _remote(against, branch, prefixes, environ)
    path = cwd / against
    if path.is_dir():
        if _is_repository(path, environ):
            return _local(path, branch, prefixes, environ, f"branch {branch} of {against}")
        return _directory(path, prefixes, against)
    if against.startswith(("/", "./", "../", "~")):  # a path: no branch name starts so
        raise UsageError(
            f"--against {against!r}: no such directory (a compiled tree, a clone of the "
            "Argo CD repository, or a bare repository)"
        )
    ref, colon, sub = against.partition(":")
    if colon:  # a revision of the git repository here, and a directory in it
        return _local(cwd, ref, prefixes, environ, f"{against} of the repository here", sub)
    where = f"{ref} of the Argo CD repository {split_credentials(repo)[0]}"
    if _is_url(repo):
        try:
            return _remote(repo, check_branch(ref, "--against branch"), prefixes, environ)
        except OutsideError as err:
            raise OutsideError(
                f"{err.message}\n--against {ref} reads the Argo CD repository: --repo, else "
                "argocd.repoURL of the project file; a compiled tree or a clone is a path"
            ) from None
    repo_path = cwd / repo
    if not repo_path.is_dir() or not _is_repository(repo_path, environ):
        raise UsageError(
            f"--against {against!r} is neither a directory nor a git repository, and the "
            f"Argo CD repository {repo!r} (--repo, else argocd.repoURL in the project file) "
            "is not a git repository to read it from"
        )
    return _local(repo_path, ref, prefixes, environ, where)


def read_project_base(
    against: str,
    prefixes: Sequence[str],
    argocd: ArgoCDSettings,
    *,
    repo: str | None = None,
    branch: str | None = None,
) -> Base:
    """`read_base` with the project's Argo CD repository and branch as the defaults
    (`diff --against`, `validate --against`)."""
    return read_base(
        against,
        prefixes,
        repo=repo or argocd.repo_url,
        branch=branch or argocd.target_revision,
        environ=os.environ,
        cwd=Path.cwd(),
    )


def no_clusters_warning(base: Base) -> str:
    return (
        f"{base.described} has no {CLUSTERS_DIR}/ at all, so every cluster shows as added: "
        "is it the Argo CD repository (at the branch Argo CD deploys, --base), or a tree?"
    )


def _is_url(text: str) -> bool:
    return "://" in text or bool(_SCP.match(text))


def _is_repository(path: Path, environ: Mapping[str, str]) -> bool:
    """A bare repository, or the top of a work tree: `out/` inside a project's git
    repository is a compiled tree, not the repository."""
    resolved = path.resolve()
    for question in ("--absolute-git-dir", "--show-toplevel"):
        ran = proc.run(
            ("git", "-C", str(path), "rev-parse", question),
            cwd=None,
            env={**environ, "LC_ALL": "C"},
            timeout=GIT_TIMEOUT,
        )
        if ran.returncode == 0 and Path(ran.stdout.decode().strip()).resolve() == resolved:
            return True
    return False


def _directory(path: Path, prefixes: Sequence[str], shown: str) -> Base:
    files = {
        rel: (path / rel).read_bytes()
        for rel, kind in walk_tree(path)
        if kind == "file" and any(rel.startswith(f"{p}/") for p in prefixes)
    }
    return Base(files, shown, (path / CLUSTERS_DIR).is_dir())


def _local(
    path: Path,
    ref: str,
    prefixes: Sequence[str],
    environ: Mapping[str, str],
    shown: str,
    sub: str = "",
) -> Base:
    workspace = Workspace.existing(path, environ=environ)
    try:
        commit = workspace.resolve(ref)
    except UsageError:
        raise UsageError(
            f"--against: {shown}: {ref!r} is neither a directory nor a commit there"
        ) from None
    return _read(workspace, path, commit, prefixes, shown, sub.strip("/"))


def _remote(url: str, branch: str, prefixes: Sequence[str], environ: Mapping[str, str]) -> Base:
    shown = f"branch {branch} of {split_credentials(url)[0]}"
    with tempfile.TemporaryDirectory(prefix="gitops-diff-") as scratch:
        directory = Path(scratch) / "base.git"
        workspace = Workspace(url, directory, environ=environ)
        if branch not in workspace.heads(branch):
            raise UsageError(f"--against: {shown} does not exist")
        workspace.fetch(branch)
        commit = workspace.resolve(f"refs/remotes/origin/{branch}")
        return _read(workspace, directory, commit, prefixes, shown, "")


def _read(
    workspace: Workspace,
    directory: Path,
    commit: str,
    prefixes: Sequence[str],
    shown: str,
    sub: str,
) -> Base:
    inner = [f"{sub}/{p}" if sub else p for p in prefixes]
    files = workspace.read_files(commit, inner)
    if sub:
        files = {rel[len(sub) + 1 :]: data for rel, data in files.items()}
    clusters = f"{sub}/{CLUSTERS_DIR}" if sub else CLUSTERS_DIR
    # `cat-file -e` answers without reading the blobs under it (a large repository).
    ran = proc.run(
        ("git", "-C", str(directory), "cat-file", "-e", f"{commit}:{clusters}"),
        cwd=None,
        env=None,
        timeout=GIT_TIMEOUT,
    )
    return Base(files, shown, ran.returncode == 0)
