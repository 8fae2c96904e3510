"""`ConfigBlame`: a file and a field of a compiled tree, back to the layer that set it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from compiler.layers import ClusterInput
from compiler.layout import cluster_files
from compiler.merge import merge_layers
from compiler.model import ClusterFacts, Layer, LayerRef
from compiler.pipeline import CompiledCluster
from compiler.publishing.blame import ConfigBlame

FACTS = ClusterFacts(name="c1", env="dev", server="https://c1.example.internal:6443")
ADDON = {
    "chart": "ingress-nginx",
    "version": "4.11.2",
    "namespace": "ingress-nginx",
    "repoURL": "https://charts.example.com",
}


def layer(name: str, doc: Mapping[str, Any], version: int = 1) -> Layer:
    ref = LayerRef(layer=name, source="dynamodb", key=f"{name}/v#{version:010d}", version=version)
    return Layer(ref=ref, document=doc)


def compiled(config: Mapping[str, Any]) -> CompiledCluster:
    layers = (layer("defaults", config), layer("cluster/c1", {}, version=3))
    merged = merge_layers(layers)
    files = cluster_files(FACTS, merged.value, (), layers)
    return CompiledCluster(FACTS, ClusterInput(FACTS, layers), merged, (), files)


def test_the_record_and_add_ons_are_told_apart_by_their_place_in_the_tree() -> None:
    # An add-on named like the record file is still an add-on.
    cluster = compiled({"addons": {"cluster": ADDON, "ingress": ADDON}})
    blame = ConfigBlame([cluster])
    record = "dynamodb:cluster/c1/v#0000000003@3"
    defaults = "dynamodb:defaults/v#0000000001@1"
    for addon in ("cluster", "ingress"):
        file = f"clusters/c1/addons/{addon}.json"
        obj = json.loads(cluster.files[file])
        assert blame.field(file, obj, ("chart",)) == defaults
        assert blame.field(file, obj, ("cluster", "name")) == record
        assert blame.entry(file, obj, removed=False) == defaults
    facts = json.loads(cluster.files["clusters/c1/cluster.json"])
    assert blame.field("clusters/c1/cluster.json", facts, ("server",)) == record
    assert blame.entry("clusters/c1/cluster.json", facts, removed=False) == record


def test_files_of_other_clusters_and_the_fleet_have_no_blame() -> None:
    blame = ConfigBlame([compiled({"addons": {"ingress": ADDON}})])
    assert blame.field("clusters/c2/cluster.json", {}, ("server",)) == ""
    assert blame.entry("applicationsets/addons.yaml", {}, removed=False) == ""
    assert blame.field("clusters/c1/kustomization.yaml", {}, ("resources",)) == ""
