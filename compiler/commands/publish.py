"""`publish` and `rollback`: a compiled tree as a branch and a pull request on the Argo CD
repository. A rollback first records a revert in the table (new versions holding the old
content, `compiler/reversion.py`), then publishes the cluster on its own branch, labelled
and titled as a rollback; a dry run writes nothing and compiles the old versions."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from compiler.errors import EXIT_FINDINGS, EXIT_OK
from compiler.operations import steps
from compiler.operations.trace import Run
from compiler.options import (
    Destination,
    Selection,
    SourceOptions,
    build_pin,
    current_author,
    open_project,
    open_store,
    parse_versions,
)
from compiler.outcome import Outcome
from compiler.publishing.publication import Published, publish_tree, report_published
from compiler.reversion import pin_of, plan_moves, write_reverts
from compiler.sources import Pin


def publish_command(
    *,
    source: SourceOptions,
    selection: Selection,
    destination: Destination,
    from_dir: Path | None,
    cue: str | None,
    run_id: str | None,
    fmt: str,
) -> Outcome:
    current = steps.current().run
    run = current if run_id in (None, current.id) else Run(run_id)
    published = publish_tree(source, selection, destination, run=run, from_dir=from_dir, cue=cue)
    report_published(published, fmt)
    return _outcome(published)


def rollback_command(
    *,
    source: SourceOptions,
    cluster: str,
    as_of: str | None,
    versions: str | None,
    destination: Destination,
    from_dir: Path | None,
    cue: str | None,
    run_id: str | None,
    fmt: str,
) -> Outcome:
    """`--as-of TIME` or `--versions LAYER=N,...` (one of them: the parser sees to it)."""
    pin = (
        Pin(versions=parse_versions(versions))
        if versions is not None
        else build_pin(Selection(as_of=as_of))
    )
    current = steps.current().run
    run = current if run_id in (None, current.id) else Run(run_id)
    project = open_project(source)
    store = open_store(source, project)
    moves = plan_moves(store, project, cluster, pin)
    reverts = [m.describe() for m in moves]
    selection = Selection(clusters=(cluster,))
    if not moves:
        print(f"{cluster} reads these versions already: nothing to revert", file=sys.stderr)
    elif destination.dry_run:
        selection = Selection(clusters=(cluster,), pin=pin_of(moves))
    else:
        with steps.step("dynamodb", cluster=cluster, action="rollback") as wrote:
            written = write_reverts(
                store, moves, author=current_author(), trace_id=run.trace("git")
            )
            reverts = [f"{r} as @{w.version}" for r, w in zip(reverts, written, strict=True)]
            wrote["reverts"] = reverts
        for line in reverts:
            print(f"reverted {line}", file=sys.stderr)
    published = publish_tree(
        source,
        selection,
        dataclasses.replace(destination, reverts=tuple(reverts)),
        run=run,
        from_dir=from_dir,
        cue=cue,
    )
    report_published(published, fmt)
    return _outcome(published)


def _outcome(published: Published) -> Outcome:
    if published.outcome is None or published.target is None:
        return Outcome(EXIT_FINDINGS, clusters=published.compiled)
    pull = published.outcome.pull
    return Outcome(
        EXIT_OK,
        status=published.status,
        clusters=published.compiled,
        trace_id=published.target.trace_id,
        pull_request=pull.pull.url if pull is not None else None,
        pull_request_name=pull.name if pull is not None else None,
    )
