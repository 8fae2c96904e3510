"""`fast_schema`: the schema fastjsonschema compiles accepts exactly what the original
accepts, and raises no exception on the way for a valid config.

Verdicts are compared three ways on every document: fastjsonschema of the original,
fastjsonschema of the rewrite, jsonschema of the original (the validator that reports
the errors). The documents are hand-picked edge values and, for the DSL's own schema,
every string and number of the examples' merged configs changed one at a time in the
ways the rewritten keywords are about (a line break anywhere, a sign, a type).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import fastjsonschema
import jsonschema
import pytest

from compiler.layers import load_inputs
from compiler.pipeline import merge_cluster
from compiler.policy.compiled_validators import compiled_validator
from compiler.policy.fast_schema import for_fastjsonschema
from compiler.project import load_project
from compiler.sources import Pin
from compiler.sources.snapshot import SnapshotStore
from tests.conftest import ROOT

NAME = {"type": "string", "pattern": "^[a-z]+$", "not": {"type": "string", "pattern": "\\n"}}
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "name": NAME,
        "either": {"not": {"type": "string", "pattern": "a|b", "description": "no a, no b"}},
        "anchored": {"not": {"type": "string", "pattern": "^[^/]{3,}/"}},
        "quantity": {
            "oneOf": [
                {"type": "string", "pattern": "^[0-9]+$", "not": NAME["not"]},
                {"type": "number", "minimum": 0},
            ]
        },
        "overlapping": {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 2}]},
        "required": {"oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
        "not": {"type": "string"},  # a property named like the keyword
        "keys": {"type": "object", "propertyNames": NAME},
    },
}
VALUES = [
    "abc", "abc\n", "ab\nc", "\n", "", "a", "b", "xyz", "xay", "abc/", "ab/c", "a/bcd/", "\nabc/",
    "12", "12\n", "1\n2", 0, 3, -1, 2.5, -0.5, True, None, [], {}, {"a": 1}, {"a": 1, "b": 2},
]  # fmt: skip


def _verdicts(document: Any, *validators: Any) -> list[bool]:
    found = []
    for validate in validators:
        try:
            validate(document)
        except fastjsonschema.JsonSchemaValueException:
            found.append(False)
        else:
            found.append(True)
    return found


def _three_ways(schema: dict[str, Any]) -> tuple[Any, Any, Any]:
    full = jsonschema.Draft202012Validator(schema)
    return (
        fastjsonschema.compile(schema),
        fastjsonschema.compile(for_fastjsonschema(schema)),
        lambda document: [_raise(e) for e in full.iter_errors(document)][:0],
    )


def _raise(error: jsonschema.ValidationError) -> None:
    raise fastjsonschema.JsonSchemaValueException(error.message)


@pytest.mark.parametrize("key", sorted(SCHEMA["properties"]))
def test_each_keyword_gives_the_same_verdicts(key: str) -> None:
    original, rewritten, full = _three_ways(SCHEMA)
    for value in VALUES:
        document = {key: value}
        verdicts = _verdicts(document, original, rewritten)
        assert verdicts[0] == verdicts[1], (key, value)
        if isinstance(value, str) and "\n" in value and key == "name":
            continue  # jsonschema's `$` matches before a last line break: the `not` is why
        assert _verdicts(document, full)[0] == verdicts[0], (key, value)
    keys = {f"{v}": 1 for v in VALUES if isinstance(v, str)}
    assert _verdicts({"keys": keys}, original)[0] is False  # line breaks among them
    assert _verdicts({"keys": keys}, rewritten)[0] is False


def test_only_schema_positions_are_rewritten() -> None:
    rewritten = for_fastjsonschema(SCHEMA)
    properties = rewritten["properties"]
    assert properties["not"] == {"type": "string"}  # a property, not the keyword
    assert "not" not in properties["name"] and properties["name"]["pattern"] == "^[a-z]+$"
    assert "anyOf" in properties["quantity"] and "oneOf" not in properties["quantity"]
    assert "oneOf" in properties["overlapping"]  # integer is a number: not disjoint
    assert "oneOf" in properties["required"]  # no types: both may hold
    assert "not" not in properties["keys"]["propertyNames"]
    assert SCHEMA["properties"]["name"]["not"]  # the original is left as it was


def _example_configs() -> list[Any]:
    project = load_project(ROOT)
    store = SnapshotStore(ROOT / "examples")
    inputs = load_inputs(store, project, store.list_clusters(), Pin())
    return [merge_cluster(c, project).value for c in inputs]


def _variants(document: Any) -> Iterator[Any]:
    """`document` with one leaf changed, for every leaf, each way."""
    paths: list[tuple[Any, ...]] = []

    def walk(value: Any, path: tuple[Any, ...]) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(sub, (*path, key))
        elif isinstance(value, list):
            for index, sub in enumerate(value):
                walk(sub, (*path, index))
        else:
            paths.append(path)

    walk(document, ())
    for path in paths:
        leaf = _at(document, path)
        changes = [f"{leaf}\n", f"\n{leaf}", f"{leaf}\nx"] if isinstance(leaf, str) else []
        if isinstance(leaf, int | float) and not isinstance(leaf, bool):
            changes += [-leaf - 1, str(leaf), f"{leaf}\n", True]
        for change in changes:
            changed = copy.deepcopy(document)
            parent = _at(changed, path[:-1])
            parent[path[-1]] = change
            yield changed


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


def test_the_dsl_schema_rewritten_agrees_on_every_changed_leaf_of_the_examples() -> None:
    schema = json.loads((ROOT / "policies" / "cluster-config.schema.json").read_text())
    original = fastjsonschema.compile(schema)
    rewritten = fastjsonschema.compile(for_fastjsonschema(schema))
    compared = refused = 0
    for config in _example_configs():
        assert _verdicts(config, original, rewritten) == [True, True]
        for variant in _variants(config):
            verdicts = _verdicts(variant, original, rewritten)
            assert verdicts[0] == verdicts[1], json.dumps(variant)[:300]
            compared += 1
            refused += not verdicts[0]
    assert compared > 500 and refused > 100  # the changes reach the rewritten keywords


def test_a_valid_config_raises_only_for_the_bindings_branches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What is left: a binding's "one of role, clusterRole" and "any of the subject
    lists" try a branch that lacks its key (`required`, no message worth a rewrite)."""
    schema = json.loads((ROOT / "policies" / "cluster-config.schema.json").read_text())
    original = fastjsonschema.compile(schema)
    rewritten = fastjsonschema.compile(for_fastjsonschema(schema))
    raised: list[str] = []
    real_init = fastjsonschema.JsonSchemaValueException.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        raised.append(str(kwargs.get("rule")))
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(fastjsonschema.JsonSchemaValueException, "__init__", counting)
    configs = _example_configs()
    for config in configs:
        original(config)
    before = list(raised)
    raised.clear()
    for config in configs:
        rewritten(config)
    assert set(raised) == {"required"}
    assert len(before) > 10 * len(raised)  # 222 and 13 when written


def _message(validate: Any, document: Any) -> str | None:
    try:
        validate(document)
    except fastjsonschema.JsonSchemaValueException as error:
        return f"{error.message} | {error.name} | {error.rule}"
    return None


def test_the_compiled_code_without_locals_says_what_fastjsonschema_says() -> None:
    """`compiled_validator` turns the generated `"...".format(**locals())` into
    f-strings: the same messages and paths, every one of the variants."""
    schema = json.loads((ROOT / "policies" / "cluster-config.schema.json").read_text())
    as_generated = fastjsonschema.compile(for_fastjsonschema(schema))
    ours = compiled_validator(
        schema, json.dumps(schema), use_default=True, use_formats=True, cache_dir=None
    )
    messages = 0
    for config in _example_configs():
        for variant in _variants(config):
            said = _message(as_generated, variant)
            assert _message(ours, variant) == said
            messages += said is not None
    assert messages > 100


@pytest.mark.parametrize(
    ("schema", "document"),
    [
        # A global flag must open a pattern: not rewritten into the lookahead.
        ({"not": {"type": "string", "pattern": "(?i)abc"}}, "xABCx"),
        # A $ref into a place the rewrite changes: the original is compiled.
        (
            {
                "properties": {
                    "a": {"not": {"type": "string", "pattern": "b"}},
                    "c": {"$ref": "#/properties/a/not"},
                }
            },
            {"c": "abc"},
        ),
        (
            {
                "properties": {
                    "a": {"oneOf": [{"type": "string"}, {"type": "object"}]},
                    "c": {"$ref": "#/properties/a/oneOf/0"},
                }
            },
            {"c": 1},
        ),
        # fastjsonschema ignores a $ref's siblings: this oneOf's types are not disjoint.
        (
            {
                "$defs": {"any": {}},
                "oneOf": [{"$ref": "#/$defs/any", "type": "string"}, {"type": "object"}],
            },
            {},
        ),
        # A property named like the generated code: its path in messages kept.
        (
            {
                "properties": {
                    'a"b': {"additionalProperties": {"type": "string"}},
                    "format(**locals())": {"type": "string"},
                }
            },
            {'a"b': {"k": 1}, "format(**locals())": 2},
        ),
    ],
)
def test_what_the_rewrites_must_leave_alone(schema: dict[str, Any], document: Any) -> None:
    ours = compiled_validator(
        schema, json.dumps(schema), use_default=False, use_formats=False, cache_dir=None
    )
    as_is = fastjsonschema.compile(schema, use_default=False, use_formats=False)
    assert _message(ours, document) == _message(as_is, document)
    for key in document if isinstance(document, dict) else ():
        single = {key: document[key]}
        assert _message(ours, single) == _message(as_is, single)
