"""The rules reference: `docs/rules.md` and `explain-rule`, made from the one table."""

from __future__ import annotations

from collections.abc import Sequence

from compiler.policy.guards.base import Rule

REFERENCE_FILE = "docs/rules.md"

_INTRO = """\
# Rules

Generated from the rules table (`compiler/policy/catalog.py` and the guards in
`compiler/policy/guards/`) by `gitops-compiler explain-rule --all --markdown`;
`make test` checks that this file is current. Every finding names its rule id,
the cluster, the path in the DSL and the layer that set the value.

A finding of severity `error` fails `validate`, `compile` and `publish` (exit 1)
unless a live waiver covers it; a `warning` is reported and does not fail.

## Waivers

`policies/waivers.yaml` lists exceptions: `rule`, `match` (`cluster`,
`namespace`, `object`: shell patterns against the cluster name, the namespace
and the DSL path of the finding), `reason`, `owner`, `expires` (YYYY-MM-DD, the
last day it holds). A waived finding is reported as waived (text, JSON, GitHub
annotations, the PR body) and does not fail; past its expiry it fails again
with `waiver-expired`; a waiver that covers nothing is reported as
`waiver-stale`. Rules marked "waivable: no" cannot be waived: such a waiver is
refused (`waiver-invalid`).

| rule | severity | waivable | what |
|---|---|---|---|
"""


def render_reference(rules: Sequence[Rule]) -> str:
    lines = [_INTRO.rstrip("\n")]
    for rule in rules:
        waivable = "yes" if rule.waivable else "no"
        lines.append(
            f"| [`{rule.id}`](#{rule.id}) | {rule.severity} | {waivable} | {_cell(rule.what)} |"
        )
    for rule in rules:
        lines += ["", describe_rule(rule, heading="##")]
    return "\n".join(lines) + "\n"


def describe_rule(rule: Rule, *, heading: str = "") -> str:
    """One rule, as `explain-rule ID` prints it (and as its section of the reference)."""
    title = f"{heading} {rule.id}" if heading else rule.id
    return "\n".join(
        [
            title,
            "",
            f"- severity: {rule.severity}; waivable: {'yes' if rule.waivable else 'no'}",
            f"- what: {rule.what}",
            f"- why: {rule.why}",
            f"- reference: {rule.reference}",
            f"- fix: `{rule.fix}`",
        ]
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
