"""Reserved namespaces: nothing but read-only access is bound in them.

`kube-system` and its neighbours (the project file's `policy.reservedNamespaces`,
Argo CD's namespace among them) hold the service accounts of the control plane,
the CNI and the GitOps controller, and their tokens. Whoever may create a pod or
read a secret there runs as one of those accounts: `admin` or `edit` in
`kube-system` is cluster-admin in all but name. A binding there must be
read-only: `view`, or a template whose rules only get, list or watch resources
that reach no sensitive grant (`sensitive_grants`).

`cluster-admin` is left to the CUE rule `rbac-no-cluster-admin`, which refuses it
in every namespace.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from compiler.model import DocPath
from compiler.policy.guards.base import GuardContext, GuardFinding, Rule
from compiler.policy.guards.rbac import template_reaches_sensitive

RULE_ID = "reserved-namespace-write"

RULES: tuple[Rule, ...] = (
    Rule(
        id=RULE_ID,
        severity="error",
        what="A binding in a reserved namespace (kube-system, kube-public, kube-node-lease, "
        "Argo CD's, calico-system, tigera-operator) grants more than read access.",
        why="the control plane's, the CNI's and Argo CD's service accounts live there: "
        "creating a pod or reading a secret in such a namespace runs as one of them, so "
        "admin or edit in kube-system is cluster-admin in all but name",
        reference="https://kubernetes.io/docs/concepts/security/rbac-good-practices/"
        "#workload-creation",
        fix="namespaces: {kube-system: {access: {auditors: {clusterRole: view, "
        "groups: [auditors]}}}}",
        waivable=False,
    ),
)

READ_VERBS = frozenset({"get", "list", "watch"})
# ClusterRoles known to be read-only; anything else cannot be shown to be.
READ_ONLY_CLUSTER_ROLES = frozenset({"view", "system:aggregate-to-view"})
WRITE_CLUSTER_ROLES = frozenset(
    {"admin", "edit", "system:aggregate-to-admin", "system:aggregate-to-edit"}
)


def _cluster_role_fault(name: str) -> str | None:
    if name in READ_ONLY_CLUSTER_ROLES or name == "cluster-admin":
        return None  # read-only, or refused everywhere by rbac-no-cluster-admin
    if name.startswith("system:") and not name.startswith("system:aggregate-to-"):
        return None  # refused everywhere by rbac-no-system-roles
    if name in WRITE_CLUSTER_ROLES:
        return f"ClusterRole {name} creates pods and reads secrets there"
    return f"ClusterRole {name} is not known to be read-only (only view is)"


def _template_fault(name: str, roles: Mapping[str, Any]) -> str | None:
    rules = [r for r in (roles.get(name) or {}).get("rules") or [] if isinstance(r, Mapping)]
    writes = sorted({v for r in rules for v in r.get("verbs") or [] if v not in READ_VERBS})
    if writes:
        return f"role template {name} grants {', '.join(writes)}"
    sensitive = template_reaches_sensitive(rules)
    if sensitive:
        return f"role template {name} {sensitive[0].what}"
    return None


def _message(namespace: str, binding: str, fault: str) -> str:
    return (
        f"binding {binding} in reserved namespace {namespace}: {fault}; the service "
        f"accounts of {namespace} belong to the cluster's own components, and whoever may "
        "create a pod or read a secret there acts as them (admin in kube-system is "
        "cluster-admin in all but name); bind view or a get/list/watch template instead"
    )


def check(context: GuardContext) -> Iterator[GuardFinding]:
    reserved = set(context.settings.reserved_namespaces)
    roles = context.config.get("roles") or {}
    for namespace, spec in (context.config.get("namespaces") or {}).items():
        if namespace not in reserved or not isinstance(spec, Mapping):
            continue
        for binding, access in (spec.get("access") or {}).items():
            if "clusterRole" in access:
                field, fault = "clusterRole", _cluster_role_fault(access["clusterRole"])
            else:
                field, fault = "role", _template_fault(access.get("role", ""), roles)
            if fault is not None:
                path: DocPath = ("namespaces", namespace, "access", binding, field)
                yield GuardFinding(path, RULE_ID, _message(namespace, binding, fault))
