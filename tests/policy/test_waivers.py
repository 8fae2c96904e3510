"""Waivers: live ones move a finding to the notices, expired ones fail with their own
finding, stale ones are reported, unwaivable rules refuse a waiver."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from compiler.errors import InputError
from compiler.policy import Violation
from compiler.policy.catalog import all_rules
from compiler.policy.waivers import apply_waivers, load_waivers

TODAY = datetime.date(2026, 12, 5)
RULES = {r.id: r for r in all_rules()}
FINDING = Violation(
    "prod-eks-1", "namespaces.monitoring.quotas", "prod-quota-required", "no quota", "x.yaml:3"
)


def waivers_file(tmp_path: Path, text: str) -> Path:
    (tmp_path / "waivers.yaml").write_text(text)
    return tmp_path


def entry(rule: str = "prod-quota-required", expires: str = "2026-12-31", **match: str) -> str:
    shown = ", ".join(f"{k}: {v!r}" for k, v in match.items())
    return (
        f"- rule: {rule}\n  match: {{{shown}}}\n  reason: ticket OPS-1\n"
        f'  owner: platform@example.com\n  expires: "{expires}"\n'
    )


def run(tmp_path: Path, text: str, findings: list[Violation]) -> tuple[list[str], list[str]]:
    waivers = load_waivers(waivers_file(tmp_path, text), list(RULES.values()))
    out = apply_waivers(findings, waivers, rules=RULES, clusters=["prod-eks-1"], today=TODAY)
    return [f"{v.rule}:{v.severity}" for v in out.failing], [
        f"{v.rule}:{v.severity}" for v in out.notices
    ]


@pytest.mark.parametrize(
    ("match", "waived"),
    [
        ({}, True),
        ({"cluster": "prod-*"}, True),
        ({"cluster": "prod-*", "namespace": "monitoring"}, True),
        ({"object": "namespaces.monitoring.*"}, True),
        ({"cluster": "dev-*"}, False),
        ({"namespace": "kube-system"}, False),
    ],
)
def test_a_live_waiver_covers_what_it_matches(
    tmp_path: Path, match: dict[str, str], waived: bool
) -> None:
    failing, notices = run(tmp_path, entry(**match), [FINDING])
    if waived:
        assert (failing, notices) == ([], ["prod-quota-required:waived"])
    else:
        assert failing == ["prod-quota-required:error"]


def test_the_expiry_day_is_still_live_and_the_next_fails(tmp_path: Path) -> None:
    assert run(tmp_path, entry(expires="2026-12-05"), [FINDING])[0] == []
    failing, _ = run(tmp_path, entry(expires="2026-12-04"), [FINDING])
    assert failing == ["prod-quota-required:error", "waiver-expired:error"]


def test_a_waiver_that_covers_nothing_is_stale(tmp_path: Path) -> None:
    failing, notices = run(tmp_path, entry(), [])
    assert (failing, notices) == ([], ["waiver-stale:warning"])


def test_a_waiver_for_other_clusters_is_not_stale_in_this_run(tmp_path: Path) -> None:
    assert run(tmp_path, entry(cluster="dev-*"), []) == ([], [])


@pytest.mark.parametrize("rule", ["rbac-no-cluster-admin", "rbac-no-system-subjects", "nope"])
def test_an_unwaivable_or_unknown_rule_refuses_the_waiver(tmp_path: Path, rule: str) -> None:
    finding = Violation("prod-eks-1", "namespaces.x.access.y.clusterRole", rule, "m")
    failing, _ = run(tmp_path, entry(rule=rule), [finding])
    assert "waiver-invalid:error" in failing
    if rule != "nope":
        assert f"{rule}:error" in failing


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- rule: x\n", "missing"),
        (entry().replace('"2026-12-31"', "soon"), "expires: a date"),
        (entry().replace("  owner: platform@example.com\n", "  owner: ''\n"), "owner"),
        ("rule: x\n", "a list of waivers"),
    ],
)
def test_a_malformed_waiver_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        load_waivers(waivers_file(tmp_path, text), list(RULES.values()))
    assert "policies/waivers.yaml:" in str(caught.value)
