"""Cluster-wide Calico objects: IP pools, global network policies, BGP and Felix singletons."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compiler.model import ClusterFacts
from compiler.render import Rendered, RenderResult, file_name

CALICO_API = "projectcalico.org/v3"


def render(facts: ClusterFacts, config: Mapping[str, Any], out: RenderResult) -> None:
    calico = config.get("calico", {})
    for kind, key, prefix in (
        ("IPPool", "ipPools", "ippool"),
        ("GlobalNetworkPolicy", "globalNetworkPolicies", "globalnetworkpolicy"),
    ):
        for name, spec in sorted(calico.get(key, {}).items()):
            obj = {"apiVersion": CALICO_API, "kind": kind, "metadata": {"name": name}, "spec": spec}
            path = f"calico/{file_name(prefix, name)}"
            out.objects.append(Rendered(path, obj, ("calico", key, name)))
    for kind, key in (
        ("BGPConfiguration", "bgpConfiguration"),
        ("FelixConfiguration", "felixConfiguration"),
    ):
        spec = calico.get(key)
        if spec:  # a singleton, named `default` as Calico expects, only when configured
            obj = {
                "apiVersion": CALICO_API,
                "kind": kind,
                "metadata": {"name": "default"},
                "spec": spec,
            }
            out.objects.append(Rendered(f"calico/{kind.lower()}.yaml", obj, ("calico", key)))
