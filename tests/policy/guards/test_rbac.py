"""The rbac guard on role templates, called directly: each hostile rule is refused with
the grant it reaches and the entry at fault; its benign neighbours pass."""

from __future__ import annotations

from typing import Any

import pytest

from compiler.model import ClusterFacts
from compiler.policy.guards import rbac
from compiler.policy.guards.base import GuardContext, GuardSettings
from compiler.policy.guards.sensitive_grants import SENSITIVE_GRANTS, rule_id

CORE = ""
RBAC = "rbac.authorization.k8s.io"


def context(*rules: dict[str, Any]) -> GuardContext:
    config = {"roles": {"case-role": {"rules": list(rules)}}}
    return GuardContext(ClusterFacts("c", "dev", "https://c.example:6443"), config, GuardSettings())


def rule(groups: list[str], resources: list[str], verbs: list[str], **more: Any) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs, **more}


def found(ctx: GuardContext) -> set[tuple[str, str]]:
    out = set()
    for finding in rbac.check(ctx):
        path = finding.path
        out.add((finding.rule, f"rules[{path[3]}].{path[4]}[{path[5]}]"))
    return out


# (id, rule, expected findings as (rule id, path below roles.case-role))
HOSTILE = [
    ("secrets-get", rule([CORE], ["secrets"], ["get"]), [("secrets-get", "rules[0].verbs[0]")]),
    (
        "secrets-via-any-group",
        rule(["*"], ["secrets"], ["get"]),
        [("secrets-get", "rules[0].apiGroups[0]")],
    ),
    (
        "secrets-list-via-wildcard-resource",
        rule([CORE], ["*"], ["list"]),
        [("secrets-list", "rules[0].resources[0]"), ("nodes-proxy", "rules[0].resources[0]")],
    ),
    (
        "named-secret-list-ignores-names",
        rule([CORE], ["secrets"], ["*"], resourceNames=["one"]),
        [("secrets-list", "rules[0].verbs[0]")],
    ),
    (
        "token-request",
        rule([CORE], ["serviceaccounts", "serviceaccounts/token"], ["create"]),
        [("serviceaccount-token", "rules[0].resources[1]")],
    ),
    ("exec", rule([CORE], ["pods/exec"], ["create"]), [("pods-exec", "rules[0].resources[0]")]),
    (
        "exec-over-websockets",
        rule([CORE], ["pods", "pods/exec"], ["get"]),
        [("pods-exec", "rules[0].resources[1]")],
    ),
    (
        "exec-via-star-slash-sub",
        rule([CORE], ["*/exec"], ["create"]),
        [("pods-exec", "rules[0].resources[0]")],
    ),
    (
        "every-pod-subresource",
        rule([CORE], ["pods/*"], ["create"]),
        [
            ("pods-exec", "rules[0].resources[0]"),
            ("pods-attach", "rules[0].resources[0]"),
            ("pods-portforward", "rules[0].resources[0]"),
            ("pods-proxy", "rules[0].resources[0]"),
        ],
    ),
    (
        "every-pod-subresource-patched",
        rule([CORE], ["pods/*"], ["patch"]),
        [
            ("pods-ephemeralcontainers", "rules[0].resources[0]"),
            ("pods-proxy", "rules[0].resources[0]"),
        ],
    ),
    (
        "ephemeral-containers",
        rule([CORE], ["pods", "pods/ephemeralcontainers"], ["get", "patch"]),
        [("pods-ephemeralcontainers", "rules[0].resources[1]")],
    ),
    (
        "ephemeral-containers-via-wildcard-resource",
        rule([CORE], ["*"], ["update"]),
        [
            ("pods-ephemeralcontainers", "rules[0].resources[0]"),
            ("pods-proxy", "rules[0].resources[0]"),
            ("services-proxy", "rules[0].resources[0]"),
            ("nodes-proxy", "rules[0].resources[0]"),
        ],
    ),
    ("pod-proxy", rule([CORE], ["pods/proxy"], ["get"]), [("pods-proxy", "rules[0].resources[0]")]),
    (
        "service-proxy",
        rule([CORE], ["services", "services/proxy"], ["create"]),
        [("services-proxy", "rules[0].resources[1]")],
    ),
    (
        "service-proxy-via-wildcard-verb",
        rule([CORE], ["services/proxy"], ["*"]),
        [("services-proxy", "rules[0].verbs[0]")],
    ),
    (
        "attach",
        rule([CORE], ["pods/attach"], ["create"]),
        [("pods-attach", "rules[0].resources[0]")],
    ),
    (
        "portforward",
        rule([CORE], ["pods/portforward"], ["get"]),
        [("pods-portforward", "rules[0].resources[0]")],
    ),
    (
        "node-proxy-via-star-slash-proxy",
        rule([CORE], ["*/proxy"], ["get"]),
        [
            ("nodes-proxy", "rules[0].resources[0]"),
            ("pods-proxy", "rules[0].resources[0]"),
            ("services-proxy", "rules[0].resources[0]"),
        ],
    ),
    (
        "escalate-via-wildcard-verb",
        rule([RBAC], ["roles"], ["*"]),
        [("escalate-bind", "rules[0].verbs[0]")],
    ),
    (
        "impersonate-via-wildcard-verb",
        rule([CORE], ["serviceaccounts"], ["*"]),
        [("impersonate", "rules[0].verbs[0]")],  # serviceaccounts alone: no token subresource
    ),
    (
        "impersonate-uids-via-wildcard-resource",
        rule(["authentication.k8s.io"], ["*"], ["impersonate"]),
        [],  # literal impersonate: rbac-no-escalation (CUE) reports it
    ),
    (
        "csr-approve",
        rule(["certificates.k8s.io"], ["signers"], ["approve"], resourceNames=["x/y"]),
        [("csr-approve", "rules[0].verbs[0]")],
    ),
    (
        "webhook-patch",
        rule(["admissionregistration.k8s.io"], ["mutatingwebhookconfigurations"], ["patch"]),
        [("admission-webhooks", "rules[0].resources[0]")],
    ),
    (
        "webhook-via-every-group",
        rule(["*"], ["validatingwebhookconfigurations"], ["delete"]),
        [("admission-webhooks", "rules[0].apiGroups[0]")],
    ),
]

BENIGN = [
    ("pod-logs", rule([CORE], ["pods/log"], ["get"])),
    ("one-named-secret", rule([CORE], ["secrets"], ["get"], resourceNames=["app-config"])),
    ("list-pods", rule([CORE], ["pods"], ["list", "watch", "get"])),
    ("create-configmaps", rule([CORE], ["configmaps"], ["create"])),
    ("every-verb-on-pods-reaches-no-subresource", rule([CORE], ["pods"], ["*"])),
    ("secrets-in-another-group", rule(["apps"], ["secrets"], ["get"])),
    ("create-secrets-reads-none", rule([CORE], ["secrets"], ["create", "update"])),
    ("read-ephemeral-containers", rule([CORE], ["pods/ephemeralcontainers"], ["get", "list"])),
    ("read-services-and-endpoints", rule([CORE], ["services", "endpoints"], ["*"])),
    ("webhooks-read", rule(["admissionregistration.k8s.io"], ["*"], ["get", "list"])),
    ("no-api-groups-grants-nothing", {"resources": ["*"], "verbs": ["*"]}),
    # Spelled literally, these are the CUE rules' (rbac-no-*): not reported twice.
    ("literal-list-secrets", rule([CORE], ["secrets"], ["list"])),
    ("literal-node-proxy", rule([CORE], ["nodes/proxy"], ["*"])),
    ("literal-escalate", rule([RBAC], ["*"], ["escalate"])),
]


@pytest.mark.parametrize(("rule_", "expected"), [(r, e) for _, r, e in HOSTILE],
                         ids=[i for i, _, _ in HOSTILE])  # fmt: skip
def test_a_sensitive_grant_is_refused_with_the_entry_at_fault(
    rule_: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert found(context(rule_)) == {(f"rbac-sensitive-{g}", p) for g, p in expected}


@pytest.mark.parametrize("rule_", [r for _, r in BENIGN], ids=[i for i, _ in BENIGN])
def test_a_benign_neighbour_passes(rule_: dict[str, Any]) -> None:
    assert found(context(rule_)) == set()


def test_the_message_says_what_is_reached_and_how() -> None:
    [finding] = list(rbac.check(context(rule([CORE], ["*/exec"], ["create"]))))
    assert finding.path == ("roles", "case-role", "rules", 0, "resources", 0)
    assert "role template case-role runs commands" in finding.message
    assert '"*/exec" grants create on pods/exec' in finding.message
    assert "e.g. {apiGroups" in finding.message


def test_every_grant_is_a_rule_of_the_reference() -> None:
    assert [r.id for r in rbac.RULES] == [rule_id(g) for g in SENSITIVE_GRANTS]
    assert all(r.reference.startswith("https://kubernetes.io/") for r in rbac.RULES)
    assert {r.id for r in rbac.RULES if not r.waivable} == {
        "rbac-sensitive-nodes-proxy",
        "rbac-sensitive-escalate-bind",
        "rbac-sensitive-impersonate",
    }
