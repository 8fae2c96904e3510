"""Cluster-wide Calico objects: IP pools, global network policies, BGP and Felix singletons."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compiler.model import ClusterFacts
from compiler.render import Rendered, RenderResult, file_name

# The Calico API group a cluster serves (issue 19): `projectcalico.org/v3` with the Calico
# API server or Calico's native v3 CRDs, `crd.projectcalico.org/v1` where only the older
# storage CRDs are installed. The spec is the same in both (../shared/schemas/SOURCES.md).
CALICO_V3 = "projectcalico.org/v3"
CALICO_V1 = "crd.projectcalico.org/v1"
CALICO_APIS = (CALICO_V3, CALICO_V1)
CALICO_API = CALICO_V3  # the default


def calico_api(facts: ClusterFacts) -> str:
    """The apiVersion of this cluster's Calico objects (its fact `calicoAPI`, else the project's)."""
    return facts.calico_api or CALICO_API


def render(facts: ClusterFacts, config: Mapping[str, Any], out: RenderResult) -> None:
    calico = config.get("calico", {})
    for kind, key, prefix in (
        ("IPPool", "ipPools", "ippool"),
        ("GlobalNetworkPolicy", "globalNetworkPolicies", "globalnetworkpolicy"),
    ):
        for name, spec in sorted(calico.get(key, {}).items()):
            obj = {
                "apiVersion": calico_api(facts),
                "kind": kind,
                "metadata": {"name": name},
                "spec": spec,
            }
            path = f"calico/{file_name(prefix, name)}"
            out.objects.append(Rendered(path, obj, ("calico", key, name)))
    for kind, key in (
        ("BGPConfiguration", "bgpConfiguration"),
        ("FelixConfiguration", "felixConfiguration"),
    ):
        spec = calico.get(key)
        if spec:  # a singleton, named `default` as Calico expects, only when configured
            obj = {
                "apiVersion": calico_api(facts),
                "kind": kind,
                "metadata": {"name": "default"},
                "spec": spec,
            }
            out.objects.append(Rendered(f"calico/{kind.lower()}.yaml", obj, ("calico", key)))
