"""The reserved-namespace guard, called directly: write access bound in kube-system and
its neighbours is refused; read-only bindings, and any binding elsewhere, pass."""

from __future__ import annotations

from typing import Any

import pytest

from compiler.model import ClusterFacts
from compiler.policy.guards import reserved
from compiler.policy.guards.base import GuardContext, GuardSettings

ROLES = {
    "reader": {"rules": [{"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["get", "list", "watch"]}]},
    "deployer": {"rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}]},
    "secret-reader": {"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]},
    "wildcard": {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]},
}  # fmt: skip


def context(namespace: str, binding: dict[str, Any], **settings: Any) -> GuardContext:
    config = {
        "roles": ROLES,
        "namespaces": {namespace: {"access": {"case": {**binding, "groups": ["team"]}}}},
    }
    facts = ClusterFacts("c", "prod", "https://c.example:6443")
    return GuardContext(facts, config, GuardSettings(**settings))


HOSTILE = [
    ("admin-in-kube-system", "kube-system", {"clusterRole": "admin"}, "clusterRole"),
    ("edit-in-argocd", "argocd", {"clusterRole": "edit"}, "clusterRole"),
    (
        "aggregated-edit",
        "calico-system",
        {"clusterRole": "system:aggregate-to-edit"},
        "clusterRole",
    ),
    ("unknown-cluster-role", "tigera-operator", {"clusterRole": "operator-role"}, "clusterRole"),
    ("writing-template", "kube-public", {"role": "deployer"}, "role"),
    ("wildcard-template", "kube-node-lease", {"role": "wildcard"}, "role"),
    ("secret-reading-template", "kube-system", {"role": "secret-reader"}, "role"),
]

BENIGN = [
    ("view-in-kube-system", "kube-system", {"clusterRole": "view"}),
    ("read-template-in-argocd", "argocd", {"role": "reader"}),
    ("admin-elsewhere", "payments", {"clusterRole": "admin"}),
    ("writing-template-elsewhere", "payments", {"role": "deployer"}),
    # refused everywhere by the CUE rules rbac-no-cluster-admin and rbac-no-system-roles
    ("cluster-admin-left-to-cue", "kube-system", {"clusterRole": "cluster-admin"}),
    ("system-role-left-to-cue", "kube-system", {"clusterRole": "system:node"}),
]


@pytest.mark.parametrize(("namespace", "binding", "field"), [c[1:] for c in HOSTILE],
                         ids=[c[0] for c in HOSTILE])  # fmt: skip
def test_write_access_in_a_reserved_namespace_is_refused(
    namespace: str, binding: dict[str, Any], field: str
) -> None:
    [finding] = reserved.check(context(namespace, binding))
    assert finding.rule == "reserved-namespace-write"
    assert finding.path == ("namespaces", namespace, "access", "case", field)
    assert f"reserved namespace {namespace}" in finding.message
    assert "cluster-admin in all but name" in finding.message


@pytest.mark.parametrize(("namespace", "binding"), [c[1:] for c in BENIGN],
                         ids=[c[0] for c in BENIGN])  # fmt: skip
def test_read_only_or_elsewhere_passes(namespace: str, binding: dict[str, Any]) -> None:
    assert list(reserved.check(context(namespace, binding))) == []


def test_the_reserved_list_comes_from_the_settings() -> None:
    binding = {"clusterRole": "admin"}
    assert list(reserved.check(context("platform", binding))) == []
    found = list(reserved.check(context("platform", binding, reserved_namespaces=("platform",))))
    assert [f.rule for f in found] == ["reserved-namespace-write"]
    assert list(reserved.check(context("kube-system", binding, reserved_namespaces=()))) == []


def test_the_rule_cannot_be_waived() -> None:
    assert [(r.id, r.severity, r.waivable) for r in reserved.RULES] == [
        ("reserved-namespace-write", "error", False)
    ]
