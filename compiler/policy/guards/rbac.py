"""RBAC as the API server matches it: role templates that reach a sensitive grant.

The CUE rules compare strings; the API server does not. A rule grants a request
(`pkg/apis/rbac/v1/evaluation_helpers.go`: VerbMatches, APIGroupMatches,
ResourceMatches) when one of its verbs is the verb or `*`, one of its apiGroups
the group or `*`, and one of its resources `*`, the resource itself
(`pods/exec`), or `*/<subresource>` (`*/exec`); `pods` alone grants no
subresource of pods. The guard asks, for each rule of each template and each
entry of `sensitive_grants`, whether the rule grants one of the entry's requests.

One deliberate step past the API server: `pods/*` (and `*/*`) is matched there
only as a subresource literally named `*`, so it grants nothing today; it is
refused as if it reached every subresource, because that is what its author
meant and what a reader of the config believes it grants.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compiler.model import DocPath
from compiler.policy.guards.base import GuardContext, GuardFinding, Rule
from compiler.policy.guards.sensitive_grants import SENSITIVE_GRANTS, SensitiveGrant, rule_id

RULES: tuple[Rule, ...] = tuple(
    Rule(
        id=rule_id(grant),
        severity="error",
        what=f"A role template's rule, matched as the API server matches it, {grant.what}.",
        why=grant.why,
        reference=grant.reference,
        fix=grant.fix,
        waivable=grant.waivable,
    )
    for grant in SENSITIVE_GRANTS
)


@dataclass(frozen=True)
class Reach:
    """How one rule grants one request: the index of the entry that matched, per field."""

    group: int
    resource: int
    verb: int
    request: str  # "verb group/resource", as a message shows it


def _strings(rule: Mapping[str, Any], key: str) -> Sequence[str]:
    value = rule.get(key)
    return value if isinstance(value, list) else []


def resource_matches(entry: str, resource: str) -> bool:
    """ResourceMatches for one entry, plus `r/*` and `*/*` as every subresource."""
    if entry in ("*", resource):
        return True
    base, _, sub = resource.partition("/")
    if not sub:
        return False  # `*/x` and `r/*` name subresources only
    return entry in (f"*/{sub}", f"{base}/*", "*/*")


def reaches(rule: Mapping[str, Any], grant: SensitiveGrant) -> list[Reach]:
    """Every way `rule` grants a request of `grant` (empty: it grants none)."""
    groups, resources, verbs = (_strings(rule, k) for k in ("apiGroups", "resources", "verbs"))
    found = []
    for g, group_entry in enumerate(groups):
        for group in grant.api_groups:
            if group_entry not in ("*", group):
                continue
            for r, resource_entry in enumerate(resources):
                for resource in grant.resources:
                    if not resource_matches(resource_entry, resource):
                        continue
                    for v, verb_entry in enumerate(verbs):
                        for verb in grant.verbs:
                            if verb == "*" or verb_entry in ("*", verb):
                                shown = verb_entry if verb == "*" else verb
                                where = f"{group}/{resource}" if group else resource
                                found.append(Reach(g, r, v, f"{shown} on {where}"))
                                break
    return found


def _literal(rule: Mapping[str, Any], reach: Reach, grant: SensitiveGrant) -> bool:
    """The CUE rule named by the grant already reports this reach (string equality)."""
    entries = {
        "verbs": _strings(rule, "verbs")[reach.verb],
        "resources": _strings(rule, "resources")[reach.resource],
    }
    literal = {
        "verbs": entries["verbs"] != "*",
        "resources": entries["resources"] in grant.resources,
    }
    return grant.cue_rule is not None and all(literal[f] for f in grant.cue_literal)


def _fault(rule: Mapping[str, Any], reach: Reach, grant: SensitiveGrant) -> tuple[str, int, str]:
    """The entry to blame: a wildcard that reaches the grant, else the grant's own field."""
    resource = _strings(rule, "resources")[reach.resource]
    verb = _strings(rule, "verbs")[reach.verb]
    group = _strings(rule, "apiGroups")[reach.group]
    if resource not in grant.resources:
        return "resources", reach.resource, resource
    if verb == "*":
        return "verbs", reach.verb, verb
    if group == "*":
        return "apiGroups", reach.group, group
    index = reach.verb if grant.blame == "verbs" else reach.resource
    return grant.blame, index, verb if grant.blame == "verbs" else resource


def _message(role: str, grant: SensitiveGrant, reach: Reach, field: str, value: str) -> str:
    how = f'{field} entry "{value}" grants {reach.request}'
    if field == "resources" and value.endswith("/*"):
        how += " (the API server reads it as a subresource literally named '*' today; it says every subresource)"
    elif value == "*":
        how += " (the API server matches '*' against every value, this one included)"
    narrow = "; resourceNames would narrow it to named objects" if grant.names_narrow else ""
    return (
        f"role template {role} {grant.what}: {how}{narrow}; list only what is needed, "
        f"e.g. {grant.fix}"
    )


def _check_rule(role: str, index: int, rule: Mapping[str, Any]) -> Iterator[GuardFinding]:
    for grant in SENSITIVE_GRANTS:
        if grant.names_narrow and _strings(rule, "resourceNames"):
            continue
        found = reaches(rule, grant)
        if not found or any(_literal(rule, reach, grant) for reach in found):
            continue  # no reach, or the CUE rule already reports it
        faults = [(_fault(rule, reach, grant), reach) for reach in found]
        # A wildcard explains the reach best: blame it before a literal entry.
        (field, entry, value), reach = min(faults, key=lambda f: f[0][0] == grant.blame)
        path: DocPath = ("roles", role, "rules", index, field, entry)
        yield GuardFinding(path, rule_id(grant), _message(role, grant, reach, field, value))


def check(context: GuardContext) -> Iterator[GuardFinding]:
    roles = context.config.get("roles") or {}
    for role, template in roles.items():
        for index, rule in enumerate((template or {}).get("rules") or []):
            if isinstance(rule, Mapping):
                yield from _check_rule(role, index, rule)


def template_reaches_sensitive(rules: Sequence[Mapping[str, Any]]) -> list[SensitiveGrant]:
    """The sensitive grants a template's rules reach (resourceNames applied): for guards
    that judge a binding by the template it binds."""
    reached = []
    for grant in SENSITIVE_GRANTS:
        for rule in rules:
            if grant.names_narrow and _strings(rule, "resourceNames"):
                continue
            if reaches(rule, grant):
                reached.append(grant)
                break
    return reached
