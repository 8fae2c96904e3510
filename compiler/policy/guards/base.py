"""What a guard is: a rule written in Python over one cluster's merged config.

The CUE policies hold the organisation's own rules; guards hold the rules that
must model how Kubernetes, Calico and Argo CD will read what we emit (the API
server's RBAC matching, Calico's policy order, quantity ranges, what the
ApplicationSets carry verbatim), which plain CUE comparisons cannot. Each guard
module exports `RULES` (its entries of the rules reference) and `check`, as
yamllint's rules do; `compiler.policy.guards` lists them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from compiler.model import ClusterFacts, DocPath

Severity = Literal["error", "warning"]


def error_in_prod(env: str) -> Severity:
    """The severity of a rule that refuses in prod and only warns elsewhere."""
    return "error" if env == "prod" else "warning"


@dataclass(frozen=True)
class Rule:
    """One rule of the reference (`docs/rules.md` is generated from these)."""

    id: str
    severity: Severity
    what: str  # what it checks, one sentence
    why: str  # what goes wrong without it
    reference: str  # the upstream document that says so (URL)
    fix: str  # an example of the fix, in the DSL
    waivable: bool = True  # some exposures are never acceptable, whoever signs


@dataclass(frozen=True)
class GuardSettings:
    """The project file's `policy:` section."""

    reserved_namespaces: tuple[str, ...] = (
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "argocd",
        "calico-system",
        "tigera-operator",
    )
    allowed_servers: tuple[str, ...] = ()  # fnmatch patterns; empty: any https server
    # The quota ceiling of an environment the CUE policies give none (quota-ceiling).
    default_quota_ceiling: Mapping[str, str] = field(
        default_factory=lambda: {"cpu": "16", "memory": "32Gi", "pods": "200"}
    )


@dataclass(frozen=True)
class GuardContext:
    facts: ClusterFacts
    config: Mapping[str, Any]  # the merged DSL document, schema-valid
    settings: GuardSettings


@dataclass(frozen=True)
class GuardFinding:
    path: DocPath  # in the merged DSL document: provenance blames the layer that set it
    rule: str
    message: str
    severity: Severity = "error"


class Guard(Protocol):
    RULES: tuple[Rule, ...]

    def check(self, context: GuardContext) -> Iterator[GuardFinding]: ...
