"""The document the CUE policies see for one cluster: the merged config, made regular.

Every collection the policies iterate is present (empty when the config has
none) and every optional field they test has its default, so the policies can be
plain comprehensions and comparisons: no `_|_` tests (rbac.cue had one, on
clusterRole, which is always here; issue 18 removed it), no defaults, nothing
that reads differently on CUE v0.4 and current CUE. tests/policy/test_policies.py
runs every rule's cases on both. Paths are the DSL's, so a
finding's path is a path in the merged config and its provenance is found
there. Quantities also come as integers in milli-units, which CUE cannot parse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from compiler.model import ClusterFacts
from compiler.policy.guards.quantities import parse_quantity

_SUFFIX = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(
    r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:([eE][-+]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$"
)


def milli_units(value: Any) -> int | None:
    """A quantity in thousandths, rounded up as Kubernetes rounds; None if it is not one."""
    if isinstance(value, bool) or parse_quantity(value).problem:
        # Unreadable, negative or out of Kubernetes' range: the quantities guard reports
        # it, and `1e5000` would overflow the arithmetic below (issue 15).
        return None
    if isinstance(value, int | float):
        value = repr(value)
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value)
    if match is None:
        return None
    number, exponent, suffix = match.groups()
    try:
        amount = Decimal(number) * (Decimal(f"1{exponent}") if exponent else _SUFFIX[suffix or ""])
    except InvalidOperation:
        return None
    return int((amount * 1000).to_integral_value(rounding="ROUND_CEILING"))


def cue_document(facts: ClusterFacts, config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "cluster": {"name": facts.name, "env": facts.env, "region": facts.region},
        "namespaces": {
            name: _namespace(ns or {}) for name, ns in sorted(_map(config, "namespaces").items())
        },
        "roles": {
            name: {"rules": [_rule(r) for r in _list(role or {}, "rules")]}
            for name, role in sorted(_map(config, "roles").items())
        },
        "calico": {
            "ipPools": {
                name: _pool(pool or {})
                for name, pool in sorted(_map(_map(config, "calico"), "ipPools").items())
            }
        },
    }


def _namespace(ns: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "labels": dict(_map(ns, "labels")),
        "defaultDeny": ns.get("defaultDeny") is True,
        "quotas": {
            name: {
                resource: {"value": str(amount), "milli": milli_units(amount)}
                for resource, amount in sorted((hard or {}).items())
            }
            for name, hard in sorted(_map(ns, "quotas").items())
        },
        "access": {
            name: {
                "role": (binding or {}).get("role") or "",
                "clusterRole": (binding or {}).get("clusterRole") or "",
                "users": _list(binding or {}, "users"),
                "groups": _list(binding or {}, "groups"),
                "serviceAccounts": _list(binding or {}, "serviceAccounts"),
            }
            for name, binding in sorted(_map(ns, "access").items())
        },
    }


def _rule(rule: Any) -> dict[str, Any]:
    rule = rule if isinstance(rule, Mapping) else {}
    return {
        key: _list(rule, key)
        for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs")
    }


def _pool(pool: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "cidr": str(pool.get("cidr", "")),
        "ipipMode": pool.get("ipipMode") or "Never",
        "vxlanMode": pool.get("vxlanMode") or "Never",
    }


def _map(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, Mapping) else {}


def _list(parent: Mapping[str, Any], key: str) -> list[Any]:
    value = parent.get(key)
    return list(value) if isinstance(value, list) else []
