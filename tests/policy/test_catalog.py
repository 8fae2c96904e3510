"""The rules table covers every rule the code and the CUE policies can report, and
`docs/rules.md` is what the table makes."""

from __future__ import annotations

import ast
import re

import pytest

from compiler.cli import main
from compiler.policy.catalog import all_rules
from compiler.policy.reference import REFERENCE_FILE, render_reference
from tests.conftest import ROOT

IDS = {r.id for r in all_rules()}


def test_ids_are_unique_and_every_entry_is_complete() -> None:
    rules = all_rules()
    assert len(IDS) == len(rules)
    for rule in rules:
        assert rule.severity in ("error", "warning"), rule.id
        assert all((rule.what, rule.why, rule.reference, rule.fix)), rule.id


def test_every_cue_rule_is_in_the_table() -> None:
    found = set()
    for path in (ROOT / "policies").glob("*.cue"):
        found |= set(re.findall(r'_findings: "([a-z0-9-]+)"', path.read_text()))
    assert found
    assert found - IDS == set()


_RULE_ARGUMENT = {"Finding": 1, "Problem": 1, "GuardFinding": 1, "Violation": 2}


def _rule_literals(tree: ast.AST) -> set[str]:
    """The rule ids written where findings are made: the rule argument of Finding,
    Problem, GuardFinding and Violation, `rule=`, and constants assigned to `rule`."""
    found: set[str] = set()
    for node in ast.walk(tree):
        values: list[ast.expr] = []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            index = _RULE_ARGUMENT.get(node.func.id)
            if index is not None and len(node.args) > index:
                values.append(node.args[index])
            values += [k.value for k in node.keywords if k.arg == "rule"]
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "rule" for t in node.targets
        ):
            values.append(node.value)
        for value in values:
            options = [value.body, value.orelse] if isinstance(value, ast.IfExp) else [value]
            found |= {
                n.value for n in options if isinstance(n, ast.Constant) and isinstance(n.value, str)
            }
    return found


def test_every_rule_id_in_the_python_code_is_in_the_table() -> None:
    found: set[str] = set()
    for path in (ROOT / "compiler").rglob("*.py"):
        found |= _rule_literals(ast.parse(path.read_text()))
    assert {"render.role-missing", "k8s-schema", "calico-ippool-cidr"} <= found
    assert found - IDS == set()


def test_the_reference_is_current() -> None:
    assert (ROOT / REFERENCE_FILE).read_text() == render_reference(all_rules()), (
        "docs/rules.md is out of date: run `gitops-compiler explain-rule --all --markdown "
        "> docs/rules.md`"
    )


def test_explain_rule_prints_one_rule_and_suggests_close_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["explain-rule", "prod-default-deny"]) == 0
    shown = capsys.readouterr().out
    assert "prod-default-deny" in shown and "- fix: `defaultDeny: true`" in shown
    assert main(["explain-rule", "prod-default-dny"]) == 2
    assert "did you mean prod-default-deny" in capsys.readouterr().err


def test_explain_rule_all_lists_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain-rule", "--all"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert listed == IDS
