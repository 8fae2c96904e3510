"""`publish` and `rollback`: a compiled tree as a branch and a pull request on the Argo CD
repository. A rollback is a publish of one cluster compiled from older layer versions,
on its own branch, labelled and titled as a rollback."""

from __future__ import annotations

from pathlib import Path

from compiler.errors import EXIT_FINDINGS, EXIT_OK
from compiler.operations import steps
from compiler.operations.trace import Run
from compiler.options import Destination, Selection, SourceOptions, parse_versions
from compiler.outcome import Outcome
from compiler.publishing.publication import Published, publish_tree, report_published
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
    pin = Pin(versions=parse_versions(versions)) if versions is not None else None
    selection = Selection(clusters=(cluster,), as_of=as_of, pin=pin)
    return publish_command(
        source=source,
        selection=selection,
        destination=destination,
        from_dir=from_dir,
        cue=cue,
        run_id=run_id,
        fmt=fmt,
    )


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
    )
