"""`publish` and `rollback`: a compiled tree as a branch and a pull request on the Argo CD
repository. A rollback first records a revert in the table (new versions holding the old
content), then publishes the cluster on its own branch, labelled and titled as a rollback
(`compiler/publishing/rollback.py`); `rollback --clear` lets `watch`'s Argo CD guard act
on a cluster again."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from compiler.argocd.sentinel import clear
from compiler.errors import EXIT_FINDINGS, EXIT_OK, UsageError
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
from compiler.publishing.rollback import good_pin, guard_records, roll_back
from compiler.reversion import cluster_layers
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
    if selection.all_clusters and selection.as_of and from_dir is None:
        # The whole fleet owns every clusters/<c>: the fleet of that time would delete
        # the Applications of every cluster provisioned since. A return to older
        # versions is a rollback, which writes them as new versions and keeps the fleet.
        raise UsageError(
            "publish --all --as-of would remove from the Argo CD repository every cluster "
            "provisioned since that time; roll clusters back with `gitops-compiler rollback "
            "--cluster C --as-of T`, or compile the old fleet with `compile --all --as-of` "
            "to look at it"
        )
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
    last_known_good: bool,
    destination: Destination,
    from_dir: Path | None,
    cue: str | None,
    run_id: str | None,
    fmt: str,
) -> Outcome:
    """`--as-of TIME`, `--versions LAYER=N,...` or `--last-known-good` (one of them: the
    parser sees to it)."""
    current = steps.current().run
    run = current if run_id in (None, current.id) else Run(run_id)
    project = open_project(source)
    store = open_store(source, project)
    if last_known_good:
        good = guard_records(store, project)[0].require(cluster)
        print(
            f"{cluster}: last known good #{good.version}, revision {good.revision} "
            f"(recorded {good.recorded_at})",
            file=sys.stderr,
        )
        pin = good_pin(store, project, good)
    elif versions is not None:
        pin = Pin(versions=parse_versions(versions))
    else:
        pin = build_pin(Selection(as_of=as_of))
    rolled = roll_back(
        source, store, project, cluster, pin, destination, run=run, from_dir=from_dir, cue=cue
    )
    report_published(rolled.published, fmt)
    return _outcome(rolled.published)


def clear_command(*, source: SourceOptions, cluster: str) -> Outcome:
    """`rollback --clear C`: the Argo CD guard of `watch` acts on the cluster again."""
    project = open_project(source)
    store = open_store(source, project)
    cluster_layers(store, project, cluster)  # an unknown cluster is named, with close ones
    lkg, incidents = guard_records(store, project)
    cleared = clear(incidents, lkg, cluster, who=current_author(), now=datetime.now(UTC))
    if cleared is None:
        print(f"{cluster}: watch is not stopped on it: nothing to clear")
    else:
        print(f"{cluster}: cleared; watch --argocd-server acts on it again")
    return Outcome(EXIT_OK, clusters=(cluster,))


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
