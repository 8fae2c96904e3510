from __future__ import annotations

import copy
import time
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from compiler import yamlio
from compiler.errors import InputError
from compiler.yamlio import (
    dump_json,
    dump_manifest,
    dump_yaml,
    dumper,
    load_layer_json,
    load_layer_yaml,
    loader,
)

SRC = "overlays/prod/quotas.yaml"


def load(text: str, **kwargs: Any) -> yamlio.LoadedDocument:
    return load_layer_yaml(text.encode(), SRC, **kwargs)


def refused(text: str | bytes, **kwargs: Any) -> str:
    data = text.encode() if isinstance(text, str) else text
    with pytest.raises(InputError) as info:
        load_layer_yaml(data, SRC, **kwargs)
    return str(info.value)


@pytest.fixture(params=["libyaml", "pure"])
def either_loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a test with libyaml's loader and with the pure-Python fallback."""
    if request.param == "pure":
        monkeypatch.setattr(loader, "_BaseLoader", yaml.SafeLoader)


# ---------------------------------------------------------------------------- load YAML


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="libyaml is not installed")
def test_libyaml_is_used_where_installed() -> None:
    assert loader._BaseLoader is yaml.CSafeLoader
    assert issubclass(dumper._Dumper, yaml.CSafeDumper)


@pytest.mark.usefixtures("either_loader")
def test_values_and_lines_of_nested_keys_and_list_items() -> None:
    doc = load(
        "# header\n"
        "namespaces:\n"
        "  dev-team:\n"
        "    labels: {team: backend}\n"
        "    quotas:\n"
        "      dev-quota:\n"
        "        cpu: '4'\n"
        "        memory: 8Gi\n"
        "    users:\n"
        "    - dev@example.com\n"
        "    - [a, b]\n"
        "    defaultDeny: true\n"
        "    replicas: 2\n"
        "    ratio: 0.5\n"
        "    nothing: null\n"
    )
    assert doc.value == {
        "namespaces": {
            "dev-team": {
                "labels": {"team": "backend"},
                "quotas": {"dev-quota": {"cpu": "4", "memory": "8Gi"}},
                "users": ["dev@example.com", ["a", "b"]],
                "defaultDeny": True,
                "replicas": 2,
                "ratio": 0.5,
                "nothing": None,
            }
        }
    }
    ns = ("namespaces", "dev-team")
    assert doc.lines[()] == 2
    assert doc.lines[("namespaces",)] == 3  # a block map's value starts at its first key
    assert doc.lines[(*ns, "labels")] == 4
    assert doc.lines[(*ns, "labels", "team")] == 4
    assert doc.lines[(*ns, "quotas", "dev-quota", "cpu")] == 7
    assert doc.lines[(*ns, "quotas", "dev-quota", "memory")] == 8
    assert doc.lines[(*ns, "users", 0)] == 10
    assert doc.lines[(*ns, "users", 1)] == 11
    assert doc.lines[(*ns, "users", 1, 1)] == 11
    assert doc.lines[(*ns, "defaultDeny")] == 12
    assert doc.lines[(*ns, "nothing")] == 15


@pytest.mark.usefixtures("either_loader")
@pytest.mark.parametrize("text", ["", "# only a comment\n\n# another\n", "---\n"])
def test_empty_document_is_an_empty_map(text: str) -> None:
    doc = load(text)
    assert doc.value == {}
    assert doc.lines[()] >= 1
    if not text.startswith("---"):
        assert doc.lines == {(): 1}


@pytest.mark.usefixtures("either_loader")
def test_accepted_scalars() -> None:
    doc = load(
        "a: true\nb: True\nc: FALSE\nd: 'on'\ne: \"no\"\nf: !!str 12\ng: ! 12\n"
        "h: ~\ni: -3\nj: 1.5e+3\nk: |\n  text\n"
    )
    assert doc.value == {
        "a": True,
        "b": True,
        "c": False,
        "d": "on",
        "e": "no",
        "f": "12",
        "g": "12",
        "h": None,
        "i": -3,
        "j": 1500.0,
        "k": "text\n",
    }
    assert load("\ufeffa: 1\n").value == {"a": 1}  # a UTF-8 BOM is fine


@pytest.mark.usefixtures("either_loader")
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "namespaces:\n  dev-team:\n    labels:\n      team: a\n      env: b\n      team: c\n",
            f"{SRC}:6: namespaces.dev-team.labels.team: duplicate key 'team' (first at line 4)",
        ),
        ("a: 1\nb: 2\na: 3\n", f"{SRC}:3: a: duplicate key 'a' (first at line 1)"),
        ("a: {x: 1, x: 2}\n", f"{SRC}:1: a.x: duplicate key 'x' (first at line 1)"),
    ],
)
def test_duplicate_keys(text: str, expected: str) -> None:
    assert refused(text) == expected


@pytest.mark.usefixtures("either_loader")
@pytest.mark.parametrize(
    ("text", "line", "path"),
    [
        ("base: &b {cpu: '1'}\nprod: *b\n", 1, "base"),
        ("a: 1\nlist:\n  - &x one\n", 3, "list[0]"),
        ("a: 1\nb: *undefined\n", 2, "b"),
        ("base: {cpu: '1'}\nprod:\n  <<: {cpu: '2'}\n", 3, "prod"),
    ],
)
def test_aliases_anchors_and_merge_keys(text: str, line: int, path: str) -> None:
    message = refused(text)
    assert message.startswith(f"{SRC}:{line}: {path}: ")
    assert "aliases and anchors are not allowed in layer documents" in message


def test_billion_laughs_is_refused_fast() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    start = time.perf_counter()
    message = refused("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 0.5
    assert message.startswith(f"{SRC}:1: a: aliases and anchors")


@pytest.mark.usefixtures("either_loader")
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a:\n  b: !!python/object/apply:os.system ['echo hi']\n",
            f"{SRC}:2: a.b: tag !!python/object/apply:os.system is not allowed",
        ),
        ("a: !foo bar\n", f"{SRC}:1: a: tag !foo is not allowed"),
        ("a: !!set {x, y}\n", f"{SRC}:1: a: tag !!set is not allowed"),
        ("a: !!omap [x: 1]\n", f"{SRC}:1: a: tag !!omap is not allowed"),
        ("!!python/name:os.system\n", f"{SRC}:1: tag !!python/name:os.system is not allowed"),
        ("a: !!int twelve\n", f"{SRC}:1: a: 'twelve' is not an int"),
        ("a:\n  when: 2024-01-01\n", f"{SRC}:2: a.when: '2024-01-01' is a timestamp; quote it"),
        ("a: !!binary aGk=\n", f"{SRC}:1: a: 'aGk=' is binary; quote it"),
        ("a: .nan\n", f"{SRC}:1: a: '.nan' is not a finite number; quote it"),
        ("a: =\n", f"{SRC}:1: a: '=' is the YAML 1.1 value key; quote it"),
    ],
)
def test_tags_and_types_not_allowed(text: str, expected: str) -> None:
    assert refused(text) == expected


@pytest.mark.usefixtures("either_loader")
@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("a: 1\n1: a\n", 2, "key '1' is read as an int"),
        ("true: x\n", 1, "key 'true' is read as a boolean"),
        ("null: x\n", 1, "key 'null' is read as null"),
        ("~: x\n", 1, "key '~' is read as null"),
        ("a:\n  1.5: x\n", 2, "a: key '1.5' is read as a float"),
        ("on: x\n", 1, "key 'on' is read as a boolean"),
    ],
)
def test_keys_must_be_strings(text: str, line: int, what: str) -> None:
    message = refused(text)
    assert message == f"{SRC}:{line}: {what}; keys must be strings, quote it"


@pytest.mark.usefixtures("either_loader")
def test_collection_keys_are_refused() -> None:
    assert (
        refused("a:\n  ? [x, y]\n  : 1\n") == f"{SRC}:2: a: a key is a list; keys must be strings"
    )
    assert refused("{x: 1}: 1\n") == f"{SRC}:1: a key is a map; keys must be strings"


@pytest.mark.usefixtures("either_loader")
@pytest.mark.parametrize(
    "word",
    ["yes", "Yes", "YES", "no", "No", "on", "On", "ON", "off", "OFF", "y", "Y", "n", "N", "yEs"],
)
def test_yaml11_booleans_must_be_written_true_false(word: str) -> None:
    message = refused(f"a:\n  enabled: {word}\n")
    assert message == (
        f"{SRC}:2: a.enabled: '{word}' is read as a boolean by YAML 1.1; "
        "write true/false, or quote it if you meant the string"
    )
    assert load(f"a:\n  enabled: '{word}'\n").value == {"a": {"enabled": word}}
    assert refused(f"list: [a, {word}]\n").startswith(f"{SRC}:1: list[1]: '{word}' is read as")
    assert refused(f"{word}: 1\n").startswith(f"{SRC}:1: ")  # as a key too


@pytest.mark.usefixtures("either_loader")
def test_more_than_one_document() -> None:
    assert refused("a: 1\n---\nb: 2\n") == (
        f"{SRC}:2: a layer file holds one document, found a second"
    )


@pytest.mark.usefixtures("either_loader")
def test_node_budget() -> None:
    text = "items:\n" + "".join(f"  - {i}\n" for i in range(100))
    assert len(load(text).value["items"]) == 100
    assert (
        refused(text, max_nodes=50) == f"{SRC}:49: items[47]: more than 50 nodes"
    )  # map, key, list, 47 items


@pytest.mark.usefixtures("either_loader")
def test_depth_budget() -> None:
    assert isinstance(load("[" * 200 + "]" * 200).value, list)  # max_depth levels are fine
    assert refused("[" * 201 + "]" * 201) == (
        f"{SRC}:1: " + "[0]" * 16 + "...: nested deeper than 200 levels"
    )
    block = "".join("  " * i + f"k{i}:\n" for i in range(12)) + "  " * 12 + "leaf: 1\n"
    assert refused(block, max_depth=10).startswith(f"{SRC}:11: k0.k1.")


@pytest.mark.usefixtures("either_loader")
@pytest.mark.parametrize("opener", ["[", "{a: "])
def test_ten_thousand_levels_is_an_input_error_not_recursion(opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = opener * 10_000 + "1" + closer * 10_000
    start = time.perf_counter()
    message = refused(text)
    elapsed = time.perf_counter() - start
    assert elapsed < 2, elapsed
    assert message.startswith(f"{SRC}:1:")
    assert "nest" in message


@pytest.mark.usefixtures("either_loader")
def test_syntax_error_names_line_and_column() -> None:
    assert refused("a: 1\nb: [1, 2\n") == (
        f"{SRC}:3:1: did not find expected ',' or ']' (while parsing a flow sequence)"
        if loader._BaseLoader is yaml.CSafeLoader
        else f"{SRC}:3:1: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence)"
    )
    assert refused("a: b: c\n").startswith(f"{SRC}:1:5: mapping values are not allowed")


@pytest.mark.usefixtures("either_loader")
def test_invalid_utf8_and_control_characters() -> None:
    assert refused(b"a: 1\nb: caf\xe9\n") == f"{SRC}:2: not valid UTF-8 (byte offset 11)"
    assert refused(b"\xff\xfea\x00:\x00") == f"{SRC}:1: not valid UTF-8 (byte offset 0)"
    message = refused("a: 1\nb: x\x07\n")
    assert message.startswith(f"{SRC}:2: ")
    assert message.endswith("characters are not allowed (character #x0007)")


# ---------------------------------------------------------------------------- load JSON


def refused_json(text: str | bytes, **kwargs: Any) -> str:
    with pytest.raises(InputError) as info:
        load_layer_json(text, "cluster#dev-k3s/v#1: field config", **kwargs)
    return str(info.value)


def test_json_loads_plain_data() -> None:
    assert load_layer_json(b'{"a": [1, 2.5, true, null, "x"]}', "f.json") == {
        "a": [1, 2.5, True, None, "x"]
    }
    assert load_layer_json('\ufeff{"a": {}}', "f.json") == {"a": {}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1, "a": 2}', "1:10: a: duplicate key 'a' (first at line 1)"),
        (
            '{\n  "n": {\n    "x": [1, {"k": 1}],\n    "y": 2,\n    "x": 3\n  }\n}',
            "5:5: n.x: duplicate key 'x' (first at line 3)",
        ),
        ('{"a": [{"b": 1, "\\u0062": 2}]}', "1:17: a[0].b: duplicate key 'b' (first at line 1)"),
        ('{"a": "x", "b": [1, NaN]}', "1:21: b[1]: NaN is not a JSON number"),
        ('{"a": Infinity}', "1:7: a: Infinity is not a JSON number"),
        ("[-Infinity]", "1:2: [0]: -Infinity is not a JSON number"),
        ('{"a": [1, 2}', "1:12: Expecting ',' delimiter"),
        ('{"a": 1,\n  "b" 2}', "2:7: Expecting ':' delimiter"),
    ],
)
def test_json_refusals_name_line_and_column(text: str, expected: str) -> None:
    assert refused_json(text) == f"cluster#dev-k3s/v#1: field config:{expected}"


def test_json_depth() -> None:
    assert load_layer_json("[" * 200 + "]" * 200, "f.json")
    # More brackets than levels: wide, or inside strings, is not deep.
    assert load_layer_json("[" + ",".join(["[{}]"] * 300) + "]", "f.json")
    assert load_layer_json('{"a": "' + "[" * 300 + '", "b": [[1]]}', "f.json")
    assert refused_json('{"a": "' + "{" * 300 + '", "b": ' + "[" * 201 + "]" * 201 + "}")
    assert refused_json("[" * 201 + "]" * 201).endswith(
        ":1:201: " + "[0]" * 16 + "...: nested deeper than 200 levels"
    )
    start = time.perf_counter()
    message = refused_json('{"a": ' + "[" * 10_000 + "]" * 10_000 + "}")
    assert time.perf_counter() - start < 2
    assert message.endswith(":1:206: a" + "[0]" * 15 + "...: nested deeper than 200 levels")


def test_json_invalid_utf8() -> None:
    assert refused_json(b'{"a":\n "\xc3("}') == (
        "cluster#dev-k3s/v#1: field config:2: not valid UTF-8 (byte offset 8)"
    )


# ---------------------------------------------------------------------------- dump

TRICKY = [
    "no", "on", "off", "yes", "y", "Y", "n", "N", "NO", "On",
    "0755", "08", "1e3", "1E-5", ".5e1", "0o755", "0O755", "0x1f", "0X1F", "0b101",
    "1_000", "1_0e3", "-_1", "12:30", "1:20:30", "~", "null", "Null", "NULL", "",
    "-", "true", "True", "FALSE", "2024-01-01", "2001-12-14t21:59:43.10-05:00",
    "4", "+1", "+12", "-3", "1.", "1.5", ".inf", "-.Inf", "+.INF", ".nan", ".NaN",
    "=", "<<", "? x", "- x", "x: y", "#x", "&a", "*a", "!t", "%x", "@x", "`x", "'q'",
    '"q"', "{a}", "[a]", "a #b", " lead", "trail ",
]  # fmt: skip


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_stay_strings(text: str) -> None:
    out = dump_yaml({"key": text})
    assert out.decode()[len("key: ") :][:1] in ("'", '"'), out
    assert load_layer_yaml(out, "out.yaml").value == {"key": text}
    as_key = dump_yaml({text: "value"})
    assert as_key[:1] in (b"'", b'"'), as_key
    assert load_layer_yaml(as_key, "out.yaml").value == {text: "value"}
    assert yaml.safe_load(out) == {"key": text}


def test_plain_where_nothing_misreads_them() -> None:
    out = dump_yaml({"version": "4.11.2", "cidr": "192.168.0.0/16", "cpu": "500m", "memory": "8Gi"})
    assert out == b"cidr: 192.168.0.0/16\ncpu: 500m\nmemory: 8Gi\nversion: 4.11.2\n"


def test_numbers_bools_and_null_stay_plain() -> None:
    out = dump_yaml({"a": [1, -2, 1.5, 1e20, True, False, None, 0]})
    assert out == b"a:\n- 1\n- -2\n- 1.5\n- 1.0e+20\n- true\n- false\n- null\n- 0\n"


def test_dump_manifest_key_order_and_no_mutation() -> None:
    obj = {
        "spec": {"hard": {"memory": "8Gi", "cpu": "4"}},
        "metadata": {
            "labels": {"team": "backend", "environment": "dev"},
            "namespace": "dev-team",
            "annotations": {"b": "2", "a": "1"},
            "name": "dev-quota",
        },
        "kind": "ResourceQuota",
        "apiVersion": "v1",
        "data": {"z": "on", "a": "0755"},
    }
    before = copy.deepcopy(obj)
    out = dump_manifest(obj)
    assert obj == before
    assert list(obj) == list(before)
    assert out.decode() == (
        "apiVersion: v1\n"
        "kind: ResourceQuota\n"
        "metadata:\n"
        "  name: dev-quota\n"
        "  namespace: dev-team\n"
        "  annotations:\n"
        "    a: '1'\n"
        "    b: '2'\n"
        "  labels:\n"
        "    environment: dev\n"
        "    team: backend\n"
        "data:\n"
        "  a: '0755'\n"
        "  z: 'on'\n"
        "spec:\n"
        "  hard:\n"
        "    cpu: '4'\n"
        "    memory: 8Gi\n"
    )


def test_never_writes_aliases() -> None:
    shared = ["get", "list"]
    rules = {"a": {"verbs": shared}, "b": {"verbs": shared}}
    for out in (dump_yaml(rules), dump_manifest({"kind": "X", "rules": [rules, rules]})):
        assert b"&" not in out
        assert b"*" not in out
    # The dumper itself, not only the copy made before it, refuses to alias.
    assert "&" not in yaml.dump([shared, shared], Dumper=dumper._Dumper)


def test_same_bytes_whatever_the_insertion_order() -> None:
    one = {"b": {"y": 1, "x": [{"q": 1, "p": 2}]}, "a": "x", "metadata": {"z": 1, "name": "n"}}
    two = {"metadata": {"name": "n", "z": 1}, "a": "x", "b": {"x": [{"p": 2, "q": 1}], "y": 1}}
    assert dump_yaml(one) == dump_yaml(two) == dump_yaml(one)
    assert dump_manifest(one) == dump_manifest(two)
    assert dump_json(one) == dump_json(two)


def test_output_shape() -> None:
    long = "word " * 100 + "end"
    out = dump_yaml({"long": long, "script": "#!/bin/sh\necho hi\n", "u": "café ✓", "e": {}})
    assert out == (
        f"e: {{}}\nlong: {long}\nscript: |\n  #!/bin/sh\n  echo hi\nu: café ✓\n".encode()
    )
    assert b"\r" not in out
    assert out.endswith(b"\n")


def test_dump_json() -> None:
    out = dump_json({"b": [1, "é"], "a": {"d": None, "c": True}})
    assert (
        out
        == (
            '{\n  "a": {\n    "c": true,\n    "d": null\n  },\n  "b": [\n    1,\n    "é"\n  ]\n}\n'
        ).encode()
    )
    with pytest.raises(ValueError):
        dump_json({"a": float("nan")})


_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
_plain: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(), _text, st.floats(allow_nan=False, allow_infinity=False)
)
_data = st.recursive(
    _plain,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(_text, _data, max_size=5))
def test_dump_then_load_round_trips(doc: dict[str, Any]) -> None:
    assert load_layer_yaml(dump_yaml(doc), "out.yaml").value == doc
    assert load_layer_json(dump_json(doc), "out.json") == doc


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.sampled_from(["a\n", "a\n\n\n", "\n", " x", "yes", "0x1f", "...", "---", "- a", "|"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(
    st.dictionaries(
        st.sampled_from(["apiVersion", "kind", "metadata", "spec", "data", "z" * 130, "1"]),
        _VALUES,
        max_size=5,
    )
)
@example({"a": "x\n\n", "b": 1})  # a kept text's end marker `...`, before another key
@example({"b": 1, "a": "x\n\n"})
def test_an_object_dumped_in_parts_is_the_object_dumped_whole(obj: dict[str, Any]) -> None:
    """A manifest that misses the cache is written one top-level key at a time, joined:
    the bytes must be those of the whole, with parts kept from earlier objects too."""
    assert dumper._dump_manifest(obj, parts=_PARTS_ACROSS_EXAMPLES) == dumper._dump_manifest(obj)


_PARTS_ACROSS_EXAMPLES: dict[bytes, bytes] = {}


def test_the_caches_keep_digests_and_no_large_yaml() -> None:
    for i in range(30):
        data = {"f": f"{i}" + "x" * 100_000}
        out = dump_manifest({"apiVersion": "v1", "kind": "ConfigMap", "data": data})
        assert out.endswith(b"x\n") and len(out) > 100_000
    for cache in (dumper._MANIFEST_CACHE, dumper._PART_CACHE):
        assert all(len(key) == 16 for key in cache)
        assert max(map(len, cache.values()), default=0) <= dumper._CACHED_BYTES


def test_a_part_is_reused_between_objects() -> None:
    parts: dict[bytes, bytes] = {}
    resources = [f"namespaces/ns-{i}/namespace.yaml" for i in range(50)]
    for cluster in ("a", "b"):
        labels = [{"pairs": {"cluster": cluster}}]
        obj = {"apiVersion": "v1", "kind": "Kustomization", "labels": labels}
        whole = dumper._dump_manifest({**obj, "resources": resources})
        assert dumper._dump_manifest({**obj, "resources": resources}, parts=parts) == whole
    assert len(parts) == 5  # apiVersion, kind and resources once; labels twice
