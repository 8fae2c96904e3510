"""`validate --against DIR|REF`: the in-place changes a compile would ask of the clusters,
judged against a base tree (a directory holding one, or `REF[:PATH]` of the git
repository here), for CI where no publish gives a base.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from compiler.argocd.immutable import RULE, immutable_changes
from compiler.emit import walk_tree
from compiler.policy import Violation
from compiler.publishing.gitrepo import Workspace


def read_base(against: str, prefixes: Sequence[str]) -> dict[str, bytes]:
    """The base side, restricted to the directories a compile owns."""
    path = Path(against)
    if path.is_dir():
        return {
            rel: (path / rel).read_bytes()
            for rel, kind in walk_tree(path)
            if kind == "file" and any(rel.startswith(f"{p}/") for p in prefixes)
        }
    ref, _, sub = against.partition(":")
    sub = sub.strip("/")
    repo = Workspace.existing(Path.cwd(), environ=os.environ)
    commit = repo.resolve(ref)
    files = repo.read_files(commit, [f"{sub}/{p}" if sub else p for p in prefixes])
    return {rel[len(sub) + 1 :] if sub else rel: data for rel, data in files.items()}


def replacement_findings(
    base: Mapping[str, bytes], new: Mapping[str, bytes], against: str
) -> tuple[list[Violation], list[Violation]]:
    """(violations, notices): each change the API server refuses in place fails unless the
    config accepts the replacement (`replaceOnSync`); an accepted one is a notice."""
    failing: list[Violation] = []
    notices: list[Violation] = []
    for change in immutable_changes(base, new):
        found = Violation(
            change.cluster,
            f"object:{change.file}",
            RULE,
            f"against {against}: {change.describe()}",
            severity="warning" if change.accepted else "error",
        )
        (notices if change.accepted else failing).append(found)
    return failing, notices
