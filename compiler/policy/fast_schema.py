"""A schema rewritten for fastjsonschema, accepting exactly what the original accepts.

fastjsonschema checks `not` and `oneOf` by raising and catching exceptions: a `not`
whose inner schema fails (the common case: a name without a line break) builds an
exception and its message, and `oneOf` tries every branch even after one matched.
The DSL schema guards every name with `not: {type: string, pattern: "\\n"}`, so a
valid cluster config raised ~470 exceptions; its check took 1.8 ms a cluster, 1.3 ms
rewritten (C=1000: ~0.5 s of a compile). Two rewrites, each exact:

- `not: {type: string, pattern: X}` becomes `pattern: \\A(?!(?s:.*?)(?:X))` (in an
  `allOf`, beside a pattern the schema may have): like the `not`, it passes every
  non-string, and a string exactly when `X` is found nowhere in it (fastjsonschema
  searches patterns with Python's `re`, as the lookahead does).
- `oneOf` whose branches each name one JSON type, no two the same (integer counts as
  number), becomes `anyOf`: no value can match two of them, so "exactly one" and "at
  least one" agree, and `anyOf` stops at the first match.

Only schema positions are rewritten (a property named `not` is a name, not a keyword);
a pattern with global flags and a branch beside a `$ref` are left alone. Should the
rewrite not compile (a `$ref` into a rewritten place), `compiled_validator` compiles
the original. The original schema stays what jsonschema reports errors with.
"""

from __future__ import annotations

import re
from typing import Any

# Keywords whose value is a map of names to schemas, one schema, or a list of schemas.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
_SCHEMA_MAPS |= {"dependentSchemas"}
_ONE_SCHEMA = frozenset(
    {"items", "additionalProperties", "propertyNames", "not", "if", "then", "else"}
) | {"contains", "additionalItems", "unevaluatedProperties", "unevaluatedItems"}
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_NEGATED_PATTERN_KEYS = frozenset({"type", "pattern", "description"})


def for_fastjsonschema(schema: Any) -> Any:
    """`schema` with the rewrites above (a new object; `schema` is not changed)."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: for_fastjsonschema(sub) for name, sub in value.items()}
        elif (key in _ONE_SCHEMA or key in _SCHEMA_LISTS) and isinstance(value, list):
            out[key] = [for_fastjsonschema(sub) for sub in value]  # (`items: [...]`: old drafts)
        elif key in _ONE_SCHEMA:
            out[key] = for_fastjsonschema(value)
        else:
            out[key] = value  # data (enum, const, default, required, ...), kept as is
    _positive_pattern(out)
    _any_of_disjoint_types(out)
    return out


def _positive_pattern(schema: dict[str, Any]) -> None:
    negated = schema.get("not")
    if not (
        isinstance(negated, dict)
        and negated.get("type") == "string"
        and isinstance(negated.get("pattern"), str)
        and negated.keys() <= _NEGATED_PATTERN_KEYS
        and isinstance(schema.get("allOf", []), list)
    ):
        return
    if _has_global_flags(negated["pattern"]):
        return  # `(?i)...` must open a pattern: inside the lookahead it is an error
    del schema["not"]
    absent = {"pattern": rf"\A(?!(?s:.*?)(?:{negated['pattern']}))"}
    schema["allOf"] = [*schema.get("allOf", []), absent]


def _any_of_disjoint_types(schema: dict[str, Any]) -> None:
    branches = schema.get("oneOf")
    if not isinstance(branches, list) or not branches or "anyOf" in schema:
        return
    types = []
    for branch in branches:
        named = branch.get("type") if isinstance(branch, dict) else None
        # fastjsonschema ignores a `$ref`'s siblings, so its `type` would not hold.
        if not isinstance(named, str) or "$ref" in branch:
            return
        types.append("number" if named == "integer" else named)
    if len(set(types)) == len(types):
        schema["anyOf"] = schema.pop("oneOf")


def _has_global_flags(pattern: str) -> bool:
    try:
        return re.compile(pattern).flags != re.compile("").flags
    except re.error:
        return True  # not Python's: left to fastjsonschema, as in the original
