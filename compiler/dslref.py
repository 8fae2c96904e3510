"""`docs/dsl.md`, the DSL reference, generated from the DSL's JSON Schema (issue 20).

The schema (`policies/cluster-config.schema.json`) carries each key's
description; this adds its type, default and constraints, the objects it
renders to (`RENDERS`), and an example: the first value the example project
(`examples/` and `overlays/`) sets there, else one made from the schema.
`tests/test_dslref.py` checks that the file is current; regenerate it with
`python -m compiler.dslref docs/dsl.md`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from compiler.policy.rulesets import BUILTIN_DIR, SCHEMA_FILE

# What a key renders to, by its path in the DSL (`<name>` stands for any map key).
RENDERS: Mapping[str, str] = {
    "namespaces.<name>": "`v1` Namespace `namespaces/<ns>/namespace.yaml`",
    "namespaces.<name>.labels": "the Namespace's `metadata.labels`",
    "namespaces.<name>.annotations": "the Namespace's `metadata.annotations`",
    "namespaces.<name>.quotas.<name>": "`v1` ResourceQuota (the value is `spec.hard`)",
    "namespaces.<name>.limits": "`v1` LimitRange `limitrange.yaml` (type Container)",
    "namespaces.<name>.access.<name>": "`rbac.authorization.k8s.io/v1` RoleBinding",
    "namespaces.<name>.access.<name>.role": "a `Role` in this namespace, from the template",
    "namespaces.<name>.defaultDeny": "`networking.k8s.io/v1` NetworkPolicy `default-deny`",
    "namespaces.<name>.networkPolicies.<name>": "`networking.k8s.io/v1` NetworkPolicy",
    "namespaces.<name>.calicoPolicies.<name>": "`projectcalico.org/v3` NetworkPolicy",
    "roles.<name>": "`rbac.authorization.k8s.io/v1` Role, in each namespace that binds it",
    "calico.ipPools.<name>": "`projectcalico.org/v3` IPPool `calico/ippool-<name>.yaml`",
    "calico.globalNetworkPolicies.<name>": "`projectcalico.org/v3` GlobalNetworkPolicy",
    "calico.bgpConfiguration": "`projectcalico.org/v3` BGPConfiguration `default`",
    "calico.felixConfiguration": "`projectcalico.org/v3` FelixConfiguration `default`",
    "addons.<name>": "`addons/<name>.json`: an Argo CD Application (the addons ApplicationSet)",
}
_CONSTRAINTS = (
    ("pattern", "matches `{}`"), ("minLength", "at least {} characters"),
    ("maxLength", "at most {} characters"), ("minimum", ">= {}"), ("maximum", "<= {}"),
    ("minItems", "at least {} entries"), ("maxItems", "at most {} entries"),
    ("minProperties", "at least {} keys"), ("maxProperties", "at most {} keys"),
)  # fmt: skip


class _Schema:
    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.root = schema

    def resolve(self, node: Mapping[str, Any]) -> dict[str, Any]:
        """`node` with its `$ref` followed; its own keys (a description) win."""
        merged = dict(node)
        while "$ref" in merged:
            target = self.root["$defs"][merged.pop("$ref").rpartition("/")[2]]
            merged = {**target, **merged}
        return merged


def _type(node: Mapping[str, Any], schema: _Schema) -> str:
    if "enum" in node:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "type" in node:
        kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
        shown = " or ".join(str(k) for k in kinds)
        if "object" in kinds and "additionalProperties" in node and not node.get("properties"):
            extra = node["additionalProperties"]
            if isinstance(extra, dict):
                return f"map of name → {_type(schema.resolve(extra), schema)}"
        if "array" in kinds and isinstance(node.get("items"), dict):
            return f"list of {_type(schema.resolve(node['items']), schema)}"
        return shown
    for key in ("oneOf", "anyOf"):
        if key in node and all(isinstance(n, dict) for n in node[key]):
            forms = [_type(schema.resolve(n), schema) for n in node[key]]
            if all(forms):
                return " or ".join(dict.fromkeys(forms))
    return "any"


def _constraints(node: Mapping[str, Any]) -> str:
    found = [text.format(node[key]) for key, text in _CONSTRAINTS if key in node]
    if node.get("uniqueItems"):
        found.append("no repeats")
    if node.get("additionalProperties") is False:
        found.append("known keys only")
    if node.get("required"):
        found.append("requires " + ", ".join(f"`{k}`" for k in node["required"]))
    return "; ".join(found)


def _entries(
    node: Mapping[str, Any], path: str, schema: _Schema, seen: frozenset[str] = frozenset()
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every key below `node`, depth first, as (dotted path, resolved schema)."""
    node = schema.resolve(node)
    for name, child in sorted(node.get("properties", {}).items()):
        yield from _entry(f"{path}.{name}" if path else name, child, schema, seen)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and not node.get("properties"):
        yield from _entry(f"{path}.<name>", extra, schema, seen)


def _entry(
    path: str, child: Mapping[str, Any], schema: _Schema, seen: frozenset[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    ref = child.get("$ref", "")
    resolved = schema.resolve(child)
    yield path, resolved
    if ref and ref in seen:  # a recursive definition: described once
        return
    seen = seen | {ref} if ref else seen
    items = resolved.get("items")
    if isinstance(items, dict) and schema.resolve(items).get("properties"):
        yield from _entries(items, f"{path}[]", schema, seen)
    yield from _entries(resolved, path, schema, seen)


def _examples(project: Path, schema: _Schema) -> dict[str, Any]:
    """The first value the example project sets at each path (map keys as `<name>`)."""
    found: dict[str, Any] = {}
    for path in sorted(p for d in ("examples", "overlays") for p in (project / d).rglob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            continue
        configs = [v.get("config") for v in data["versions"]] if "versions" in data else [data]
        for config in configs:
            _collect(config, schema.root, "", found, schema)
    return found


def _collect(
    value: Any, node: Mapping[str, Any], path: str, found: dict[str, Any], schema: _Schema
) -> None:
    if path and value is not None:
        found.setdefault(path, value)
    node = schema.resolve(node)
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            _collect(item, node["items"], f"{path}[]", found, schema)
    if not isinstance(value, dict):
        return
    properties, extra = node.get("properties", {}), node.get("additionalProperties")
    for key, child in value.items():
        if key in properties:
            _collect(child, properties[key], f"{path}.{key}" if path else key, found, schema)
        elif isinstance(extra, dict) and not properties:
            _collect(child, extra, f"{path}.<name>" if path else "<name>", found, schema)


def _made_up(node: Mapping[str, Any]) -> Any:
    """An example from the schema alone, for keys the example project does not set."""
    for key in ("default", "const"):
        if key in node:
            return node[key]
    if node.get("enum"):
        return node["enum"][0]
    kind = node.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "string" and "a-z0-9" in str(node.get("pattern", "")):
        return "example"  # a DNS-1123 name
    return {"boolean": True, "integer": node.get("minimum", 1), "number": 1, "array": [],
            "object": {}}.get(str(kind), "...")  # fmt: skip


def _example(path: str, value: Any) -> str:
    """`value` as YAML at `path`, nested as it is written in a layer document."""
    doc: Any = value
    for key in reversed(path.replace("<name>", "example").split(".")):
        doc = {key.removesuffix("[]"): [doc] if key.endswith("[]") else doc}
    text = yaml.safe_dump(doc, default_flow_style=None, sort_keys=False, width=88)
    return text.rstrip("\n")


def _section(
    path: str, node: Mapping[str, Any], examples: Mapping[str, Any], schema: _Schema
) -> list[str]:
    lines = [f"### `{path}`", ""]
    if node.get("description"):
        lines += [str(node["description"]).strip(), ""]
    facts = [("type", _type(node, schema))]
    if "default" in node:
        facts.append(("default", f"`{json.dumps(node['default'])}`"))
    if constraints := _constraints(node):
        facts.append(("constraints", constraints))
    if path in RENDERS:
        facts.append(("renders to", RENDERS[path]))
    lines += [f"- {name}: {text}" for name, text in facts]
    value = examples.get(path, _made_up(node))
    lines += ["", "```yaml", _example(path, value), "```", ""]
    return lines


def render(schema_doc: Mapping[str, Any], project: Path) -> str:
    schema = _Schema(schema_doc)
    examples = _examples(project, schema)
    lines = [
        "# The DSL reference",
        "",
        "<!-- Generated from policies/cluster-config.schema.json by "
        "`python -m compiler.dslref docs/dsl.md`; do not edit. -->",
        "",
        str(schema_doc.get("description", "")),
        "",
        "A layer document (an overlay file, a DynamoDB item's `config`) sets any part of",
        "this; layers merge as JSON Merge Patch (`null` deletes). `<name>` stands for a",
        "key of your choosing. Examples come from this repository's example project.",
        "",
    ]
    top = None
    for path, node in _entries(schema_doc, "", schema):
        head = path.split(".")[0]
        if head != top:
            lines += [f"## `{head}`", ""]
            top = head
        lines += _section(path, node, examples, schema)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str]) -> int:
    schema = json.loads((BUILTIN_DIR / SCHEMA_FILE).read_text(encoding="utf-8"))
    text = render(schema, Path(__file__).resolve().parent.parent)
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
