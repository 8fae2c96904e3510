"""The guards of a compile, in one explicit table (a new guard is one line here)."""

from __future__ import annotations

from compiler.policy.guards import (
    calico_config,
    calico_order,
    carried,
    namespace_metadata,
    quantities,
    rbac,
    reserved,
    secrets_in_config,
)
from compiler.policy.guards.base import Guard, GuardContext, GuardFinding, Rule

GUARDS: tuple[Guard, ...] = (
    rbac,
    reserved,
    calico_order,
    calico_config,
    quantities,
    carried,
    secrets_in_config,
    namespace_metadata,
)


def guard_rules() -> tuple[Rule, ...]:
    return tuple(rule for guard in GUARDS for rule in guard.RULES)


def run_guards(context: GuardContext) -> list[GuardFinding]:
    """Every guard's findings on one cluster, in a stable order."""
    found = [finding for guard in GUARDS for finding in guard.check(context)]
    return sorted(found, key=lambda f: (tuple(map(str, f.path)), f.rule, f.message))
