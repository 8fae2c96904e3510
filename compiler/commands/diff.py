"""`diff --against DIR|REF[:PATH]`: what a publish would change, object by object."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from compiler.emit import walk_tree
from compiler.errors import EXIT_FINDINGS, EXIT_OK
from compiler.operations.trace import Run
from compiler.options import Selection, SourceOptions
from compiler.publishing.gitrepo import Workspace
from compiler.publishing.prbody import ReviewContext, render_body
from compiler.publishing.publication import build_publication
from compiler.publishing.treediff import diff_trees, format_text


def diff_command(
    *,
    source: SourceOptions,
    selection: Selection,
    against: str,
    from_dir: Path | None,
    exit_code: bool,
    fmt: str,
    cue: str | None,
) -> int:
    publication = build_publication(source, selection, from_dir=from_dir, cue=cue).publication
    if publication is None:
        return EXIT_FINDINGS
    old = _read_against(against, publication.owned)
    diff = diff_trees(old, publication.files, publication.blame)
    if fmt == "markdown":
        context = ReviewContext(
            title="Cluster config diff",
            trace_id=Run().trace("git"),
            base=against,
            checks=publication.checks,
            objects=publication.objects,
            diff_command="gitops-compiler diff",
        )
        sys.stdout.write(render_body(diff, context))
    else:
        sys.stdout.write(format_text(diff))
    return EXIT_FINDINGS if exit_code and not diff.empty else EXIT_OK


def _read_against(against: str, prefixes: Sequence[str]) -> dict[str, bytes]:
    """The old side: a directory holding a tree, or `REF[:PATH]` of the git repository here."""
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
    inner = [f"{sub}/{p}" if sub else p for p in prefixes]
    files = repo.read_files(commit, inner)
    return {rel[len(sub) + 1 :] if sub else rel: data for rel, data in files.items()}
