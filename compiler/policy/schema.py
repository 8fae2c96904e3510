"""The DSL's JSON Schema (`policies/cluster-config.schema.json`) on merged configs.

Merged configs go through a `TwoStageValidator`; a layer about to be written
(`check_patch`) through jsonschema alone.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.merge import MergeResult
from compiler.model import DocPath, format_path
from compiler.policy import Violation
from compiler.policy.schema_messages import schema_message
from compiler.policy.validator import TwoStageValidator
from compiler.provenance import entry_blame, key_blame, where_set

if TYPE_CHECKING:
    import jsonschema

SCHEMA_FILE = "cluster-config.schema.json"
_MAX_MESSAGE = 240
# Configs checked by jsonschema alone before the validator is compiled: compiling
# costs ~0.15 s, as much as jsonschema on a few dozen configs, and the compiled
# validator serves every cluster after.
_COMPILE_AFTER = 8


class ConfigSchema:
    """Compiled once per run (or read from `cache_dir`), used for every cluster."""

    def __init__(self, policies: Path, *, cache_dir: Path | None = None) -> None:
        path = policies / SCHEMA_FILE
        schema = json.loads(path.read_text(encoding="utf-8"))
        self._schema = schema
        # jsonschema (~70 ms to import) only when a config needs it (`TwoStageValidator`).
        self._validator = TwoStageValidator(
            schema, lambda: _with_formats(schema), compile_after=_COMPILE_AFTER, cache_dir=cache_dir
        )
        self._patch: jsonschema.protocols.Validator | None = None

    def check_patch(
        self, document: Any, where: Callable[[DocPath, bool], str] = lambda path, key: ""
    ) -> list[str]:
        """Check one layer before it is written: known keys and types, not completeness.

        A layer is a merge patch: nulls delete (they are valid wherever a key
        is) and required keys may come from another layer. `where(path, about_key)`
        prefixes each message (a file's `name:line: `).
        """
        if self._patch is None:
            self._patch = _with_formats(_without_required(self._schema))
        stripped = _strip_nulls(document)
        found = sorted(_located(self._patch.iter_errors(stripped)), key=lambda e: e[:2])
        return [f"{where(path, key)}{format_path(path)}: {message}" for path, message, key in found]

    def is_valid(self, config: Any) -> bool:
        return self._validator.validate(config) is None

    def check(self, cluster: str, merged: MergeResult) -> list[Violation]:
        failure = self._validator.validate(merged.value)
        if failure is None:
            return []
        found = {
            Violation(cluster, format_path(path), "schema", message, _blame(merged, path, key))
            for path, message, key in _located(failure.errors)
        }
        return sorted(found)


def _with_formats(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    import jsonschema

    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _blame(merged: MergeResult, path: DocPath, key: bool) -> str:
    """The layer to fix: for a finding on a key (unknown, or a bad name), each layer
    that wrote it at the key's own line; for a map, each layer once, at the first line
    it wrote under it, highest precedence first, rather than every leaf's line in
    stack order."""
    if key:
        return key_blame(merged, path)
    if path in merged.provenance:
        return where_set(merged, path)
    return entry_blame(merged, path)


def _located(
    errors: Iterable[jsonschema.ValidationError],
) -> Iterator[tuple[DocPath, str, bool]]:
    """Each error's path and message, and whether it is about the key at that path
    (unknown, or a bad name) rather than its value."""
    for error in errors:
        path: DocPath = tuple(error.absolute_path)
        if error.validator == "additionalProperties":
            for key in _unexpected_keys(error):
                yield (*path, key), f"unknown key {key!r}{_closest_key(error, key)}", True
        elif "propertyNames" in error.absolute_schema_path:
            # jsonschema reports the inner keyword (pattern, maxLength) with the
            # parent's path and the offending key as the instance.
            yield (*path, str(error.instance)), _message(error, name=True), True
        else:
            yield path, _message(error), False


def _closest_key(error: jsonschema.ValidationError, key: str) -> str:
    """`; did you mean `quotas`?` (issue 17, item 10): a typo of a known key is the
    usual cause, and the fix is in the message."""
    known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    close = difflib.get_close_matches(key, list(known), n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(f'`{c}`' for c in close)}?" if close else ""


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def _without_required(schema: Any) -> Any:
    """The schema of a patch: no `required`, and no choice made only of `required`s."""
    if isinstance(schema, list):
        return [_without_required(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "required":
            continue
        value = _without_required(value)
        if key in ("oneOf", "anyOf") and all(v == {} for v in value):
            continue
        out[key] = value
    return out


def _unexpected_keys(error: jsonschema.ValidationError) -> list[str]:
    known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    patterns = error.schema.get("patternProperties", {}) if isinstance(error.schema, dict) else {}
    return sorted(
        key
        for key in error.instance
        if key not in known and not any(re.search(p, key) for p in patterns)
    )


def _message(error: jsonschema.ValidationError, *, name: bool = False) -> str:
    """jsonschema's message, shortened; names get the rule they break."""
    if name:
        text = f"name {error.instance!r} is not allowed: {_odd_character(error)}{error.message}"
    elif error.validator in ("oneOf", "anyOf"):
        described = error.schema.get("description") if isinstance(error.schema, dict) else None
        text = f"does not match the allowed forms{': ' + described if described else ''}"
    else:
        text = _odd_character(error) + schema_message(error)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _odd_character(error: jsonschema.ValidationError) -> str:
    """Why a string that looks right does not match: its first character outside
    printable ASCII (a Cyrillic look-alike, a zero-width space), ahead of the pattern."""
    if error.validator != "pattern" or not isinstance(error.instance, str):
        return ""
    for index, char in enumerate(error.instance):
        if not " " <= char <= "~":
            return f"character {index + 1} is U+{ord(char):04X}, not printable ASCII; "
    return ""
