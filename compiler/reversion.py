"""Rollback as a revert recorded in the table (issue 17).

A rollback writes, for every layer it moves, a new version whose content is the
target version's. The newest version is then the good one, so a later `publish
--all` or `watch` keeps it instead of proposing the version rolled back from
again; the history keeps both, and the comment names the trace id of the PR.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from compiler.errors import InputError, UsageError
from compiler.layers import StackLoader, clusters_reading
from compiler.model import LayerVersion, cluster_pk, pk_from_layer_name
from compiler.project import Project
from compiler.sources import ConfigStore, Pin


@dataclass(frozen=True)
class Move:
    """One layer going back: from the version read now to the target's content."""

    layer: str
    current: LayerVersion
    target: LayerVersion

    def describe(self) -> str:
        return f"{self.layer}@{self.current.version} to {self.layer}@{self.target.version}"


def unknown_cluster(store: ConfigStore, name: str) -> InputError:
    """`no cluster X`, with the closest names the table has (a typo is the usual cause)."""
    known = store.list_clusters()
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = (
        f"; did you mean {', '.join(close)}?"
        if close
        else "; `gitops-compiler clusters list` shows them"
        if known
        else "; the table has no clusters (seed it: `gitops-compiler config seed examples`)"
    )
    return InputError(f"no cluster {name!r} in the config table{hint}")


def cluster_layers(store: ConfigStore, project: Project, cluster: str) -> list[str]:
    """The table layers the cluster reads now, in stack order (overlays are in git)."""
    record = store.read(cluster_pk(cluster), Pin())
    if record is None:
        raise unknown_cluster(store, cluster)
    facts = StackLoader(store, project, Pin()).facts(record)
    return [
        entry.resolve(env=facts.env, cluster=facts.name)
        for entry in project.stack
        if entry.kind == "dynamodb"
    ]


def clusters_reached(
    store: ConfigStore, project: Project, cluster: str, moves: Sequence[Move]
) -> list[str]:
    """The clusters a rollback of `cluster` changes: itself, and every cluster that reads
    a shared layer it moves (defaults, env/<env>). The revert is a new version of that
    layer, so it reaches them all; their trees are published with it, never left to
    drift into the next fleet-wide publish unreviewed."""
    shared = {m.layer for m in moves} - {f"cluster/{cluster}"}
    if not shared:
        return [cluster]
    return sorted({cluster, *clusters_reading(store, project, shared)})


def plan_moves(store: ConfigStore, project: Project, cluster: str, pin: Pin) -> list[Move]:
    """The layers `pin` moves: `--versions` names only layers the cluster reads and
    versions that exist; `--as-of` moves every layer that changed since. A layer whose
    latest version holds the target's content already does not move."""
    layers = cluster_layers(store, project, cluster)
    for layer in pin.versions:
        if layer not in layers:
            raise UsageError(
                f"--versions {layer}={pin.versions[layer]}: cluster {cluster} does not read "
                f"layer {layer}; it reads {', '.join(layers)}"
            )
    moves: list[Move] = []
    for layer in layers:
        pk = pk_from_layer_name(layer)
        current = store.read(pk, Pin())
        if current is None:
            continue
        target: LayerVersion | None
        if layer in pin.versions:
            target = _existing(store, layer, pin.versions[layer])
        elif pin.as_of is not None:
            target = store.read(pk, Pin(as_of=pin.as_of))
            if target is None:
                if layer == f"cluster/{cluster}":
                    raise UsageError(
                        f"--as-of {pin.as_of.isoformat()}: cluster {cluster} had no record yet"
                    )
                continue  # the layer is newer than the time: nothing older to return to
        else:
            continue
        if target.version != current.version and not _same_content(current, target):
            moves.append(Move(layer, current, target))
    return moves


def _same_content(one: LayerVersion, other: LayerVersion) -> bool:
    """A revert already holds the target's content: going back again would only add a
    version (a second `rollback --last-known-good` changes nothing)."""
    return (one.config, one.cluster, one.retired) == (other.config, other.cluster, other.retired)


def _existing(store: ConfigStore, layer: str, version: int) -> LayerVersion:
    pk = pk_from_layer_name(layer)
    found = store.read(pk, Pin(versions={layer: version}))
    if found is not None:
        return found
    numbers = sorted(v.version for v in store.history(pk))
    raise UsageError(
        f"--versions {layer}={version}: {layer} has no version {version}; "
        f"it has {_ranges(numbers) or 'no versions'}"
    )


def _ranges(numbers: Sequence[int]) -> str:
    """`1-3, 5`: the versions that exist, short even for a long history."""
    parts: list[str] = []
    for n in numbers:
        if parts and parts[-1].split("-")[-1] == str(n - 1):
            parts[-1] = f"{parts[-1].split('-')[0]}-{n}"
        else:
            parts.append(str(n))
    return ", ".join(parts)


def write_reverts(
    store: ConfigStore, moves: Sequence[Move], *, author: str, trace_id: str
) -> list[LayerVersion]:
    """One new version per move, holding the target's content and facts."""
    written = []
    for move in moves:
        written.append(
            store.put(
                move.current.pk,
                move.target.config,
                cluster=move.target.cluster,
                retired=move.target.retired,
                author=author,
                comment=f"rollback of {move.describe()} (trace {trace_id})",
            )
        )
    return written


def pin_of(moves: Sequence[Move]) -> Pin:
    """The versions a dry run compiles from: the targets themselves (nothing is written)."""
    versions: Mapping[str, int] = {m.layer: m.target.version for m in moves}
    return Pin(versions=dict(versions))
