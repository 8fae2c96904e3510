"""What a JSON Schema error says to a person: the rule broken, not the schema's source.

jsonschema reports a failed `not` as `'a\\nb' should not be valid under {'description':
..., 'type': 'string', 'pattern': '\\\\n'}`: a fragment of the schema, not the rule. The
DSL's schemas describe each `not` (a single line, no `default` project): that
description is the message. Light on purpose: the layer loader imports it, and
jsonschema itself is imported only where an error is found.
"""

from __future__ import annotations

from typing import Any


def schema_message(error: Any) -> str:
    """The message of a jsonschema `ValidationError`, the rule described where it can be."""
    rule = error.validator_value
    if error.validator == "not" and isinstance(rule, dict) and rule.get("description"):
        return f"{error.instance!r} is not allowed: it must be {rule['description']}"
    return str(error.message)
