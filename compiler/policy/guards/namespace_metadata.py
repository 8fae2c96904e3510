"""Namespace labels and annotations as Argo CD and the API server read them.

A Namespace's `labels` and `annotations` are the one place where the DSL writes
metadata of its own choosing on an emitted object (every other object's metadata is
its name and namespace; kustomize adds the compiler's `gitops-compiler.io/*` labels).
Two readers act on what they find there:

- Argo CD, which syncs the tree, takes every `argocd.argoproj.io/` key as an
  instruction for the object: `hook: PostSync` with `hook-delete-policy:
  HookSucceeded` makes the Namespace a hook that Argo CD deletes once it succeeded,
  `sync-options: Force=true,Replace=true` deletes and recreates it (with everything
  in it), `sync-options: Prune=false`, `compare-options` or `tracking-id` change what
  Argo CD prunes, compares or believes it owns. `app.kubernetes.io/instance` is its
  tracking label (the default tracking method before Argo CD 3.0): a value there can
  make another Application own, or prune, the Namespace. The compiler sets the one
  sync option it means itself (`replaceOnSync`, compiler/argocd/immutable.py); the
  config never does.
- the API server's PodSecurity admission, which reads the
  `pod-security.kubernetes.io/<mode>` and `<mode>-version` labels (mode: enforce,
  audit, warn). A level other than privileged, baseline or restricted, or a version
  other than `latest` or `v1.<minor>`, makes it refuse the Namespace, so Argo CD never
  syncs it; any other key under the prefix (a typo) and the same keys as annotations
  are read by nothing. `enforce: privileged` switches the namespace's pod security
  off: refused in prod (waivable), a warning elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from compiler.model import DocPath
from compiler.policy.guards.base import GuardContext, GuardFinding, Rule, error_in_prod

ARGOCD_ID = "ns-argocd-control-key"
ARGOCD_NOTE_ID = "ns-argocd-key"
PRIVILEGED_ID = "ns-pod-security-privileged"
INVALID_ID = "ns-pod-security-invalid"

ARGOCD_PREFIX = "argocd.argoproj.io/"
TRACKING_LABEL = "app.kubernetes.io/instance"
PSA_PREFIX = "pod-security.kubernetes.io/"
PSA_MODES = ("enforce", "audit", "warn")
PSA_LEVELS = ("privileged", "baseline", "restricted")
# k8s.io/pod-security-admission api.ParseVersion: "latest" or v1.<minor>.
_PSA_VERSION = re.compile(r"latest|v1\.(0|[1-9][0-9]*)")
_PSA_DOCS = "https://kubernetes.io/docs/concepts/security/pod-security-admission/"

RULES: tuple[Rule, ...] = (
    Rule(
        id=ARGOCD_ID,
        severity="error",
        what="No namespace label or annotation makes Argo CD delete, replace or hand over "
        "the Namespace: `argocd.argoproj.io/hook*`, `argocd.argoproj.io/sync-options` with "
        "Replace=true or Force=true, `argocd.argoproj.io/tracking-id`.",
        why="`hook: PostSync` with `hook-delete-policy: HookSucceeded` makes Argo CD delete "
        "the Namespace after a sync, `Force=true,Replace=true` deletes and recreates it with "
        "everything in it, and a tracking id names another Application as its owner",
        reference="https://argo-cd.readthedocs.io/en/stable/user-guide/resource_hooks/",
        fix="namespaces: {payments: {annotations: {purpose: payments}}}   # no hook, no "
        "Replace/Force, no tracking-id",
        waivable=False,
    ),
    Rule(
        id=ARGOCD_NOTE_ID,
        severity="error",
        what="Any other `argocd.argoproj.io/` key on a namespace (sync-wave, managed-by, "
        "Prune=false, ...) and the label `app.kubernetes.io/instance` are refused in prod "
        "(waivable) and a warning elsewhere.",
        why="Argo CD reads them as instructions: `managed-by` lets another Argo CD instance "
        "manage the namespace, and `app.kubernetes.io/instance` is its tracking label where "
        "label tracking is on (the default before Argo CD 3.0), so another Application may "
        "claim or prune the Namespace; some are harmless (sync-wave, Prune=false): a waiver "
        "says which",
        reference="https://argo-cd.readthedocs.io/en/stable/user-guide/resource_tracking/",
        fix="namespaces: {payments: {labels: {app.kubernetes.io/part-of: payments}}}",
    ),
    Rule(
        id=PRIVILEGED_ID,
        severity="error",
        what="No namespace in prod is labelled `pod-security.kubernetes.io/enforce: "
        "privileged`; a warning in other environments.",
        why="the privileged level enforces nothing: pods of the namespace may run privileged, "
        "share the host's network, PID and IPC namespaces and mount host paths, which is "
        "root on the node",
        reference=_PSA_DOCS,
        fix="namespaces: {payments: {labels: {pod-security.kubernetes.io/enforce: baseline}}}",
    ),
    Rule(
        id=INVALID_ID,
        severity="error",
        what="Every `pod-security.kubernetes.io/` key of a namespace is a label PodSecurity "
        "admission reads: `enforce`, `audit` or `warn` with the level privileged, baseline or "
        "restricted, or `<mode>-version` with `latest` or `v1.<minor>`.",
        why="the API server's PodSecurity admission refuses a Namespace whose level or version "
        "it cannot parse, so Argo CD never syncs it; another key under the prefix, or one of "
        "these as an annotation, is read by nothing and enforces nothing",
        reference=_PSA_DOCS,
        fix="labels: {pod-security.kubernetes.io/enforce: restricted, "
        "pod-security.kubernetes.io/enforce-version: latest}",
        waivable=False,
    ),
)


def _argocd_effect(field: str, key: str, value: str) -> tuple[str, bool]:
    """What Argo CD does with the key ('' when it is no Argo CD key), and whether that
    deletes, replaces or hands over the Namespace (never acceptable)."""
    if field == "labels" and key == TRACKING_LABEL:
        return (
            "is Argo CD's tracking label where label tracking is on: its value names the "
            "Application that owns the object, so another Application may claim or prune "
            "this Namespace",
            False,
        )
    if not key.startswith(ARGOCD_PREFIX):
        return "", False
    name = key.removeprefix(ARGOCD_PREFIX)
    if name.startswith("hook"):
        return (
            "makes the Namespace an Argo CD hook, which Argo CD deletes (hook-delete-policy)",
            True,
        )
    if name == "sync-options" and ("Replace=true" in value or "Force=true" in value):
        return (
            f"({value[:60]}) makes Argo CD delete and recreate the Namespace, its objects too",
            True,
        )
    if name == "tracking-id":
        return "names the Application that owns the Namespace, which may then prune it", True
    return (
        "is an instruction to Argo CD (sync waves and options, another instance's management)",
        False,
    )


def _argocd_findings(
    context: GuardContext, base: DocPath, field: str, values: Mapping[str, Any]
) -> Iterator[GuardFinding]:
    cluster = context.facts.name
    for key, value in sorted(values.items()):
        effect, destructive = _argocd_effect(field, key, str(value))
        if not effect:
            continue
        path: DocPath = (*base, field, key)
        where = f"cluster {cluster}: {'.'.join(map(str, path))} {effect}"
        if destructive:
            yield GuardFinding(
                path,
                ARGOCD_ID,
                f"{where}; remove the key: Argo CD's instructions for the tree come from the "
                "compiler (its ApplicationSets, replaceOnSync), never from namespace metadata",
            )
            continue
        yield GuardFinding(
            path,
            ARGOCD_NOTE_ID,
            f"{where}; remove it, or waive this finding where the key is meant",
            error_in_prod(context.facts.env),
        )


def _psa_problem(key: str, value: str) -> str:
    """Why PodSecurity admission cannot use the label, and the fix ('' when it can)."""
    mode, _, version = key.removeprefix(PSA_PREFIX).partition("-")
    if mode not in PSA_MODES or version not in ("", "version"):
        return (
            "is no label PodSecurity admission reads, so it enforces nothing; write "
            "enforce, audit or warn, or <mode>-version"
        )
    if version and not _PSA_VERSION.fullmatch(value):
        return (
            f"has the version {value[:40]!r}, which PodSecurity admission refuses, and the "
            "API server with it the Namespace; write latest or v1.<minor> (v1.35)"
        )
    if not version and value not in PSA_LEVELS:
        return (
            f"has the level {value[:40]!r}, which PodSecurity admission refuses, and the "
            "API server with it the Namespace; write privileged, baseline or restricted"
        )
    return ""


def _psa_findings(
    context: GuardContext, base: DocPath, labels: Mapping[str, Any], annotations: Mapping[str, Any]
) -> Iterator[GuardFinding]:
    cluster, env = context.facts.name, context.facts.env
    for key in sorted(k for k in annotations if k.startswith(PSA_PREFIX)):
        path: DocPath = (*base, "annotations", key)
        yield GuardFinding(
            path,
            INVALID_ID,
            f"cluster {cluster}: {'.'.join(map(str, path))} is an annotation, and PodSecurity "
            "admission reads only labels: it enforces nothing; move it to labels",
        )
    for key, value in sorted(labels.items()):
        if not key.startswith(PSA_PREFIX):
            continue
        path = (*base, "labels", key)
        where = f"cluster {cluster}: {'.'.join(map(str, path))}"
        problem = _psa_problem(key, str(value))
        if problem:
            yield GuardFinding(path, INVALID_ID, f"{where} {problem}")
        elif key == f"{PSA_PREFIX}enforce" and value == "privileged":
            yield GuardFinding(
                path,
                PRIVILEGED_ID,
                f"{where} is privileged, which enforces nothing: pods may run privileged and "
                f"use the host's network and paths (root on the node) in this {env} namespace; "
                "enforce baseline or restricted",
                error_in_prod(env),
            )


def check(context: GuardContext) -> Iterator[GuardFinding]:
    for namespace, spec in sorted((context.config.get("namespaces") or {}).items()):
        if not isinstance(spec, Mapping):
            continue
        base: DocPath = ("namespaces", namespace)
        labels, annotations = _mapping(spec.get("labels")), _mapping(spec.get("annotations"))
        yield from _argocd_findings(context, base, "labels", labels)
        yield from _argocd_findings(context, base, "annotations", annotations)
        yield from _psa_findings(context, base, labels, annotations)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}  # a wrong type is the schema's finding
