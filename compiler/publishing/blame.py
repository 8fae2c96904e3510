"""Who set what in a compiled tree: object fields mapped back to the layers of the merge.

The diff asks, for a file and a field of the new tree, which layer set it; this
answers from the compile that produced the file (its rendered objects and merge
provenance), with the same blame as findings (`compiler.provenance`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from compiler.layout import cluster_dir, read_path
from compiler.model import DocPath, cluster_pk, layer_name_from_pk
from compiler.pipeline import CompiledCluster
from compiler.provenance import deleted_by, entry_blame, field_blame
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
            kind = str(obj.get("kind"))
            return field_blame(cluster.merged, dsl_path(kind, rendered.source, path))
        tree_kind = read_path(file).kind
        if tree_kind == "cluster":
            return self._record(cluster)
        if tree_kind == "addon":
            addon = str(obj.get("addon", ""))
            if path and path[0] in cluster.merged.value.get("addons", {}).get(addon, {}):
                return field_blame(cluster.merged, ("addons", addon, *path))
            if path and path[0] == "values":  # always written, `{}` when the DSL has none
                return field_blame(cluster.merged, ("addons", addon))
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
            return entry_blame(cluster.merged, rendered.source)
        if read_path(file).kind == "addon":
            return entry_blame(cluster.merged, ("addons", str(obj.get("addon", ""))))
        return self._record(cluster)

    def _cluster(self, file: str) -> CompiledCluster | None:
        return self._clusters.get(read_path(file).directory)

    @staticmethod
    def _record(cluster: CompiledCluster) -> str:
        """The cluster's record: its facts (`cluster` attribute) live beside its config."""
        wanted = layer_name_from_pk(cluster_pk(cluster.facts.name))
        for layer in cluster.input.layers:
            if layer.ref.layer == wanted:
                return layer.ref.describe()
        return ""
