"""A short fuzz run of the DSL loaders and the merge (hypothesis), bounded in time.

Whatever bytes a layer file holds, the loaders give plain data or an
`InputError` naming the file, never another exception; whatever documents the
layers hold (valid stacks, then mutated with hostile keys and values), merge,
schema, render and the object checks give violations or a `CompilerError`.

The examples are derandomized, so the suite is repeatable; set
GITOPS_FUZZ_EXAMPLES=5000 to explore further with fresh randomness. Every
crash a run finds is kept below as a regular case (`FOUND`), and as an
`@example` of the property that found it once it is fixed.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from compiler.cli import main
from compiler.errors import CompilerError, InputError
from compiler.pipeline import compile_one
from compiler.yamlio import load_layer_json, load_layer_yaml
from tests import test_properties as valid
from tests.conftest import ROOT

EXPLORE = "GITOPS_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(
    max_examples=int(os.environ.get("GITOPS_FUZZ_EXAMPLES", "300")),
    derandomize=not EXPLORE,
    database=None,
    deadline=timedelta(seconds=5),  # per example; each takes milliseconds
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SOURCE = "overlays/dev/90-fuzz.yaml"

# Pieces of YAML that parsers trip over: indicators, anchors and aliases, tags
# (Python object tags included), directives, merge keys, YAML 1.1 look-alikes,
# odd whitespace and characters.
_YAML_PIECES = [
    *":-[]{},&*!|>'\"#%@`? \n\t~=\\",
    "- ", ": ", "\n  ", "\n- ", "---\n", "...\n", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n",
    "&a ", "*a", "<<: *a", "!!str ", "!!binary ", "!!python/object/apply:os.system ",
    "!!python/name:os.system", "!custom ", "!!set ", "!!omap ", "? ",
    "yes", "no", "on", "Off", "y", "0o17", "0x1F", "1e3", ".inf", "-.nan", "1_000", "0755",
    "null", "~", "2026-01-05", "12:30:00", "namespaces", "dev-team", "labels",
    "\ufeff", "\u00e9", "\u2028", "\x85", "\x00", "\x7f", "\r\n", '"\\u0041"', '"\\x00"',
]  # fmt: skip
yaml_texts = st.lists(st.sampled_from(_YAML_PIECES), max_size=80).map("".join)

# Pieces of JSON, with escapes (surrogates aside: see FOUND).
_JSON_PIECES = [
    *'{}[]:,"', " ", "\n", '"a"', '"namespaces"', "1", "-0", "1e999", "0.5", "true", "null",
    "NaN", "Infinity", '"\\u0041"', '"\\n"', '"\\ud83d\\udca5"', '"\\""', "\\", "/", "\ufeff",
]  # fmt: skip
json_texts = st.lists(st.sampled_from(_JSON_PIECES), max_size=80).map("".join)

payloads = (
    yaml_texts.map(lambda s: s.encode("utf-8", "surrogatepass"))
    | json_texts.map(str.encode)
    | st.binary(max_size=120)
)


def assert_plain(value: Any) -> None:
    """Plain data a later stage can rely on: JSON types, string keys, text that is
    Unicode (writable as UTF-8), no shared or cyclic containers."""
    seen: set[int] = set()
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, (dict, list)):
            assert id(item) not in seen, "a container appears twice (an alias kept as a reference)"
            seen.add(id(item))
            if isinstance(item, dict):
                assert all(isinstance(k, str) for k in item)
                todo.extend(item)
                todo.extend(item.values())
            else:
                todo.extend(item)
        elif isinstance(item, str):
            item.encode("utf-8")
        else:
            assert item is None or isinstance(item, (bool, int, float)), type(item)


@FUZZ
@given(payloads)
def test_fuzz_the_yaml_loader(data: bytes) -> None:
    try:
        loaded = load_layer_yaml(data, SOURCE)
    except InputError as err:
        assert str(err).startswith(SOURCE)  # names the file (and the line where known)
        return
    assert_plain(loaded.value)


@FUZZ
@given(payloads)
@example(b"1e310}")  # found: a refused number before a stray `}` crashed the locator
def test_fuzz_the_json_loader(data: bytes) -> None:
    try:
        value = load_layer_json(data, SOURCE)
    except InputError as err:
        assert str(err).startswith(SOURCE)
        return
    assert_plain(value)


# Keys and values a hostile or careless layer may hold where a valid one has its own.
_HOSTILE: list[Any] = [
    None, "", "..", "a/b", "-x", "Dev", "a" * 64, "a" * 254, "\uff41", "\u0430", "no", "0755",
    "1e3", "*", "system:masters", "cluster-admin", "10.0.0.1/8", "1.2.3.4/33", "fd00::/8",
    "http://charts", "{{ .name }}", "a\nb", "x.yaml", "\U0001f4a5", "\x00", -1, 0.5, 1e308,
    float("inf"), 2**70, True, [], {}, [None], {"": None}, {"a": {"b": []}},
]  # fmt: skip
hostile = st.sampled_from(_HOSTILE).map(copy.deepcopy)


def _places(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = []
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    )
    for key, value in items:
        found.append((*prefix, key))
        found += _places(value, (*prefix, key))
    return found


@st.composite
def mutated_stacks(draw: st.DrawFn) -> tuple[Any, ...]:
    """A valid stack of tests/test_properties.py with up to four keys or values replaced."""
    defaults, middle, own = copy.deepcopy(draw(valid.stacks))
    docs = [defaults, *middle, own]
    for _ in range(draw(st.integers(1, 4))):
        doc = docs[draw(st.integers(0, len(docs) - 1))]
        places = _places(doc)
        if not places:
            continue
        place = draw(st.sampled_from(places))
        parent = doc
        for part in place[:-1]:
            parent = parent[part]
        replacement = draw(hostile)
        if isinstance(parent, dict) and isinstance(replacement, str) and draw(st.booleans()):
            parent[replacement] = parent.pop(place[-1])  # a hostile key
        else:
            parent[place[-1]] = replacement
    return docs[0], docs[1:-1], docs[-1]


@FUZZ
@given(mutated_stacks())
def test_fuzz_merge_and_render(stack: tuple[Any, ...]) -> None:
    cluster = valid.stack_input(*stack)
    try:
        compiled, violations = compile_one(cluster, valid.PROJECT, valid.CHECKS)
    except CompilerError:
        return
    assert compiled is not None or violations  # nothing rendered means something was wrong


# --------------------------------------------------------------------------- found

# Crashes the fuzz run found, as regular cases: the bytes of a layer, where they
# were put, and what the compile must say.
FOUND = [
    pytest.param(
        "overlays/dev/90-fuzz.json",
        b'{"namespaces": {"dev-team": {"annotations": {"purpose": "\\ud800"}}}}',
        "90-fuzz.json",
        id="lone-surrogate-in-a-json-overlay",
    ),
    pytest.param(
        "overlays/dev/90-fuzz.json",
        b'{"namespaces": {"dev-team": {"annotations": {"n": 1e310}}}}}',
        "90-fuzz.json:1:51: namespaces.dev-team.annotations.n: '1e310' is not a finite number",
        id="non-finite-number-then-a-stray-brace-in-a-json-overlay",
    ),
    pytest.param(
        "examples/cluster/dev-k3s.yaml",
        b"versions:\n  - version: 1\n    created_at: '2026-01-05T09:00:00Z'\n"
        b"    cluster: {name: dev-k3s, env: dev, region: eu-west-1, server: 'https://dev-k3s:6443'}\n"
        b'    config: \'{"namespaces": {"dev-team": {"labels": {"team": "a"}, '
        b'"annotations": {"purpose": "\\udfff"}}}}\'\n',
        "cluster#dev-k3s",
        id="lone-surrogate-in-a-config-stored-as-json-text",
    ),
]


@pytest.mark.parametrize(("where", "data", "named"), FOUND)
def test_a_crash_the_fuzz_found(
    where: str,
    data: bytes,
    named: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # a crash log stays in the test
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy2(ROOT / "gitops-compiler.yaml", project)
    for name in ("overlays", "policies", "examples"):
        shutil.copytree(ROOT / name, project / name)
    (project / where).write_bytes(data)
    out = tmp_path / "out"
    argv = ["compile", "--all", "--project", str(project), "--source", "snapshot:examples",
            "--out", str(out)]  # fmt: skip
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err  # bad input, named; not an internal error
    assert named in err and "internal error" not in err
    assert not out.exists()
