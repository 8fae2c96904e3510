"""The Kustomize tree as plain data: relative path -> bytes. Pure; `emit` writes it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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


def cluster_dir(name: str) -> str:
    return f"{CLUSTERS_DIR}/{file_name('', name, '')}"


def cluster_files(
    facts: ClusterFacts,
    config: Mapping[str, Any],
    objects: Sequence[Rendered],
    layers: Sequence[Layer],
) -> dict[str, bytes]:
    """Every file of `clusters/<cluster>/`, keyed by its path from the tree's root."""
    root = cluster_dir(facts.name)
    files = {f"{root}/{r.path}": dump_manifest(r.obj) for r in objects}
    files[f"{root}/kustomization.yaml"] = dump_manifest(kustomization(facts, objects))
    files[f"{root}/cluster.json"] = dump_json(cluster_parameters(facts))
    files[f"{root}/config-lock.json"] = dump_json(config_lock(facts, layers))
    for name, addon in sorted(config.get("addons", {}).items()):
        path = f"{root}/addons/{file_name('', name, '.json')}"
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
