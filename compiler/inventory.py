"""The fleet as the table holds it now: every cluster with its env, region and the
versions of the table layers it reads (`gitops-compiler clusters list`, issue 17 item 10:
a wrong `--cluster` had no command to list the right names)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from compiler.layers import StackLoader
from compiler.model import cluster_pk, pk_from_layer_name
from compiler.project import Project
from compiler.sources import ConfigStore, Pin


@dataclass(frozen=True)
class FleetEntry:
    name: str
    env: str
    region: str
    # (layer, version) in stack order; None: an optional layer with no version yet.
    layers: Sequence[tuple[str, int | None]]

    def as_record(self) -> dict[str, object]:
        return {
            "name": self.name,
            "env": self.env,
            "region": self.region,
            "layers": [{"layer": layer, "version": version} for layer, version in self.layers],
        }


def list_fleet(store: ConfigStore, project: Project) -> list[FleetEntry]:
    """Every cluster whose latest record is not a tombstone, by name; a layer that
    many clusters share (defaults, env/prod) is read once."""
    loader = StackLoader(store, project, Pin())
    latest: dict[str, int | None] = {}
    entries = []
    for name in store.list_clusters():
        record = store.read(cluster_pk(name), Pin())
        if record is None:  # retired or deleted between the listing and the read
            continue
        facts = loader.facts(record)
        layers = []
        for entry in project.stack:
            if entry.kind != "dynamodb":
                continue
            layer = entry.resolve(env=facts.env, cluster=facts.name)
            if layer not in latest:
                found = store.read(pk_from_layer_name(layer), Pin())
                latest[layer] = found.version if found is not None else None
            layers.append((layer, latest[layer]))
        entries.append(FleetEntry(facts.name, facts.env, facts.region, tuple(layers)))
    return entries


def format_fleet(entries: Sequence[FleetEntry]) -> str:
    """A table for people: name, env, region, then `layer@version` in stack order."""
    if not entries:
        return "no clusters in the config table (seed it: gitops-compiler config seed examples)\n"
    rows = [("CLUSTER", "ENV", "REGION", "LAYERS")]
    for e in entries:
        shown = " ".join(f"{layer}@{'-' if v is None else v}" for layer, v in e.layers)
        rows.append((e.name, e.env, e.region, shown))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + f"  {row[3]}\n"
        for row in rows
    )
