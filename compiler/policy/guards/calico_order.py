"""Calico as Calico orders it: `global()` where Calico allows it, and allow-all rules.

Order (Calico's NetworkPolicy and GlobalNetworkPolicy references, and its policy
tiers): tiers are evaluated in their order, then the policies of a tier by
`order`, lower first; a policy without `order` comes last; ties go by name.
Calico places every Kubernetes NetworkPolicy in the `default` tier with order
1000, so a Calico policy of the default tier with order below 1000 (or in a tier
evaluated before it) is evaluated before the namespaces' Kubernetes policies,
our prod `defaultDeny` among them.

That default-deny policy has no Deny rule: it only makes the pods isolated, and
the drop comes at the end of the tier when no policy allowed the packet. So a
Calico Allow rule that nothing narrows admits all traffic to (or from) every pod
it selects. A namespaced Calico policy in a prod `defaultDeny` namespace, or a
global one ordered before 1000, is refused in prod; in other environments, and
for a prod global policy ordered after 1000, it is a warning that says the order.

`Pass` counts as `Allow` in the default tier (the only one the DSL emits) and in
kube-baseline: it skips the rest of the tier's policies, the Kubernetes ones
(`knp.default.*`) among them, and hands the packet to the next tier, or, after the
last, to the endpoint's profile, which allows (Calico's tiers guide, "pass"). Only
in a tier evaluated before the default one does a Pass still meet the Kubernetes
policies.

`global()`: the Calico docs ("Understanding scopes and the all() and global()
operators") allow it only in a `namespaceSelector` of a rule's source or
destination, where it widens a namespaced policy's `selector` to non-namespaced
endpoints (GlobalNetworkSets, HostEndpoints); the CRDs' validation rules refuse
it in a policy's `selector` and `serviceAccountSelector`, a GlobalNetworkPolicy's
`namespaceSelector` and a rule entity's `selector`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from compiler.model import DocPath
from compiler.policy.guards.base import GuardContext, GuardFinding, Rule, error_in_prod

GLOBAL_ID = "calico-global-selector"
ALLOW_ALL_ID = "calico-allow-all"
K8S_POLICY_ORDER = 1000  # the order Calico gives every Kubernetes NetworkPolicy
CALICO_DOCS = "https://docs.tigera.io/calico/latest/reference/resources/"

RULES: tuple[Rule, ...] = (
    Rule(
        id=GLOBAL_ID,
        severity="error",
        what="global() appears only in a rule's source or destination namespaceSelector.",
        why="Calico's CRD validation refuses global() in a policy's selector, its "
        "serviceAccountSelector, a GlobalNetworkPolicy's namespaceSelector and a rule's "
        "selector: the sync fails, or a hand-applied policy means something else",
        reference=CALICO_DOCS + "networkpolicy#entityrule",
        fix="ingress: [{action: Allow, source: {namespaceSelector: global(), "
        "selector: \"role == 'monitoring'\"}}]",
        waivable=False,
    ),
    Rule(
        id=ALLOW_ALL_ID,
        severity="error",
        what="A Calico Allow rule, or a Pass rule in the default tier, that nothing narrows "
        "(no selector, namespaceSelector, nets, ports, serviceAccounts or services) in a "
        "policy evaluated before the Kubernetes policies (order up to 1000) or in a prod "
        "defaultDeny namespace; a warning outside prod.",
        why="Calico evaluates it before, or regardless of, the Kubernetes default-deny "
        "policy, which has no Deny rule of its own: the pods it selects accept all traffic. "
        "A Pass skips the rest of the tier, the Kubernetes policies included, and the "
        "namespace profile after the last tier allows: as permissive as Allow",
        reference=CALICO_DOCS + "globalnetworkpolicy",
        fix="ingress: [{action: Allow, source: {selector: \"app == 'frontend'\"}, "
        "destination: {ports: [8080]}}]",
    ),
)

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_GLOBAL = re.compile(r"\bglobal\s*\(")
_BROAD_PROTOCOLS = {"TCP", "UDP", "SCTP", "UDPLite", 6, 17, 132, 136}


def uses_global(selector: object) -> bool:
    return isinstance(selector, str) and bool(_GLOBAL.search(_QUOTED.sub("''", selector)))


def _is_all(selector: object) -> bool:
    return isinstance(selector, str) and selector.replace(" ", "") == "all()"


def _global_findings(base: DocPath, spec: Mapping[str, Any], kind: str) -> Iterator[GuardFinding]:
    fields = ["selector", "serviceAccountSelector"]
    if kind == "GlobalNetworkPolicy":
        fields.append("namespaceSelector")
    places: list[tuple[DocPath, object]] = [((*base, f), spec.get(f)) for f in fields]
    for direction in ("ingress", "egress"):
        for i, rule in enumerate(spec.get(direction) or []):
            for side in ("source", "destination"):
                entity = rule.get(side) or {}
                at: DocPath = (*base, direction, i, side)
                places += [((*at, f), entity.get(f)) for f in ("selector", "notSelector")]
                accounts = entity.get("serviceAccounts") or {}
                places.append(((*at, "serviceAccounts", "selector"), accounts.get("selector")))
    for path, selector in places:
        if uses_global(selector):
            yield GuardFinding(
                path,
                GLOBAL_ID,
                f"{kind} {base[-1]}: global() in {path[-1]} (Calico allows it only in a rule's "
                "namespaceSelector, where it widens the rule's selector to GlobalNetworkSets "
                "and HostEndpoints); move it to the source or destination namespaceSelector",
            )


def _entity_narrows(entity: Mapping[str, Any], namespaced: bool) -> bool:
    if entity.get("ports") or entity.get("serviceAccounts") or entity.get("services"):
        return True
    nets = entity.get("nets") or []
    if nets and not any(str(net).endswith("/0") for net in nets):
        return True
    namespace_selector = entity.get("namespaceSelector")
    if namespace_selector and not _is_all(namespace_selector):
        return True
    selector = entity.get("selector")
    # all() in a namespaced policy's rule, with no namespaceSelector, means this namespace.
    return bool(selector) and (not _is_all(selector) or (namespaced and not namespace_selector))


def is_allow_all(rule: Mapping[str, Any], namespaced: bool, pass_allows: bool = True) -> bool:
    """An Allow (or, when `pass_allows`, a Pass) that nothing narrows: negations (notNets,
    notPorts...) only carve out."""
    actions = ("Allow", "Pass") if pass_allows else ("Allow",)
    if rule.get("action") not in actions or rule.get("http") or rule.get("icmp"):
        return False
    protocol = rule.get("protocol")
    if protocol is not None and protocol not in _BROAD_PROTOCOLS:
        return False
    sides = (rule.get("source") or {}, rule.get("destination") or {})
    return not any(_entity_narrows(side, namespaced) for side in sides)


def effective_directions(spec: Mapping[str, Any]) -> list[str]:
    """Calico's defaults for `types`: Ingress unless only egress rules; Egress if any."""
    types = spec.get("types")
    if types is None:
        types = ["Egress"] if spec.get("egress") and not spec.get("ingress") else ["Ingress"]
        types += ["Egress"] if spec.get("egress") and "Egress" not in types else []
    return [t.lower() for t in types]


def _order_text(spec: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the policy may be evaluated before the Kubernetes policies, and why."""
    tier, order = spec.get("tier") or "default", spec.get("order")
    if tier not in ("default", "kube-baseline"):
        return (
            True,
            f"its tier {tier} is evaluated before the default tier of the Kubernetes policies",
        )
    if tier == "kube-baseline":
        return False, "its tier kube-baseline is evaluated after the Kubernetes policies"
    if order is None:
        return False, "it has no order, so Calico evaluates it last in the default tier"
    if order <= K8S_POLICY_ORDER:
        relation = "below" if order < K8S_POLICY_ORDER else "equal to"
        return True, (
            f"its order {order:g} is {relation} the {K8S_POLICY_ORDER} Calico gives Kubernetes "
            "NetworkPolicies, so it is evaluated before them"
        )
    return False, f"its order {order:g} puts it after the Kubernetes policies' {K8S_POLICY_ORDER}"


def _allow_all_findings(
    context: GuardContext, base: DocPath, spec: Mapping[str, Any], deny_namespace: bool
) -> Iterator[GuardFinding]:
    kind = "NetworkPolicy" if base[0] == "namespaces" else "GlobalNetworkPolicy"
    _, order = _order_text(spec)
    # A Pass in a tier before the default one meets the Kubernetes policies next.
    pass_allows = (spec.get("tier") or "default") in ("default", "kube-baseline")
    for direction in effective_directions(spec):
        for i, rule in enumerate(spec.get(direction) or []):
            if not isinstance(rule, Mapping):
                continue
            if not is_allow_all(rule, kind == "NetworkPolicy", pass_allows):
                continue
            # In prod an allow-all is refused whatever its order: the Kubernetes policies
            # (order 1000) have no Deny rule, so a later Allow in the tier still matches
            # before the tier's end-of-tier drop. Outside prod it is reported, with why.
            severity = error_in_prod(context.facts.env)
            allows = (
                "passes all traffic past the rest of the tier to the namespace profile, which "
                "allows it,"
                if rule.get("action") == "Pass"
                else "allows all traffic"
            )
            effect = (
                f"Calico {kind} {base[-1]}: {direction} rule {i} {allows} and {order}; "
                "the Kubernetes default-deny policy has no Deny rule (it only isolates the pods), "
                f"so every pod this policy selects accepts all {direction} traffic"
            )
            where = (
                f" in prod namespace {base[1]}, which sets defaultDeny" if deny_namespace else ""
            )
            fix = "; narrow the rule with a selector, namespaceSelector, nets or ports"
            if rule.get("action") == "Pass":
                fix += (
                    ", or remove it: what the rules do not match goes on to the next "
                    "policy, and is dropped at the end of the tier for every endpoint this "
                    "policy selects unless a later policy allows it (so select only the "
                    "namespaces meant)"
                )
            path: DocPath = (*base, direction, i)
            yield GuardFinding(path, ALLOW_ALL_ID, effect + where + fix, severity)


def check(context: GuardContext) -> Iterator[GuardFinding]:
    prod = context.facts.env == "prod"
    policies = (context.config.get("calico") or {}).get("globalNetworkPolicies") or {}
    for name, spec in policies.items():
        base: DocPath = ("calico", "globalNetworkPolicies", name)
        yield from _global_findings(base, spec, "GlobalNetworkPolicy")
        yield from _allow_all_findings(context, base, spec, deny_namespace=False)
    for namespace, ns in (context.config.get("namespaces") or {}).items():
        deny = prod and isinstance(ns, Mapping) and ns.get("defaultDeny") is True
        for name, spec in ((ns or {}).get("calicoPolicies") or {}).items():
            base = ("namespaces", namespace, "calicoPolicies", name)
            yield from _global_findings(base, spec, "NetworkPolicy")
            yield from _allow_all_findings(context, base, spec, deny_namespace=deny)
