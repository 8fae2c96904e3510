"""Who set what in a compiled tree: object fields mapped back to the layers of the merge.

The diff asks, for a file and a field of the new tree, which layer set it; this
answers from the compile that produced the file (its rendered objects and merge
provenance), the same way findings are blamed (`where_set`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from compiler.layout import cluster_dir
from compiler.merge import MergeResult
from compiler.model import DocPath, LayerRef
from compiler.pipeline import CompiledCluster
from compiler.policy import where_set
from compiler.provenance import is_live
from compiler.render import Rendered, dsl_home, dsl_path


class ConfigBlame:
    """A `compiler.publishing.treediff.Blame` over the clusters of one compile."""

    def __init__(self, clusters: Iterable[CompiledCluster]) -> None:
        self._clusters: dict[str, CompiledCluster] = {}
        self._rendered: dict[str, Rendered] = {}
        for cluster in clusters:
            root = cluster_dir(cluster.facts.name)
            self._clusters[root] = cluster
            for rendered in cluster.objects:
                self._rendered[f"{root}/{rendered.path}"] = rendered

    def field(self, file: str, obj: Mapping[str, Any], path: DocPath) -> str:
        cluster = self._cluster(file)
        if cluster is None:
            return ""
        rendered = self._rendered.get(file)
        if rendered is not None:
            return _blame(cluster.merged, dsl_path(str(obj.get("kind")), rendered.source, path))
        if file.endswith("/cluster.json"):
            return self._record(cluster)
        if "/addons/" in file:
            addon = str(obj.get("addon", ""))
            if path and path[0] in cluster.merged.value.get("addons", {}).get(addon, {}):
                return _blame(cluster.merged, ("addons", addon, *path))
            if path and path[0] == "values":  # always written, `{}` when the DSL has none
                return _blame(cluster.merged, ("addons", addon))
            return self._record(cluster)  # the cluster's own facts (name, server, env)
        return ""

    def entry(self, file: str, obj: Mapping[str, Any], *, removed: bool) -> str:
        cluster = self._cluster(file)
        if cluster is None:
            return ""
        if removed:
            home = dsl_home(obj)
            return deleted_by(cluster.merged, home) if home else ""
        rendered = self._rendered.get(file)
        if rendered is not None:
            return _entry_blame(cluster.merged, rendered.source)
        if "/addons/" in file:
            return _entry_blame(cluster.merged, ("addons", str(obj.get("addon", ""))))
        return self._record(cluster)

    def _cluster(self, file: str) -> CompiledCluster | None:
        root = "/".join(file.split("/")[:2])
        return self._clusters.get(root)

    @staticmethod
    def _record(cluster: CompiledCluster) -> str:
        """The cluster's record: its facts (`cluster` attribute) live beside its config."""
        wanted = f"cluster/{cluster.facts.name}"
        for layer in cluster.input.layers:
            if layer.ref.layer == wanted:
                return layer.ref.describe()
        return ""


def _blame(merged: MergeResult, path: DocPath) -> str:
    """The layer that set a path; for a path that is gone, the layer that deleted it."""
    if is_live(merged.value, path):
        return where_set(merged, path)
    return deleted_by(merged, path) or where_set(merged, path)


def _entry_blame(merged: MergeResult, path: DocPath) -> str:
    """The layers that built a DSL entry, each once, at its first line (where the entry
    starts in a file), highest precedence first."""
    first: dict[LayerRef, int | None] = {}
    for prov in merged.layers_under(path):
        line = first.get(prov.ref, prov.line)
        first[prov.ref] = min(line, prov.line) if line and prov.line else line or prov.line
    if not first:
        return where_set(merged, path)
    shown = [ref.describe(line) for ref, line in reversed(first.items())]
    return ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")


def deleted_by(merged: MergeResult, path: DocPath) -> str:
    """The layer whose `null` removed `path` (or an ancestor of it); "" if none did."""
    for n in range(len(path), 0, -1):
        history = merged.history.get(path[:n])
        if history and history[-1].deleted:
            return history[-1].provenance.describe()
    return ""
