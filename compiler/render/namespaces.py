"""Namespaces and what lives in them: quotas, limits, network policies (k8s and Calico)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compiler.model import ClusterFacts
from compiler.render import Problem, Rendered, RenderResult, file_name, namespace_folder, quantity
from compiler.render.calico import calico_api

DEFAULT_DENY = "default-deny"


def render(facts: ClusterFacts, config: Mapping[str, Any], out: RenderResult) -> None:
    for ns, spec in sorted(config.get("namespaces", {}).items()):
        base = ("namespaces", ns)
        folder = namespace_folder(ns)
        metadata: dict[str, Any] = {"name": ns}
        if spec.get("labels"):
            metadata["labels"] = dict(spec["labels"])
        if spec.get("annotations"):
            metadata["annotations"] = dict(spec["annotations"])
        out.objects.append(
            Rendered(
                f"{folder}/namespace.yaml",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata},
                base,
            )
        )
        for name, hard in sorted(spec.get("quotas", {}).items()):
            obj = {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"hard": {k: quantity(v) for k, v in hard.items()}},
            }
            path = f"{folder}/{file_name('resourcequota', name)}"
            out.objects.append(Rendered(path, obj, (*base, "quotas", name)))
        if spec.get("limits"):
            out.objects.append(_limit_range(ns, spec["limits"], folder, base))
        _network_policies(facts, ns, spec, folder, out)


def _limit_range(
    ns: str, limits: Mapping[str, Any], folder: str, base: tuple[str | int, ...]
) -> Rendered:
    container: dict[str, Any] = {"type": "Container"}
    for kind, values in limits.items():
        container[kind] = {k: quantity(v) for k, v in values.items()}
    obj = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "limits", "namespace": ns},
        "spec": {"limits": [container]},
    }
    return Rendered(f"{folder}/limitrange.yaml", obj, (*base, "limits"))


def _network_policies(
    facts: ClusterFacts, ns: str, spec: Mapping[str, Any], folder: str, out: RenderResult
) -> None:
    base = ("namespaces", ns)
    policies = dict(spec.get("networkPolicies", {}))
    if spec.get("defaultDeny"):
        if DEFAULT_DENY in policies:
            out.problems.append(
                Problem(
                    (*base, "networkPolicies", DEFAULT_DENY),
                    "render.name-conflict",
                    f"defaultDeny renders a NetworkPolicy named {DEFAULT_DENY}; rename this one",
                )
            )
        else:
            policies[DEFAULT_DENY] = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for name, body in sorted(policies.items()):
        obj = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns},
            "spec": dict(body),
        }
        source = (
            (*base, "defaultDeny") if name == DEFAULT_DENY else (*base, "networkPolicies", name)
        )
        out.objects.append(Rendered(f"{folder}/{file_name('networkpolicy', name)}", obj, source))
    for name, body in sorted(spec.get("calicoPolicies", {}).items()):
        obj = {
            "apiVersion": calico_api(facts),
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns},
            "spec": dict(body),
        }
        path = f"{folder}/{file_name('calico-networkpolicy', name)}"
        out.objects.append(Rendered(path, obj, (*base, "calicoPolicies", name)))
