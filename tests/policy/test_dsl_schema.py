"""The JSON Schemas of the DSL and of the cluster facts, tested data first.

Like check-jsonschema's acceptance tests: every file in
`tests/cases/schema/positive/` must be accepted, every file in
`tests/cases/schema/negative/` refused, by both validators the compiler uses
(fastjsonschema on the hot path, jsonschema for the detailed errors). A
negative case starts with `# expect: <path>`: jsonschema must report an error
at that path (or below it). A name refused by `propertyNames`, an unknown key
refused by `additionalProperties: false` and a missing `required` key are
located at the key itself, not at the object that holds it.

The cases are read with `yaml.safe_load`, not with the project's loader, so
that the schema is tested alone.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema
import pytest
import yaml

from compiler.policy.fast_schema import for_fastjsonschema

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
CASES = ROOT / "tests" / "cases" / "schema"
EXPECT = re.compile(r"# expect: (\S.*)")

Validator = Callable[[Any], Any]


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((POLICIES / name).read_text(encoding="utf-8"))
    return schema


CONFIG_SCHEMA = _schema("cluster-config.schema.json")
FACTS_SCHEMA = _schema("cluster-facts.schema.json")


def _full(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _fast(schema: dict[str, Any]) -> dict[str, Validator]:
    """fastjsonschema, compiled from the file as it is, from a copy without `$schema`,
    and from the file as the compiler compiles it (`fast_schema`'s rewrite)."""
    without = {k: v for k, v in schema.items() if k != "$schema"}
    return {
        "as-is": fastjsonschema.compile(schema),
        "no-$schema": fastjsonschema.compile(without),
        "rewritten": fastjsonschema.compile(for_fastjsonschema(schema)),
    }


CONFIG_FULL = _full(CONFIG_SCHEMA)
CONFIG_FAST = _fast(CONFIG_SCHEMA)
FACTS_FULL = _full(FACTS_SCHEMA)
FACTS_FAST = _fast(FACTS_SCHEMA)


def _cases(kind: str) -> list[Any]:
    return [pytest.param(path, id=path.stem) for path in sorted((CASES / kind).glob("*.yaml"))]


def _fast_error(fast: Validator, document: Any) -> fastjsonschema.JsonSchemaValueException | None:
    try:
        fast(document)
    except fastjsonschema.JsonSchemaValueException as error:
        return error
    return None


def _dotted(path: Any) -> str:
    return ".".join(str(part) for part in path)


def _locations(error: jsonschema.ValidationError) -> Iterator[str]:
    """Where an error points, with the offending key for errors about keys."""
    path = list(error.absolute_path)
    if "propertyNames" in error.absolute_schema_path:
        yield _dotted([*path, error.instance])
    elif error.validator == "additionalProperties" and error.validator_value is False:
        known = error.schema.get("properties", {})
        patterns = error.schema.get("patternProperties", {})
        for key in error.instance:
            if key not in known and not any(re.search(p, key) for p in patterns):
                yield _dotted([*path, key])
    elif error.validator == "required":
        for key in error.validator_value:
            if key not in error.instance:
                yield _dotted([*path, key])
    else:
        yield _dotted(path)


def _at_or_below(location: str, expect: str) -> bool:
    return location == expect or location.startswith(expect + ".")


# -- the merged configuration ------------------------------------------------


@pytest.mark.parametrize("path", _cases("positive"))
def test_positive_case_is_accepted(path: Path) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = [f"{_dotted(e.absolute_path)}: {e.message}" for e in CONFIG_FULL.iter_errors(document)]
    assert errors == []
    for variant, fast in CONFIG_FAST.items():
        error = _fast_error(fast, document)
        assert error is None, f"fastjsonschema ({variant}): {error}"


@pytest.mark.parametrize("path", _cases("negative"))
def test_negative_case_is_refused_at_the_expected_path(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = EXPECT.fullmatch(text.splitlines()[0])
    assert found, f"{path.name}: the first line must be '# expect: <path>'"
    expect = found.group(1).strip()
    document = yaml.safe_load(text)

    errors = list(CONFIG_FULL.iter_errors(document))
    locations = sorted({loc for error in errors for loc in _locations(error)})
    assert errors, "jsonschema accepted it"
    assert any(_at_or_below(loc, expect) for loc in locations), (
        f"no error at {expect!r}; errors: "
        + "; ".join(f"{_dotted(e.absolute_path)}: {e.message}" for e in errors)
    )

    for variant, fast in CONFIG_FAST.items():
        error = _fast_error(fast, document)
        assert error is not None, f"fastjsonschema ({variant}) accepted it"
        # fastjsonschema stops at the first error: it is on the way to the expected one.
        where = _dotted(error.path[1:])  # path[0] is "data"
        assert where == "" or _at_or_below(expect, where), f"fastjsonschema: {error.message}"


def test_every_negative_case_reports_one_thing() -> None:
    """A negative case that breaks two rules proves less than it seems."""
    for path in sorted((CASES / "negative").glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        errors = list(CONFIG_FULL.iter_errors(document))
        assert len(errors) == 1, f"{path.name}: {[e.message for e in errors]}"


# -- CIDRs: the pattern against the standard library -------------------------

CIDRS = [
    "0.0.0.0/0",
    "10.0.0.0/8",
    "192.168.0.0/16",
    "255.255.255.255/32",
    "172.16.0.0/12",
    "10.0.0.1/8",
    "300.1.1.1/8",
    "10.0.0.0/33",
    "10.0.0/8",
    "10.0.0.0.0/8",
    "010.0.0.0/8",
    "10.0.0.0/",
    "10.0.0.0",
    "a.b.c.d/8",
    "::/0",
    "::1/128",
    "fd00::/8",
    "fd00:10:244::/64",
    "2001:db8::/32",
    "2001:DB8:0:0:0:0:0:0/32",
    "1:2:3:4:5:6:7:8/128",
    "1:2:3:4:5:6:7::/112",
    "1::8/64",
    "1:2:3:4:5:6::8/64",
    "::2:3:4:5:6:7:8/64",
    "fd00::/129",
    "fd00::1::/64",
    "1:2:3:4:5:6:7:8:9/64",
    "12345::/64",
    "g::/64",
    ":/64",
    ":::/64",
    "1:2:3:4:5:6:7/64",
]


def _stdlib_accepts(cidr: str) -> bool:
    if "/" not in cidr:
        return False  # ipaddress takes a bare address as a /32 or /128; a pool needs a prefix
    try:
        ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("cidr", CIDRS)
def test_cidr_pattern_agrees_with_ipaddress(cidr: str) -> None:
    document = {"calico": {"ipPools": {"pool": {"cidr": cidr}}}}
    expected = _stdlib_accepts(cidr)
    assert CONFIG_FULL.is_valid(document) is expected
    for fast in CONFIG_FAST.values():
        assert (_fast_error(fast, document) is None) is expected


# -- the schema itself --------------------------------------------------------

# Keywords with the same meaning in draft-07 (fastjsonschema) and 2020-12 (jsonschema).
COMMON_KEYWORDS = {
    "$schema", "$comment", "$ref", "$defs", "title", "description",
    "type", "enum", "const", "properties", "additionalProperties", "patternProperties",
    "propertyNames", "required", "pattern", "minLength", "maxLength", "minimum", "maximum",
    "items", "minItems", "maxItems", "uniqueItems", "oneOf", "anyOf", "allOf", "not",
}  # fmt: skip
MAPS_OF_SCHEMAS = {"properties", "patternProperties", "$defs"}


def _subschemas(schema: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    assert isinstance(schema, dict), where
    yield where, schema
    for key, value in schema.items():
        if key in MAPS_OF_SCHEMAS:
            for name, sub in value.items():
                yield from _subschemas(sub, f"{where}/{key}/{name}")
        elif key in ("oneOf", "anyOf", "allOf"):
            for index, sub in enumerate(value):
                yield from _subschemas(sub, f"{where}/{key}/{index}")
        elif key in ("items", "not", "propertyNames", "additionalProperties") and isinstance(
            value, dict
        ):
            yield from _subschemas(value, f"{where}/{key}")


@pytest.mark.parametrize("schema", [CONFIG_SCHEMA, FACTS_SCHEMA], ids=["config", "facts"])
def test_schema_is_portable_between_the_two_validators(schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)
    for where, sub in _subschemas(schema):
        assert set(sub) <= COMMON_KEYWORDS, f"{where}: {set(sub) - COMMON_KEYWORDS}"
        if "$ref" in sub:
            # fastjsonschema, like draft-07, ignores what stands beside a $ref.
            assert set(sub) <= {"$ref", "description", "$comment"}, where
            assert sub["$ref"].startswith("#/$defs/"), where
        if "pattern" in sub and sub["pattern"].endswith("$"):
            # Python's `$` matches before a trailing newline in jsonschema, not in fastjsonschema.
            assert sub.get("not", {}).get("pattern") == "\\n", f"{where}: no newline guard"


@pytest.mark.parametrize("schema", [CONFIG_SCHEMA, FACTS_SCHEMA], ids=["config", "facts"])
def test_every_definition_is_described(schema: dict[str, Any]) -> None:
    undescribed = [name for name, sub in schema["$defs"].items() if not sub.get("description")]
    assert undescribed == []


def test_facts_schema_shares_the_config_schema_definitions() -> None:
    for name, definition in FACTS_SCHEMA["$defs"].items():
        assert definition == CONFIG_SCHEMA["$defs"][name], name


# -- the Calico field lists against the CRDs ------------------------------------


def _crd_spec(kind: str) -> dict[str, Any]:
    file = f"projectcalico.org_{kind}.yaml"
    found = sorted((POLICIES / "schemas").rglob(file)) or sorted(
        (ROOT.parent / "shared" / "schemas" / "calico").rglob(file)
    )
    if not found:
        pytest.skip(f"no vendored copy of {file}")
    crd = yaml.safe_load(found[0].read_text(encoding="utf-8"))
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v3"]
    spec: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec


CALICO_SPECS = {
    "networkpolicies": "#/$defs/namespace/properties/calicoPolicies/additionalProperties",
    "globalnetworkpolicies": "#/$defs/globalNetworkPolicy",
    "ippools": "#/$defs/ipPool",
    "bgpconfigurations": "#/properties/calico/properties/bgpConfiguration",
    "felixconfigurations": "#/properties/calico/properties/felixConfiguration",
}


def _pointer(pointer: str) -> dict[str, Any]:
    node: Any = CONFIG_SCHEMA
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part]
    return dict(node)


@pytest.mark.parametrize(("kind", "pointer"), CALICO_SPECS.items(), ids=list(CALICO_SPECS))
def test_calico_fields_follow_the_crd(kind: str, pointer: str) -> None:
    spec = _crd_spec(kind)
    ours = _pointer(pointer)
    assert ours["additionalProperties"] is False
    assert sorted(ours["properties"]) == sorted(spec["properties"])
    assert ours.get("required", []) == spec.get("required", [])
    for name, field in ours["properties"].items():
        theirs = spec["properties"][name]
        if "type" in field and "type" in theirs:
            assert field["type"] == theirs["type"], name
        if "enum" in theirs:
            assert field["enum"] == theirs["enum"], name
        if isinstance(theirs.get("items"), dict) and "enum" in theirs["items"]:
            assert field["items"]["enum"] == theirs["items"]["enum"], name


# -- the cluster facts ----------------------------------------------------------

FACTS = {
    "name": "dev-k3s",
    "env": "dev",
    "region": "eu-west-1",
    "server": "https://dev-k3s.example.internal:6443",
    "labels": {"tier": "dev", "example.com/provider": "k3s"},
}

BAD_FACTS = {
    "missing-server": ({k: v for k, v in FACTS.items() if k != "server"}, "server"),
    "server-http": (FACTS | {"server": "http://dev-k3s.example.internal:6443"}, "server"),
    "name-upper-case": (FACTS | {"name": "Dev-K3s"}, "name"),
    "region-upper-case": (FACTS | {"region": "EU-West-1"}, "region"),
    "label-value-boolean": (FACTS | {"labels": {"tier": False}}, "labels.tier"),
    "unknown-key": (FACTS | {"config": {}}, "config"),
}


def test_facts_are_accepted() -> None:
    assert list(FACTS_FULL.iter_errors(FACTS)) == []
    minimal = {k: FACTS[k] for k in ("name", "env", "server")}
    assert list(FACTS_FULL.iter_errors(minimal)) == []
    for fast in FACTS_FAST.values():
        assert _fast_error(fast, FACTS) is None
        assert _fast_error(fast, minimal) is None


@pytest.mark.parametrize(("facts", "expect"), BAD_FACTS.values(), ids=list(BAD_FACTS))
def test_bad_facts_are_refused(facts: dict[str, Any], expect: str) -> None:
    locations = {loc for error in FACTS_FULL.iter_errors(facts) for loc in _locations(error)}
    assert any(_at_or_below(loc, expect) for loc in locations), locations
    for fast in FACTS_FAST.values():
        assert _fast_error(fast, facts) is not None
