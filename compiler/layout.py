"""The Kustomize tree's layout, both ways: files from compiled clusters (relative path
-> bytes, pure; `emit` writes them), and a path of a tree read back as what it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from compiler.model import ClusterFacts, Layer
from compiler.project import ArgoCDSettings
from compiler.render import Rendered, file_name
from compiler.render.argocd import (
    LABEL_PREFIX,
    addon_parameters,
    application_sets,
    cluster_parameters,
)
from compiler.yamlio import dump_json, dump_manifest

KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"
SHARED_DIR = "applicationsets"  # the ApplicationSets every cluster shares
CLUSTERS_DIR = "clusters"  # one directory per cluster
TREE_ROOTS = (SHARED_DIR, CLUSTERS_DIR)  # what a whole-fleet compile owns
ADDONS_DIR = "addons"  # in a cluster's directory: one file per add-on
CLUSTER_FILE = "cluster.json"  # the cluster's own facts, for the bootstrap ApplicationSet
LOCK_FILE = "config-lock.json"  # the layer versions the cluster was compiled from
KUSTOMIZATION_FILE = "kustomization.yaml"
# Files that only restate others: the resource list and the versions.
BOOKKEEPING = frozenset({KUSTOMIZATION_FILE, LOCK_FILE})

TreeKind = Literal["applicationset", "cluster", "addon", "bookkeeping", "object", "other"]


def cluster_dir(name: str) -> str:
    return f"{CLUSTERS_DIR}/{file_name('', name, '')}"


def owned_directories(clusters: Iterable[str], *, whole_fleet: bool = False) -> list[str]:
    """The directories a compile of `clusters` replaces whole when written: every cluster
    directory for the whole fleet (stale clusters go), else only the named ones."""
    if whole_fleet:
        return list(TREE_ROOTS)
    return [SHARED_DIR, *(cluster_dir(name) for name in clusters)]


@dataclass(frozen=True)
class TreePath:
    """A path from the tree's root, read back: whose file it is and what it holds."""

    path: str
    cluster: str  # the directory name under clusters/; "" for a file outside one
    kind: TreeKind
    # The add-on (`addon`), the cluster (`cluster`), the file name (`bookkeeping`),
    # else the path below the cluster's or the ApplicationSets' directory.
    name: str

    @property
    def directory(self) -> str:
        """`clusters/<cluster>`, or "" for a file outside a cluster's directory."""
        return f"{CLUSTERS_DIR}/{self.cluster}" if self.cluster else ""


def read_path(path: str) -> TreePath:
    """What a path of a compiled tree is, from the path alone (the inverse of the writers
    below: `cluster_files` and `shared_files`)."""
    parts = path.split("/")
    if parts[0] == CLUSTERS_DIR and len(parts) > 2:
        cluster, inside = parts[1], parts[2:]
        if inside == [CLUSTER_FILE]:
            return TreePath(path, cluster, "cluster", cluster)
        if len(inside) == 1 and inside[0] in BOOKKEEPING:
            return TreePath(path, cluster, "bookkeeping", inside[0])
        if len(inside) == 2 and inside[0] == ADDONS_DIR:
            return TreePath(path, cluster, "addon", inside[1].removesuffix(".json"))
        return TreePath(path, cluster, "object", "/".join(inside))
    if parts[0] == SHARED_DIR and len(parts) > 1:
        return TreePath(path, "", "applicationset", "/".join(parts[1:]))
    return TreePath(path, "", "other", path)


def cluster_files(
    facts: ClusterFacts,
    config: Mapping[str, Any],
    objects: Sequence[Rendered],
    layers: Sequence[Layer],
) -> dict[str, bytes]:
    """Every file of `clusters/<cluster>/`, keyed by its path from the tree's root."""
    root = cluster_dir(facts.name)
    files = {f"{root}/{r.path}": dump_manifest(r.obj) for r in objects}
    files[f"{root}/{KUSTOMIZATION_FILE}"] = dump_manifest(kustomization(facts, objects))
    files[f"{root}/{CLUSTER_FILE}"] = dump_json(cluster_parameters(facts))
    files[f"{root}/{LOCK_FILE}"] = dump_json(config_lock(facts, layers))
    for name, addon in sorted(config.get("addons", {}).items()):
        path = f"{root}/{ADDONS_DIR}/{file_name('', name, '.json')}"
        files[path] = dump_json(addon_parameters(facts, name, addon))
    return files


def kustomization(facts: ClusterFacts, objects: Sequence[Rendered]) -> dict[str, Any]:
    pairs = {f"{LABEL_PREFIX}/cluster": facts.name, f"{LABEL_PREFIX}/env": facts.env}
    if facts.region:
        pairs[f"{LABEL_PREFIX}/region"] = facts.region
    return {
        "apiVersion": KUSTOMIZE_API,
        "kind": "Kustomization",
        # `labels` without selectors: commonLabels would also rewrite the
        # podSelectors of NetworkPolicies and change what they select.
        "labels": [{"includeSelectors": False, "pairs": pairs}],
        "resources": sorted(r.path for r in objects),
    }


def config_lock(facts: ClusterFacts, layers: Sequence[Layer]) -> dict[str, Any]:
    """The exact layer versions (and overlay file hashes) this tree was compiled from."""
    return {
        "cluster": facts.name,
        "layers": [{"layer": layer.ref.layer, **layer.lock} for layer in layers],
    }


def shared_files(settings: ArgoCDSettings) -> dict[str, bytes]:
    return {
        f"{SHARED_DIR}/{name}.yaml": dump_manifest(obj)
        for name, obj in sorted(application_sets(settings).items())
    }
