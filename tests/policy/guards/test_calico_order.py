"""The calico_order guard, called directly: global() outside a rule's namespaceSelector,
and Allow rules that nothing narrows, judged by Calico's order and the environment."""

from __future__ import annotations

from typing import Any

import pytest

from compiler.model import ClusterFacts
from compiler.policy.guards import calico_order
from compiler.policy.guards.base import GuardContext, GuardSettings

ALLOW_ALL = {"action": "Allow"}


def context(env: str, config: dict[str, Any]) -> GuardContext:
    return GuardContext(ClusterFacts("c", env, "https://c.example:6443"), config, GuardSettings())


def gnp(**spec: Any) -> dict[str, Any]:
    return {"calico": {"globalNetworkPolicies": {"case-gnp": spec}}}


def cnp(default_deny: bool = True, **spec: Any) -> dict[str, Any]:
    namespace = {"defaultDeny": default_deny, "calicoPolicies": {"case-np": spec}}
    return {"namespaces": {"case-ns": namespace}}


def found(env: str, config: dict[str, Any]) -> list[tuple[str, str, tuple[Any, ...]]]:
    return [(f.rule, f.severity, f.path[-3:]) for f in calico_order.check(context(env, config))]


GNP_RULE = ("case-gnp", "ingress", 0)
NP_RULE = ("case-np", "ingress", 0)

# (id, env, config, findings as (rule, severity, last three path parts))
CASES = [
    (
        "gnp-allow-all-before-k8s-in-prod",
        "prod",
        gnp(order=10, selector="all()", ingress=[ALLOW_ALL]),
        [("calico-allow-all", "error", GNP_RULE)],
    ),
    (
        "gnp-allow-all-tied-with-k8s-in-prod",
        "prod",
        gnp(order=1000, ingress=[ALLOW_ALL]),
        [("calico-allow-all", "error", GNP_RULE)],
    ),
    (
        "gnp-allow-all-in-an-earlier-tier",
        "prod",
        gnp(tier="security", order=5000, ingress=[ALLOW_ALL]),
        [("calico-allow-all", "error", GNP_RULE)],
    ),
    (
        # The shipped deny-metadata-egress once ended so: Pass skips knp.default.* and the
        # namespace profile allows, which voided prod's egress default-deny.
        "gnp-trailing-pass-in-prod",
        "prod",
        gnp(
            order=100,
            selector="all()",
            types=["Egress"],
            egress=[
                {
                    "action": "Deny",
                    "protocol": "TCP",
                    "destination": {"nets": ["169.254.169.254/32"]},
                },
                {"action": "Pass"},
            ],
        ),
        [("calico-allow-all", "error", ("case-gnp", "egress", 1))],
    ),
    (
        "gnp-pass-in-kube-baseline-in-prod",
        "prod",
        gnp(tier="kube-baseline", egress=[{"action": "Pass"}]),
        [("calico-allow-all", "error", ("case-gnp", "egress", 0))],
    ),
    (
        "np-pass-after-k8s-in-dev-warns",
        "dev",
        cnp(order=2000, ingress=[{"action": "Pass", "source": {"nets": ["0.0.0.0/0"]}}]),
        [("calico-allow-all", "warning", NP_RULE)],
    ),
    (
        "gnp-allow-all-before-k8s-in-dev-warns",
        "dev",
        gnp(order=10, ingress=[ALLOW_ALL]),
        [("calico-allow-all", "warning", GNP_RULE)],
    ),
    (
        "gnp-allow-all-after-k8s-in-prod-is-refused-too",
        "prod",
        gnp(order=2000, ingress=[ALLOW_ALL]),
        [("calico-allow-all", "error", GNP_RULE)],
    ),
    (
        "gnp-allow-all-without-order-in-prod-is-refused-too",
        "prod",
        gnp(ingress=[ALLOW_ALL]),
        [("calico-allow-all", "error", GNP_RULE)],
    ),
    (
        "egress-allow-all-to-the-world",
        "prod",
        gnp(
            order=1,
            types=["Egress"],
            egress=[{"action": "Allow", "destination": {"nets": ["0.0.0.0/0"]}}],
        ),
        [("calico-allow-all", "error", ("case-gnp", "egress", 0))],
    ),
    (
        "tcp-with-only-exceptions",
        "prod",
        gnp(
            order=1,
            ingress=[{"action": "Allow", "protocol": "TCP", "source": {"notNets": ["10.0.0.0/8"]}}],
        ),
        [("calico-allow-all", "error", GNP_RULE)],
    ),
    (
        "np-allow-all-in-a-prod-default-deny-namespace",
        "prod",
        cnp(order=5000, ingress=[ALLOW_ALL]),
        [("calico-allow-all", "error", NP_RULE)],
    ),
    (
        "np-from-every-namespace",
        "prod",
        cnp(ingress=[{"action": "Allow", "source": {"namespaceSelector": "all()"}}]),
        [("calico-allow-all", "error", NP_RULE)],
    ),
    (
        "np-allow-all-in-dev-warns",
        "dev",
        cnp(order=1, ingress=[ALLOW_ALL]),
        [("calico-allow-all", "warning", NP_RULE)],
    ),
    (
        "global-in-gnp-selector",
        "dev",
        gnp(selector="global()"),
        [("calico-global-selector", "error", ("globalNetworkPolicies", "case-gnp", "selector"))],
    ),
    (
        "global-in-gnp-namespace-selector",
        "dev",
        gnp(namespaceSelector="global()"),
        [
            (
                "calico-global-selector",
                "error",
                ("globalNetworkPolicies", "case-gnp", "namespaceSelector"),
            )
        ],
    ),
    (
        "global-in-np-selector",
        "dev",
        cnp(selector="global() || app == 'x'"),
        [("calico-global-selector", "error", ("calicoPolicies", "case-np", "selector"))],
    ),
    (
        "global-in-a-rule-selector",
        "dev",
        cnp(ingress=[{"action": "Deny", "source": {"selector": "global()"}}]),
        [("calico-global-selector", "error", (0, "source", "selector"))],
    ),
]

BENIGN = [
    ("gnp-narrowed-by-source", "prod",
     gnp(order=10, ingress=[{"action": "Allow", "source": {"selector": "app == 'web'"}}])),
    ("gnp-narrowed-by-ports", "prod",
     gnp(order=10, ingress=[{"action": "Allow", "protocol": "TCP", "destination": {"ports": [443]}}])),
    ("gnp-narrowed-by-nets", "prod",
     gnp(order=10, egress=[{"action": "Allow", "destination": {"nets": ["10.1.0.0/16"]}}])),
    ("gnp-deny-all", "prod", gnp(order=10, ingress=[{"action": "Deny"}])),
    # In a tier before the default one, a Pass goes on to the Kubernetes policies.
    ("gnp-pass-in-an-earlier-tier", "prod", gnp(tier="security", order=10, egress=[{"action": "Pass"}])),
    ("gnp-narrowed-pass", "prod",
     gnp(order=10, egress=[{"action": "Pass", "destination": {"nets": ["10.1.0.0/16"]}}])),
    ("gnp-deny-metadata-without-a-pass", "prod",
     gnp(order=100, selector="all()", types=["Egress"],
         egress=[{"action": "Deny", "protocol": "TCP", "destination": {"nets": ["169.254.169.254/32"]}}])),
    ("gnp-egress-rule-of-an-ingress-only-policy", "prod",
     gnp(order=10, types=["Ingress"], egress=[ALLOW_ALL])),
    ("gnp-icmp-only", "prod", gnp(order=10, ingress=[{"action": "Allow", "protocol": "ICMP"}])),
    ("np-same-namespace", "prod",
     cnp(ingress=[{"action": "Allow", "source": {"selector": "all()"}}])),
    ("np-global-network-sets", "prod",
     cnp(ingress=[{"action": "Allow", "source": {"namespaceSelector": "global()", "selector": "role == 'lb'"}}])),
    ("np-quoted-global-literal", "dev", cnp(selector="name == 'global()'")),
    ("gnp-global-in-a-rule-namespace-selector", "dev",
     gnp(order=10, ingress=[{"action": "Allow", "source": {"namespaceSelector": "global()"}}])),
]  # fmt: skip


@pytest.mark.parametrize(("env", "config", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_hostile_calico_is_reported(
    env: str, config: dict[str, Any], expected: list[tuple[str, str, tuple[Any, ...]]]
) -> None:
    assert found(env, config) == expected


@pytest.mark.parametrize(("env", "config"), [c[1:] for c in BENIGN], ids=[c[0] for c in BENIGN])
def test_a_benign_neighbour_passes(env: str, config: dict[str, Any]) -> None:
    assert found(env, config) == []


def test_the_message_explains_the_order() -> None:
    [before] = calico_order.check(context("dev", gnp(order=10, ingress=[ALLOW_ALL])))
    assert "order 10 is below the 1000 Calico gives Kubernetes NetworkPolicies" in before.message
    assert before.path == ("calico", "globalNetworkPolicies", "case-gnp", "ingress", 0)
    [last] = calico_order.check(context("prod", gnp(ingress=[ALLOW_ALL])))
    assert "no order, so Calico evaluates it last" in last.message
    assert "has no Deny rule" in last.message
    [in_ns] = calico_order.check(context("prod", cnp(ingress=[ALLOW_ALL])))
    assert "prod namespace case-ns, which sets defaultDeny" in in_ns.message


def test_the_message_says_what_a_pass_does() -> None:
    [finding] = calico_order.check(context("prod", gnp(order=100, egress=[{"action": "Pass"}])))
    assert ".".join(map(str, finding.path)) == "calico.globalNetworkPolicies.case-gnp.egress.0"
    assert (
        "Calico GlobalNetworkPolicy case-gnp: egress rule 0 passes all traffic" in finding.message
    )
    assert "to the namespace profile, which allows it" in finding.message
    assert "or remove it: what the rules do not match goes on to the next policy" in finding.message
    assert (
        "dropped at the end of the tier for every endpoint this policy selects" in finding.message
    )


def test_the_rules() -> None:
    assert [(r.id, r.severity, r.waivable) for r in calico_order.RULES] == [
        ("calico-global-selector", "error", False),
        ("calico-allow-all", "error", True),
    ]
