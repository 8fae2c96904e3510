"""The namespace_metadata guard, called directly: Argo CD control keys in a namespace's
labels and annotations, and the PodSecurity admission labels."""

from __future__ import annotations

from typing import Any

import pytest

from compiler.model import ClusterFacts
from compiler.policy.guards import namespace_metadata
from compiler.policy.guards.base import GuardContext, GuardSettings
from compiler.policy.guards.registry import GUARDS

PSA = "pod-security.kubernetes.io/"


def context(env: str, **metadata: dict[str, str]) -> GuardContext:
    config = {"namespaces": {"payments": dict(metadata)}}
    facts = ClusterFacts("prod-eks-1", env, "https://c.example:6443")
    return GuardContext(facts, config, GuardSettings())


def found(env: str, **metadata: dict[str, str]) -> list[tuple[str, str, str]]:
    return [
        (f.rule, f.severity, ".".join(map(str, f.path[2:])))
        for f in namespace_metadata.check(context(env, **metadata))
    ]


# (id, env, labels and annotations, findings as (rule, severity, path below the namespace))
HOSTILE = [
    (
        "post-sync-hook-deletes-the-namespace",
        "prod",
        {"annotations": {"argocd.argoproj.io/hook": "PostSync",
                         "argocd.argoproj.io/hook-delete-policy": "HookSucceeded"}},
        [("ns-argocd-control-key", "error", "annotations.argocd.argoproj.io/hook"),
         ("ns-argocd-control-key", "error", "annotations.argocd.argoproj.io/hook-delete-policy")],
    ),
    (
        "force-replace-recreates-the-namespace",
        "dev",
        {"annotations": {"argocd.argoproj.io/sync-options": "Force=true,Replace=true"}},
        [("ns-argocd-control-key", "error", "annotations.argocd.argoproj.io/sync-options")],
    ),
    (
        "an-argocd-key-as-a-label",
        "dev",
        {"labels": {"argocd.argoproj.io/sync-wave": "-1"}},
        [("ns-argocd-key", "warning", "labels.argocd.argoproj.io/sync-wave")],
    ),
    (
        "another-argo-cd-instance-in-prod",
        "prod",
        {"labels": {"argocd.argoproj.io/managed-by": "team-argocd"},
         "annotations": {"argocd.argoproj.io/sync-options": "Prune=false"}},
        [("ns-argocd-key", "error", "labels.argocd.argoproj.io/managed-by"),
         ("ns-argocd-key", "error", "annotations.argocd.argoproj.io/sync-options")],
    ),
    (
        "tracking-label",
        "dev",
        {"labels": {"app.kubernetes.io/instance": "payments"}},
        [("ns-argocd-key", "warning", "labels.app.kubernetes.io/instance")],
    ),
    (
        "tracking-id-annotation",
        "dev",
        {"annotations": {"argocd.argoproj.io/tracking-id": "other:/Namespace:/payments"}},
        [("ns-argocd-control-key", "error", "annotations.argocd.argoproj.io/tracking-id")],
    ),
    (
        "privileged-in-prod",
        "prod",
        {"labels": {PSA + "enforce": "privileged", PSA + "enforce-version": "latest"}},
        [("ns-pod-security-privileged", "error", "labels.pod-security.kubernetes.io/enforce")],
    ),
    (
        "privileged-in-dev-warns",
        "dev",
        {"labels": {PSA + "enforce": "privileged"}},
        [("ns-pod-security-privileged", "warning", "labels.pod-security.kubernetes.io/enforce")],
    ),
    (
        "unknown-level",
        "dev",
        {"labels": {PSA + "warn": "Restricted"}},
        [("ns-pod-security-invalid", "error", "labels.pod-security.kubernetes.io/warn")],
    ),
    (
        "version-without-v",
        "dev",
        {"labels": {PSA + "enforce": "baseline", PSA + "enforce-version": "1.30"}},
        [("ns-pod-security-invalid", "error", "labels.pod-security.kubernetes.io/enforce-version")],
    ),
    (
        "version-with-a-patch",
        "prod",
        {"labels": {PSA + "audit-version": "v1.30.2"}},
        [("ns-pod-security-invalid", "error", "labels.pod-security.kubernetes.io/audit-version")],
    ),
    (
        "misspelt-key",
        "dev",
        {"labels": {PSA + "enforce_version": "latest"}},
        [("ns-pod-security-invalid", "error", "labels.pod-security.kubernetes.io/enforce_version")],
    ),
    (
        "psa-as-an-annotation",
        "dev",
        {"annotations": {PSA + "enforce": "restricted"}},
        [("ns-pod-security-invalid", "error", "annotations.pod-security.kubernetes.io/enforce")],
    ),
]  # fmt: skip

BENIGN = [
    ("restricted-pinned", "prod",
     {"labels": {PSA + "enforce": "restricted", PSA + "enforce-version": "v1.35"}}),
    ("baseline-enforced-privileged-warned", "prod",
     {"labels": {PSA + "enforce": "baseline", PSA + "warn": "privileged",
                 PSA + "audit": "restricted", PSA + "audit-version": "latest"}}),
    ("v1-0", "dev", {"labels": {PSA + "enforce-version": "v1.0"}}),
    ("other-app-labels", "prod",
     {"labels": {"app.kubernetes.io/name": "payments", "app.kubernetes.io/part-of": "shop"}}),
    ("a-look-alike-prefix", "prod",
     {"annotations": {"argocd.argoproj.io.example.com/hook": "x", "example.com/argocd": "y"}}),
    ("no-metadata", "prod", {}),
]  # fmt: skip


@pytest.mark.parametrize(("env", "metadata", "expected"), [c[1:] for c in HOSTILE],
                         ids=[c[0] for c in HOSTILE])  # fmt: skip
def test_hostile_metadata_is_reported(
    env: str, metadata: dict[str, Any], expected: list[tuple[str, str, str]]
) -> None:
    assert found(env, **metadata) == expected


@pytest.mark.parametrize(("env", "metadata"), [c[1:] for c in BENIGN], ids=[c[0] for c in BENIGN])
def test_a_benign_neighbour_passes(env: str, metadata: dict[str, Any]) -> None:
    assert found(env, **metadata) == []


def test_the_messages_name_the_cluster_the_path_and_the_fix() -> None:
    hook = {"argocd.argoproj.io/hook": "PostSync"}
    [finding] = namespace_metadata.check(context("prod", annotations=hook))
    assert finding.path == ("namespaces", "payments", "annotations", "argocd.argoproj.io/hook")
    assert finding.message.startswith(
        "cluster prod-eks-1: namespaces.payments.annotations.argocd.argoproj.io/hook makes "
        "the Namespace an Argo CD hook"
    )
    assert "remove the key" in finding.message
    recreate = {"argocd.argoproj.io/sync-options": "Force=true,Replace=true"}
    [finding] = namespace_metadata.check(context("prod", annotations=recreate))
    assert "delete and recreate the Namespace" in finding.message
    [finding] = namespace_metadata.check(context("prod", labels={PSA + "enforce": "strict"}))
    assert "has the level 'strict'" in finding.message
    assert "write privileged, baseline or restricted" in finding.message
    [finding] = namespace_metadata.check(context("prod", labels={PSA + "enforce": "privileged"}))
    assert "enforce baseline or restricted" in finding.message


def test_the_rules() -> None:
    assert [(r.id, r.severity, r.waivable) for r in namespace_metadata.RULES] == [
        ("ns-argocd-control-key", "error", False),
        ("ns-argocd-key", "error", True),
        ("ns-pod-security-privileged", "error", True),
        ("ns-pod-security-invalid", "error", False),
    ]
    assert namespace_metadata in GUARDS
