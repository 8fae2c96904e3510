"""`diff --against REPO|DIR|REF[:PATH]`: what a publish would change, object by object."""

from __future__ import annotations

import sys
from pathlib import Path

from compiler.errors import EXIT_FINDINGS, EXIT_OK
from compiler.operations.trace import Run
from compiler.options import Selection, SourceOptions, open_project
from compiler.publishing.diffbase import no_clusters_warning, read_project_base
from compiler.publishing.prbody import ReviewContext, render_body
from compiler.publishing.publication import build_publication
from compiler.publishing.treediff import diff_trees, format_text


def diff_command(
    *,
    source: SourceOptions,
    selection: Selection,
    against: str,
    repo: str | None = None,
    base: str | None = None,
    from_dir: Path | None,
    exit_code: bool,
    fmt: str,
    cue: str | None,
) -> int:
    publication = build_publication(source, selection, from_dir=from_dir, cue=cue).publication
    if publication is None:
        return EXIT_FINDINGS
    argocd = open_project(source).argocd
    old = read_project_base(against, publication.owned, argocd, repo=repo, branch=base)
    if not old.has_clusters:
        print(f"warning: {no_clusters_warning(old)}", file=sys.stderr)
    diff = diff_trees(dict(old.files), publication.files, publication.blame)
    if fmt == "markdown":
        context = ReviewContext(
            title="Cluster config diff",
            trace_id=Run().trace("git"),
            base=old.described,
            checks=publication.checks,
            objects=publication.objects,
            diff_command="gitops-compiler diff",
        )
        sys.stdout.write(render_body(diff, context))
    else:
        sys.stdout.write(format_text(diff))
    return EXIT_FINDINGS if exit_code and not diff.empty else EXIT_OK
