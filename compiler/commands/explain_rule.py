"""`explain-rule ID` (or `--all`): a rule of the reference; `--markdown` prints
`docs/rules.md` whole."""

from __future__ import annotations

import difflib

from compiler.errors import EXIT_OK, UsageError
from compiler.policy.catalog import all_rules, find_rule
from compiler.policy.reference import describe_rule, render_reference


def explain_rule_command(*, rule_id: str | None, all_rules_wanted: bool, markdown: bool) -> int:
    rules = all_rules()
    if markdown:
        print(render_reference(rules), end="")
        return EXIT_OK
    if all_rules_wanted or rule_id is None:
        width = max(len(r.id) for r in rules)
        for rule in rules:
            print(f"{rule.id:<{width}}  {rule.severity:<7}  {rule.what}")
        return EXIT_OK
    found = find_rule(rule_id)
    if found is None:
        close = difflib.get_close_matches(rule_id, [r.id for r in rules], n=3)
        hint = (
            f"; did you mean {', '.join(close)}?" if close else "; `explain-rule --all` lists them"
        )
        raise UsageError(f"no rule {rule_id!r}{hint}")
    print(describe_rule(found))
    return EXIT_OK
