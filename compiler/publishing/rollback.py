"""A rollback, for `rollback` and for `watch`'s Argo CD guard: the revert recorded in the
table (new versions holding the old content, `compiler/reversion.py`), then the cluster
published on its own branch, labelled and titled as a rollback. A dry run writes
nothing and compiles the old versions.

`--last-known-good` goes to the versions of the cluster's latest good state, as Argo CD
reported it (`compiler/argocd/lastgood.py`): the same path as `--versions`, with those.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

from compiler.argocd.incidents import Incidents
from compiler.argocd.lastgood import GoodState, LastKnownGood
from compiler.errors import UsageError
from compiler.operations import steps
from compiler.operations.trace import Run
from compiler.options import Destination, Selection, SourceOptions, current_author
from compiler.project import Project
from compiler.publishing.publication import Published, build_publication, publish_tree
from compiler.report import names_in_brief
from compiler.reversion import (
    cluster_layers,
    clusters_reached,
    pin_of,
    plan_moves,
    write_reverts,
)
from compiler.sources import ConfigStore, Pin


@dataclass(frozen=True)
class RolledBack:
    published: Published
    written: dict[str, int]  # pk -> the new version holding the old content


def guard_records(store: ConfigStore, project: Project) -> tuple[LastKnownGood, Incidents]:
    """The cluster's good states and incidents live in the config table itself."""
    from compiler.sources.dynamodb import DynamoDBStore

    if not isinstance(store, DynamoDBStore):
        raise UsageError(
            "the last known good is recorded in the config table: use --source dynamodb"
        )
    lkg = LastKnownGood(
        store.table, region=project.region, endpoint_url=store.endpoint_url, client=store.client
    )
    incidents = Incidents(
        store.table, region=project.region, endpoint_url=store.endpoint_url, client=store.client
    )
    return lkg, incidents


def good_pin(store: ConfigStore, project: Project, good: GoodState) -> Pin:
    """The good state's versions of the layers the cluster reads now (a layer it no
    longer reads is not brought back; overlays are in git)."""
    layers = cluster_layers(store, project, good.cluster)
    return Pin(versions={layer: v for layer, v in good.pins().items() if layer in layers})


def roll_back(
    source: SourceOptions,
    store: ConfigStore,
    project: Project,
    cluster: str,
    pin: Pin,
    destination: Destination,
    *,
    run: Run,
    from_dir: Path | None = None,
    cue: str | None = None,
) -> RolledBack:
    moves = plan_moves(store, project, cluster, pin)
    reverts = [m.describe() for m in moves]
    clusters = tuple(clusters_reached(store, project, cluster, moves))
    if len(clusters) > 1:
        shared = sorted({m.layer for m in moves} - {f"cluster/{cluster}"})
        print(
            f"{', '.join(shared)} is read by {len(clusters)} clusters: the rollback changes "
            f"and publishes them all ({names_in_brief(clusters)})",
            file=sys.stderr,
        )
    selection = Selection(clusters=clusters)
    written: dict[str, int] = {}
    if not moves:
        print(f"{cluster} reads this content already: nothing to revert", file=sys.stderr)
    elif destination.dry_run:
        selection = Selection(clusters=clusters, pin=pin_of(moves))
    else:
        # Every cluster it reaches compiled from the target versions first: a finding
        # stops the rollback before the table changes, not after, with no PR to show it.
        checked = build_publication(
            source, Selection(clusters=clusters, pin=pin_of(moves)), from_dir=from_dir, cue=cue
        )
        if checked.publication is None:
            return RolledBack(Published(run, checked.compiled, violations=checked.violations), {})
        with steps.step("dynamodb", cluster=cluster, action="rollback") as wrote:
            versions = write_reverts(
                store, moves, author=current_author(), trace_id=run.trace("git")
            )
            reverts = [f"{r} as @{w.version}" for r, w in zip(reverts, versions, strict=True)]
            written = {w.pk: w.version for w in versions}
            wrote["reverts"] = reverts
        for line in reverts:
            print(f"reverted {line}", file=sys.stderr)
    published = publish_tree(
        source,
        selection,
        dataclasses.replace(destination, rollback=True, reverts=tuple(reverts)),
        run=run,
        from_dir=from_dir,
        cue=cue,
    )
    return RolledBack(published, written)
