"""`watch`: poll the table, compile and publish what new versions or new clusters affect.

The checkpoint file records, per layer (pk), the version last published. A
poll reads the latest version of every layer the fleet uses and, when any moved,
compiles the fleet pinned to exactly the versions it saw and publishes it on one
rolling branch and pull request per base branch, updated by every later poll
(issue 16); only then it advances the checkpoint, atomically: a restart neither
repeats a version nor skips one.

A cluster whose compile finds violations does not block the others: it is
reported, left out of the publication (so it stays at its last published state,
the base branch's), and held in the checkpoint with the versions it failed at.
It is compiled again only when one of those versions moves.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.errors import CompilerError, InputError, UsageError
from compiler.layers import StackLoader
from compiler.model import cluster_pk, layer_name_from_pk, pk_from_layer_name
from compiler.project import Project
from compiler.report import names_in_brief
from compiler.sources import ConfigStore, Pin

MAX_BACKOFF = 600.0  # seconds between polls while an outside system keeps failing


@dataclass(frozen=True)
class Changes:
    clusters: list[str]  # affected, sorted
    seen: dict[str, int]  # pk -> latest version, every layer the fleet uses
    # cluster -> the versions of its layers (pk -> version): the whole fleet
    inputs: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_compile(self, held: Mapping[str, Mapping[str, int]]) -> list[str]:
        """The fleet, but a cluster held for violations only once its inputs moved."""
        return sorted(c for c, used in self.inputs.items() if held.get(c) != used)

    def pin(self) -> Pin:
        """Exactly the versions this poll saw (a newer one waits for the next poll)."""
        return Pin(versions={layer_name_from_pk(pk): v for pk, v in self.seen.items()})


def load_checkpoint(path: Path) -> dict[str, int]:
    return dict(_read_checkpoint(path).get("versions", {}))


def load_held(path: Path) -> dict[str, dict[str, int]]:
    """The clusters held back for violations, each with the versions it failed at."""
    return {c: dict(v) for c, v in _read_checkpoint(path).get("held", {}).items()}


def _read_checkpoint(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        versions, held = data["versions"], data.get("held", {})
        if not all(isinstance(k, str) and isinstance(v, int) for k, v in versions.items()):
            raise TypeError("versions must map pk to int")
        if not all(isinstance(v, dict) for v in held.values()):
            raise TypeError("held must map a cluster to its versions")
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise InputError(
            f"checkpoint {path} is not readable ({err}); move it away to start over"
        ) from None
    return {"versions": versions, "held": held}


def save_checkpoint(
    path: Path, versions: Mapping[str, int], held: Mapping[str, Mapping[str, int]] | None = None
) -> None:
    """Write-then-rename: a crash leaves the old checkpoint or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"versions": dict(sorted(versions.items()))}
    if held:
        record["held"] = {c: dict(sorted(v.items())) for c, v in sorted(held.items())}
    text = json.dumps(record, indent=2) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    Path(temporary).replace(path)


def poll(store: ConfigStore, project: Project, checkpoint: Mapping[str, int]) -> Changes:
    """The latest version of every layer the fleet uses, and the clusters whose moved."""
    seen, uses = fleet_uses(store, project)
    moved = {pk for pk, version in seen.items() if checkpoint.get(pk) != version}
    affected = sorted(c for c, pks in uses.items() if moved.intersection(pks))
    inputs = {c: {pk: seen[pk] for pk in pks if seen[pk]} for c, pks in uses.items()}
    return Changes(affected, {pk: v for pk, v in seen.items() if v}, inputs)


def fleet_uses(store: ConfigStore, project: Project) -> tuple[dict[str, int], dict[str, list[str]]]:
    """The latest version of every layer pk the fleet uses (0: none yet), and the pks
    each cluster's stack reads: what a changed layer affects (`watch`, `serve`)."""
    loader = StackLoader(store, project, Pin())
    seen: dict[str, int] = {}
    uses: dict[str, list[str]] = {}
    for cluster in store.list_clusters():
        record = store.read(cluster_pk(cluster), Pin())
        if record is None:
            continue  # listed, then gone: nothing to compile
        facts = loader.facts(record)
        pks = []
        for entry in project.stack:
            if entry.kind == "dynamodb":
                pk = pk_from_layer_name(entry.resolve(env=facts.env, cluster=facts.name))
                if pk not in seen:
                    latest = record if pk == record.pk else store.read(pk, Pin())
                    seen[pk] = latest.version if latest is not None else 0
                pks.append(pk)
        uses[cluster] = pks
    return seen, uses


@dataclass
class Watcher:
    """The loop, with its outside effects passed in (publish, sleep, log) so it can be tested."""

    store: ConfigStore
    project: Project
    checkpoint_path: Path
    # Compiles and publishes the clusters given; the ones it held back for violations,
    # or None when nothing could be published (the checkpoint then stays).
    publish: Callable[[Changes, list[str]], Sequence[str] | None]
    log: Callable[[str], None]
    interval: float
    stop: threading.Event
    # `watch --argocd-server`: Argo CD's reports acted on first; the table versions its
    # rollbacks wrote, which their own pull requests publish (not the rolling one).
    guard: Callable[[], Mapping[str, int]] | None = None

    def run(self, max_polls: int | None = None) -> int:
        if self.interval <= 0:
            raise UsageError("--interval must be a positive number of seconds")
        polls, wait = 0, self.interval
        while not self.stop.is_set() and (max_polls is None or polls < max_polls):
            polls += 1
            try:
                wait = self._once()
            except CompilerError as err:
                if err.exit_code != 3:  # not an outside system: it will not heal by waiting
                    raise
                wait = min(wait * 2, MAX_BACKOFF)
                self.log(f"poll {polls}: {err}; next poll in {wait:g} s")
            if max_polls is not None and polls >= max_polls:
                break
            self.stop.wait(wait)  # returns at once on SIGTERM/SIGINT
        return polls

    def _once(self) -> float:
        if self.guard is not None:
            try:
                reverted = self.guard()
            except CompilerError as err:
                if err.exit_code != 3:
                    raise
                # Argo CD out of reach must not hold back the table's changes.
                self.log(f"Argo CD: {err}; trying again at the next poll")
                reverted = {}
            if reverted:
                versions = {**load_checkpoint(self.checkpoint_path), **reverted}
                save_checkpoint(self.checkpoint_path, versions, load_held(self.checkpoint_path))
        checkpoint = load_checkpoint(self.checkpoint_path)
        changes = poll(self.store, self.project, checkpoint)
        if not changes.clusters:
            self.log("no new versions or clusters")
            return self.interval
        self.log(f"{len(changes.clusters)} cluster(s) affected: {names_in_brief(changes.clusters)}")
        held = load_held(self.checkpoint_path)
        names = changes.to_compile(held)
        waiting = sorted(set(held).intersection(changes.inputs).difference(names))
        if waiting:
            self.log(f"held until their inputs change: {', '.join(waiting)}")
        failed = self.publish(changes, names) if names else []
        if failed is not None:
            still = {c: held[c] for c in waiting}
            still.update({c: changes.inputs.get(c, {}) for c in failed})
            save_checkpoint(self.checkpoint_path, {**checkpoint, **changes.seen}, still)
        return self.interval
