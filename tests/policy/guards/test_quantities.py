"""The quantities guard: the grammar and range apimachinery reads, and the default
quota ceiling of an environment that policies/quotas.cue gives none."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from compiler.model import ClusterFacts
from compiler.policy.guards import quantities
from compiler.policy.guards.base import GuardContext, GuardSettings
from tests.conftest import ROOT


def run(
    config: dict[str, Any], env: str = "dev", **settings: Any
) -> list[tuple[str, tuple[Any, ...]]]:
    facts = ClusterFacts(name="c1", env=env, server="https://c1.example.internal:6443")
    context = GuardContext(facts, config, GuardSettings(**settings))
    return [(f.rule, f.path) for f in quantities.check(context)]


def quota(resource: str, value: Any) -> dict[str, Any]:
    return {"namespaces": {"team": {"quotas": {"q": {resource: value}}}}}


def limit(kind: str, resource: str, value: Any) -> dict[str, Any]:
    return {"namespaces": {"team": {"limits": {kind: {resource: value}}}}}


Q = ("namespaces", "team", "quotas", "q")
HOSTILE = [
    ("exponent past the range", quota("cpu", "1E+125"), "quantity-out-of-range", (*Q, "cpu")),
    ("126 digits", quota("memory", "9" * 126), "quantity-out-of-range", (*Q, "memory")),
    ("a 126-digit YAML int", quota("pods", int("9" * 126)), "quantity-out-of-range", (*Q, "pods")),
    ("a YAML float 1e125", quota("cpu", 1e125), "quantity-out-of-range", (*Q, "cpu")),
    ("8Ei is 2^63", quota("memory", "8Ei"), "quantity-out-of-range", (*Q, "memory")),
    ("2^63 bytes", quota("memory", "9223372036854775808"), "quantity-out-of-range", (*Q, "memory")),
    ("under 1n", quota("cpu", "0.1n"), "quantity-out-of-range", (*Q, "cpu")),
    ("negative", quota("cpu", "-1"), "quantity-negative", (*Q, "cpu")),
    ("negative number", quota("cpu", -2), "quantity-negative", (*Q, "cpu")),
    ("negative and huge", quota("cpu", "-1e200"), "quantity-negative", (*Q, "cpu")),
    ("fractional exponent", quota("cpu", "1e1.5"), "quantity-invalid", (*Q, "cpu")),
    ("exponent past int32", quota("cpu", "1e2147483648"), "quantity-invalid", (*Q, "cpu")),
    ("a 5000-digit exponent", quota("cpu", "1e" + "9" * 5000), "quantity-invalid", (*Q, "cpu")),
    ("YAML .inf", quota("cpu", float("inf")), "quantity-invalid", (*Q, "cpu")),
    ("YAML .nan", quota("cpu", float("nan")), "quantity-invalid", (*Q, "cpu")),
    ("lower-case e alone", quota("cpu", "1e"), "quantity-invalid", (*Q, "cpu")),
    (
        "a limit past the range",
        limit("max", "memory", "1E+125"),
        "quantity-out-of-range",
        ("namespaces", "team", "limits", "max", "memory"),
    ),
    (
        "a negative default request",
        limit("defaultRequest", "cpu", "-100m"),
        "quantity-negative",
        ("namespaces", "team", "limits", "defaultRequest", "cpu"),
    ),
]
BENIGN = [
    ("millicores", quota("cpu", "16000m")),
    ("binary suffix", quota("memory", "32Gi")),
    ("7Ei fits", quota("memory", "7Ei")),
    ("2^63-1", quota("memory", "9223372036854775807")),
    ("exponent", quota("cpu", "1e3")),
    ("upper-case E suffix is exa", limit("max", "memory", "1E")),
    ("a YAML int", quota("pods", 200)),
    ("a YAML float", quota("cpu", 1.5)),
    ("leading dot", quota("cpu", ".5")),
    ("zero with a huge exponent is zero", quota("cpu", "0e999")),
    ("1n", limit("min", "cpu", "1n")),
    ("zero", limit("min", "cpu", "0")),
    ("explicit plus", quota("cpu", "+4")),
]


@pytest.mark.parametrize(("why", "config", "rule", "path"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_quantities_are_refused(
    why: str, config: dict[str, Any], rule: str, path: tuple[Any, ...]
) -> None:
    assert run(config) == [(rule, path)]


@pytest.mark.parametrize(("why", "config"), BENIGN, ids=[c[0] for c in BENIGN])
def test_ordinary_quantities_pass(why: str, config: dict[str, Any]) -> None:
    assert run(config) == []


CEILING = [
    # (env, resource, value, refused)
    ("stage", "cpu", "40", True),
    ("stage", "cpu", "16", False),
    ("stage", "cpu", "16000m", False),
    ("stage", "cpu", "16001m", True),
    ("stage", "requests.cpu", "17", True),
    ("stage", "limits.cpu", "17", False),  # limits are not capacity handed out
    ("stage", "memory", "32Gi", False),
    ("stage", "memory", "34359738369", True),  # 32Gi + 1 byte
    ("stage", "requests.memory", "33Gi", True),
    ("stage", "pods", 201, True),
    ("stage", "count/pods", "200", False),
    ("stage", "services", "1000", False),  # no default ceiling for services
    ("dev", "cpu", "40", False),  # dev has its own ceiling in quotas.cue (quota-ceiling)
    ("prod", "memory", "200Gi", False),
]


@pytest.mark.parametrize(("env", "resource", "value", "refused"), CEILING)
def test_an_environment_without_a_ceiling_gets_the_default(
    env: str, resource: str, value: Any, refused: bool
) -> None:
    found = run(quota(resource, value), env=env)
    assert found == ([("quota-default-ceiling", (*Q, resource))] if refused else [])


def test_the_message_names_the_value_the_ceiling_and_the_env() -> None:
    facts = ClusterFacts(name="c1", env="stage", server="https://c1.example.internal:6443")
    context = GuardContext(facts, quota("cpu", "40"), GuardSettings())
    [finding] = quantities.check(context)
    assert "cpu 40 is over the default ceiling 16 for env stage" in finding.message
    assert "quota q in namespace team" in finding.message


def test_the_project_sets_the_default_ceiling() -> None:
    ceiling = {"cpu": "64", "memory": "32Gi", "pods": "200"}
    assert run(quota("cpu", "40"), env="stage", default_quota_ceiling=ceiling) == []
    assert run(quota("cpu", "65"), env="stage", default_quota_ceiling=ceiling) != []


def test_a_long_value_is_cut_short_in_the_message() -> None:
    facts = ClusterFacts(name="c1", env="dev", server="https://c1.example.internal:6443")
    context = GuardContext(facts, quota("cpu", "9" * 5000), GuardSettings())
    [finding] = quantities.check(context)
    assert len(finding.message) < 300 and "(5000 characters)" in finding.message


def test_amounts_are_exact() -> None:
    assert quantities.parse_quantity("16000m").amount == Decimal(16)
    assert quantities.parse_quantity("0.1").amount == Decimal("0.1")
    assert quantities.parse_quantity("1Ki").amount == Decimal(1024)


def test_the_envs_with_a_ceiling_are_those_of_quotas_cue() -> None:
    text = (ROOT / "policies/quotas.cue").read_text()
    block = text[text.index("_quotaCeilings: {") : text.index("\n}", text.index("_quotaCeilings"))]
    assert (
        set(re.findall(r"^\t([a-z0-9-]+): \{", block, re.MULTILINE)) == quantities.CUE_CEILING_ENVS
    )


def test_the_ceiling_aliases_are_those_of_quotas_cue() -> None:
    """quota-ceiling (CUE) and quota-default-ceiling (this guard) read the same names."""
    text = (ROOT / "policies/quotas.cue").read_text()
    start = text.index("_quotaAliases: {")
    block = text[start : text.index("\n}", start)]
    pairs = re.findall(r'^\t"?([a-z./]+)"?:\s+"([a-z]+)"$', block, re.MULTILINE)
    assert dict(pairs) == dict(quantities.CEILING_ALIASES)
