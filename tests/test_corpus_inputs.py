"""The bad-input corpus (issues 8 and 15): every row of the input groups of tests/corpus/
(GROUP_FILES) through the CLI.

A row is one hostile or broken input and the compiler's answer to it. Each row
is run by `compiler.cli.main` in-process, against a copy of this repository's
project whose `--out` already holds a good tree (a copy of `golden/`), and must:
exit with its code (2 bad input, 1 a violation), name the cluster, the source
(file:line or pk/sk) and the field or rule id, print no traceback, and leave the
tree byte for byte as it was. A new case is a new row.

Row keys (one input per row):

- `id`, `covers` (a line of the group's `lines`, the issue's wording, or "beyond the
  issue's list"), `also_covers` (more lines), `why`;
- `overlay`: the text of `overlays/<env>/<file>` (`env` dev, `file` 50-corpus.yaml by
  default), written in `encoding` (utf-8; latin-1 writes each code point as one byte);
- `item`: a raw item, `layer` naming its layer, added as that layer's newest version;
- `snapshot_file`: `{path, text}`, a file of the snapshot directory (examples/) replaced;
- `generate`: `{kind, ...}`, a big or deep input made at test time (GENERATORS, never
  committed), written as the overlay, or as the item's `config` with `into: config`;
- `via`: where the row is read from: `snapshot` (default, `--source snapshot:examples`)
  and/or `moto` (the item written raw into a table of moto's in-process mock);
- `command`: `compile` (default) or `config-put` (the generated file, into env/dev);
- `cluster` (dev-k3s), `exit`, `expect` (fragments of the output), `absent` (fragments
  that must not appear), `cluster_named` (true, false, or the vias where it holds),
  `max_output` (characters, 8000), `absent_files` (`{tmp}` is the test's directory);
- `strings`: for a row that compiles, `{file: {dotted path: mapping}}` that every YAML
  reader must read back as exactly these strings;
- `budget`: `{seconds, megabytes}`: wall time in-process, and the peak memory of the
  same run in a child process under an address-space limit;
- `publish`: the row is also published, and the Argo CD repository must not move;
- `xfail`: why the compiler still fails the row (strict: fixing it fails the test).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from boto3.dynamodb.types import TypeSerializer
from ruamel.yaml import YAML

from compiler.cli import main
from compiler.model import pk_from_layer_name, sort_key_for
from compiler.policy.kind_schemas import KindSchemas
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.snapshot import SnapshotStore, seed
from tests.conftest import ROOT, tree
from tests.gitrepos import git

CORPUS = Path(__file__).parent / "corpus"
# The input groups; the corpus directory also holds the fault groups (test_corpus_faults.py).
GROUP_FILES = (
    "items", "hostile", "rbac", "parsers", "policy-classes", "quantities", "carried",
    "config-secrets", "loose-ends",
)  # fmt: skip
ROW_KEYS = {
    "id", "covers", "also_covers", "why", "overlay", "item", "snapshot_file", "generate",
    "env", "file", "encoding", "via", "command", "cluster", "exit", "expect", "absent",
    "cluster_named", "max_output", "absent_files", "strings", "budget", "publish", "xfail",
}  # fmt: skip
INPUTS = ("overlay", "item", "snapshot_file", "generate")
MAX_OUTPUT = 8000
BEYOND = "beyond the issue's list"  # `covers` of a row that no line of the issue asks for
# The child reports its own peak (VmHWM of its address space, after exec): the
# rusage of a forked child also counts the test process's pages at the fork.
CHILD = """\
import atexit, os, sys
def peak():
    with open("/proc/self/status") as status, open(os.environ["PEAK_FILE"], "w") as out:
        out.write(next(l.split()[1] for l in status if l.startswith("VmHWM:")))
atexit.register(peak)
from compiler.cli import main
raise SystemExit(main(sys.argv[1:]))
"""
CHILD_ADDRESS_SPACE = 2 * 1024**3  # a real bomb dies here instead of taking the machine
CHILD_KILL_AFTER = 120.0  # seconds: a hang is a failure, never a stuck test run


# -- generated inputs ------------------------------------------------------------


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = [chr(ord("a") + i) for i in range(levels)]
    for previous, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\n"


def deep(depth: int, syntax: str) -> str:
    if syntax == "yaml-map":
        return "namespaces: " + "{a: " * depth + "x" + "}" * depth + "\n"
    if syntax == "yaml-seq":
        return "namespaces: " + "[" * depth + "]" * depth + "\n"
    return '{"namespaces": ' + '{"a": ' * depth + "1" + "}" * depth + "}\n"


def big(megabytes: int, syntax: str) -> str:
    """A plausible overlay (one namespace's annotations) of the given size."""
    count = megabytes * 1024 * 1024 // 96 + 1
    value = "x" * 80
    if syntax == "yaml":
        head = "namespaces:\n  dev-team:\n    annotations:\n"
        return head + "".join(f"      k{i:09d}: {value}\n" for i in range(count))
    entries = ", ".join(f'"k{i:09d}": "{value}"' for i in range(count))
    return '{"namespaces": {"dev-team": {"annotations": {' + entries + "}}}}\n"


def wide_json(kilobytes: int) -> str:
    """A JSON layer document of about `kilobytes`, as a large item holds it."""
    count = kilobytes * 1024 // 100 + 1
    entries = ", ".join(f'"k{i:06d}": "{"x" * 86}"' for i in range(count))
    return '{"namespaces": {"dev-team": {"annotations": {' + entries + "}}}}"


def wide_flow_yaml(kilobytes: int) -> str:
    """Flow YAML whose JSON form (as the item stores it) is about 1.4 times bigger."""
    count = kilobytes * 1024 // 10
    # `k: v`, not `k:v`: in a flow mapping `k:v` is one key with an empty value.
    entries = ",".join(f"k{i:06d}: v" for i in range(count))
    return "namespaces:\n  dev-team:\n    annotations: {" + entries + "}\n"


def long_number(digits: int, syntax: str) -> str:
    number = "9" * digits
    return f'{{"namespaces": {number}}}\n' if syntax == "json" else f"namespaces: {number}\n"


GENERATORS: dict[str, Callable[..., str]] = {
    "billion-laughs": billion_laughs,
    "deep": deep,
    "big": big,
    "wide-json": wide_json,
    "wide-flow-yaml": wide_flow_yaml,
    "long-number": long_number,
}


def generate(spec: dict[str, Any]) -> str:
    options = {k: v for k, v in spec.items() if k not in ("kind", "into")}
    return GENERATORS[spec["kind"]](**options)


# -- the corpus ------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    stem: str
    name: str
    lines: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]


def load_groups() -> list[Group]:
    groups = []
    for stem in GROUP_FILES:
        path = CORPUS / f"{stem}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        groups.append(Group(path.stem, data["group"], tuple(data["lines"]), tuple(data["cases"])))
    return groups


GROUPS = load_groups()


def vias(row: dict[str, Any]) -> list[str]:
    return list(row.get("via", ["snapshot"]))


def row_params(only: Callable[[dict[str, Any], str], bool] = lambda row, via: True) -> list[Any]:
    params = []
    for group in GROUPS:
        for row in group.rows:
            for via in vias(row):
                if not only(row, via):
                    continue
                marks = (
                    [pytest.mark.xfail(strict=True, reason=row["xfail"])] if "xfail" in row else []
                )
                params.append(
                    pytest.param(row, via, id=f"{group.stem}/{row['id']}/{via}", marks=marks)
                )
    return params


# -- running a row ---------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    argv: list[str]  # the command line, source options included
    out: Path | None  # the --out tree, already holding a good tree
    cluster: str


def prepare(
    row: dict[str, Any], via: str, project: Path, tmp: Path, store: DynamoDBStore | None
) -> Prepared:
    """Put the row's input where the compiler reads it; the command line to run."""
    row = copy.deepcopy(row)
    generated = generate(row["generate"]) if "generate" in row else None
    into = row.get("generate", {}).get("into", "overlay")
    if generated is not None and into == "config":
        row["item"]["config"] = generated
    elif generated is not None:
        row["overlay"] = generated
    if via == "moto":
        assert store is not None
        source = ["--project", str(project), "--table", store.table]
    else:
        source = ["--project", str(project), "--source", "snapshot:examples"]
    encoding = row.get("encoding", "utf-8")
    cluster = row.get("cluster", "dev-k3s")
    if row.get("command") == "config-put":
        layer_file = tmp / "layer.yaml"
        layer_file.write_bytes(row["overlay"].encode(encoding))
        return Prepared(
            ["config", "put", "--layer", "env/dev", str(layer_file), *source], None, cluster
        )
    if "overlay" in row:
        directory = project / "overlays" / row.get("env", "dev")
        text = row["overlay"].replace("{tmp}", str(tmp))
        (directory / row.get("file", "50-corpus.yaml")).write_bytes(text.encode(encoding))
    if "item" in row:
        if via == "moto":
            assert store is not None
            store._client.put_item(TableName=store.table, Item=dynamodb_item(row["item"]))
        else:
            add_to_snapshot(project / "examples", row["item"])
    if "snapshot_file" in row:
        target = project / "examples" / row["snapshot_file"]["path"]
        target.write_text(row["snapshot_file"]["text"].replace("{tmp}", str(tmp)), encoding="utf-8")
    out = tmp / "out"
    copy_tree(ROOT / "golden", out)
    return Prepared(["compile", "--cluster", cluster, "--out", str(out), *source], out, cluster)


def copy_tree(source: Path, target: Path) -> None:
    for rel, data in tree(source).items():
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_bytes(data)


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def add_to_snapshot(root: Path, item: dict[str, Any]) -> None:
    """The item as the newest version of its layer's snapshot file (pk/sk from the path)."""
    raw = dict(item)
    path = root / f"{raw.pop('layer')}.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["versions"].insert(0, raw)
    text = yaml.dump(document, Dumper=_NoAliases, sort_keys=False, allow_unicode=True, width=2**30)
    path.write_text(text, encoding="utf-8")


def dynamodb_item(item: dict[str, Any]) -> dict[str, Any]:
    """The item in DynamoDB's wire format; a None attribute is left out (missing)."""
    raw = dict(item)
    pk = pk_from_layer_name(raw.pop("layer"))
    sk = raw.pop("sk", None) or sort_key_for(raw["version"])
    attributes = {"pk": pk, "sk": sk, **{k: v for k, v in raw.items() if v is not None}}
    serializer = TypeSerializer()
    return {k: serializer.serialize(_decimals(v)) for k, v in attributes.items()}


def _decimals(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    return value


def item_count(store: DynamoDBStore) -> int:
    return int(store._client.scan(TableName=store.table, Select="COUNT")["Count"])


@dataclass(frozen=True)
class Outcome:
    code: int
    output: str  # stdout and stderr
    seconds: float


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Outcome:
    capsys.readouterr()
    started = time.perf_counter()
    code = main(argv)
    seconds = time.perf_counter() - started
    captured = capsys.readouterr()
    return Outcome(code, captured.out + captured.err, seconds)


def names_cluster(output: str, cluster: str) -> bool:
    """An error (`cluster C: ...`) or a violation line (`C: path: ...`) names the cluster."""
    lines = output.splitlines()
    return f"cluster {cluster}: " in output or any(
        line.startswith(f"{cluster}: ") for line in lines
    )


def check_answer(row: dict[str, Any], via: str, outcome: Outcome, cluster: str) -> None:
    output = outcome.output
    assert outcome.code == row["exit"], output
    assert "Traceback" not in output and "internal error" not in output, output
    assert len(output) <= row.get("max_output", MAX_OUTPUT), output[:2000]
    for fragment in row.get("expect", []):
        assert fragment in output, f"{fragment!r} not in:\n{output}"
    for fragment in row.get("absent", []):
        assert fragment not in output, f"{fragment!r} in:\n{output}"
    named = row.get("cluster_named", True)
    if outcome.code == 0:
        return  # the summary lists the clusters compiled
    if named is True or (isinstance(named, list) and via in named):
        assert names_cluster(output, cluster), output


# -- the tests -------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def _crds_parsed_once() -> Iterator[None]:
    """Every run parses the vendored Argo CD CRD again (~0.6 s of each run that gets past
    loading, in compiler/policy/kind_schemas.py), and this module runs the CLI ~100 times:
    the parsed schema is kept, keyed by the file's bytes. It is a pure function of a
    vendored file, so what each row checks is unchanged; without the method (renamed),
    the rows only run slower."""
    original = getattr(KindSchemas, "_crd_schema", None)
    if original is None:
        yield
        return
    parsed: dict[tuple[str, str, str], dict[str, Any]] = {}

    def crd_schema(self: KindSchemas, path: Path, api_version: str) -> dict[str, Any]:
        key = (hashlib.sha256(path.read_bytes()).hexdigest(), api_version, self.kubernetes_version)
        if key not in parsed:
            parsed[key] = original(self, path, api_version)
        return copy.deepcopy(parsed[key])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(KindSchemas, "_crd_schema", crd_schema)
        yield


@pytest.mark.parametrize("group", GROUPS, ids=[g.stem for g in GROUPS])
def test_every_line_of_the_issue_has_a_case(group: Group) -> None:
    ids = [row["id"] for row in group.rows]
    assert len(ids) == len(set(ids)), "ids are unique"
    covered: set[str] = set()
    for row in group.rows:
        assert set(row) <= ROW_KEYS, (row["id"], set(row) - ROW_KEYS)
        assert sum(key in row for key in INPUTS) >= 1, row["id"]
        lines = [row["covers"], *row.get("also_covers", [])]
        assert set(lines) <= {*group.lines, BEYOND}, row["id"]
        if "xfail" not in row:
            covered.update(lines)
        assert set(vias(row)) <= {"snapshot", "moto"}, row["id"]
        if "budget" in row or "strings" in row:
            assert "snapshot" in vias(row), row["id"]
        # Bad input is 2 and a violation 1 (DESIGN.md); a refusal says what it refused.
        assert row["exit"] in (0, 1, 2), row["id"]
        assert row["exit"] == 0 or row.get("expect"), row["id"]
        assert row["exit"] != 0 or row.get("strings"), row["id"]
    assert [line for line in group.lines if line not in covered] == []


@pytest.mark.parametrize(("row", "via"), row_params())
def test_row(
    row: dict[str, Any],
    via: str,
    project_dir: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store: DynamoDBStore | None = None
    if via == "moto":
        store = request.getfixturevalue("inprocess_store")  # mocked for the whole test
        seed(store, SnapshotStore(project_dir / "examples"))
    prepared = prepare(row, via, project_dir, tmp_path, store)
    items_before = item_count(store) if store is not None else 0
    before = tree(prepared.out) if prepared.out is not None else {}
    outcome = run_cli(prepared.argv, capsys)
    check_answer(row, via, outcome, prepared.cluster)
    if "budget" in row:
        assert outcome.seconds < row["budget"]["seconds"], outcome.seconds
    for name in row.get("absent_files", []):
        assert not Path(name.replace("{tmp}", str(tmp_path))).exists(), name
    if store is not None and row["exit"] != 0:
        assert item_count(store) == items_before, "nothing written to the table"
    if prepared.out is None:
        return
    after = tree(prepared.out)
    if row["exit"] != 0:
        assert after == before, "the previous tree is untouched, byte for byte"
        return
    mine = f"clusters/{prepared.cluster}/"
    assert {
        p: d for p, d in after.items() if p.startswith("clusters/") and not p.startswith(mine)
    } == {p: d for p, d in before.items() if p.startswith("clusters/") and not p.startswith(mine)}
    for rel, expected in row.get("strings", {}).items():
        check_strings(after[rel].decode("utf-8"), expected)


def check_strings(text: str, expected: dict[str, dict[str, str]]) -> None:
    """Every YAML reader reads the values back as the same strings: PyYAML (YAML 1.1),
    ruamel (YAML 1.2); and each is quoted, as Go's yaml.v2 also retypes y, 1_000 or 0755."""
    readers = {"yaml 1.1": yaml.safe_load(text), "yaml 1.2": YAML(typ="safe", pure=True).load(text)}
    for dotted, values in expected.items():
        for reader, document in readers.items():
            found = document
            for part in dotted.split("."):
                found = found[part]
            assert {key: found.get(key) for key in values} == values, (reader, dotted, found)
        for key, value in values.items():
            # A multi-line value is one double-quoted line whose escapes (\n, \t) are JSON's.
            quoted = (f"{key}: '{value}'", f'{key}: "{value}"', f"{key}: {json.dumps(value)}")
            assert any(form in text for form in quoted), (key, value)


@pytest.mark.parametrize(("row", "via"), row_params(lambda row, via: bool(row.get("publish"))))
def test_an_escalation_is_never_published(
    row: dict[str, Any],
    via: str,
    project_dir: Path,
    tmp_path: Path,
    remote: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prepared = prepare(row, via, project_dir, tmp_path, None)
    refs = git("for-each-ref", cwd=remote)
    source = prepared.argv[prepared.argv.index("--project") :]
    argv = ["publish", "--cluster", prepared.cluster, "--repo", str(remote), "--forge", "none"]
    outcome = run_cli([*argv, *source], capsys)
    check_answer(row, via, outcome, prepared.cluster)
    assert git("for-each-ref", cwd=remote) == refs, "no branch was pushed"


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_ADDRESS_SPACE, CHILD_ADDRESS_SPACE))


@pytest.mark.parametrize(
    ("row", "via"), row_params(lambda row, via: "budget" in row and via == "snapshot")
)
def test_a_bomb_is_refused_in_bounded_memory(
    row: dict[str, Any], via: str, project_dir: Path, tmp_path: Path
) -> None:
    """The same run in a child process: its peak memory (ru_maxrss), not the test's."""
    prepared = prepare(row, via, project_dir, tmp_path, None)
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, *prepared.argv],
            cwd=ROOT,
            stdout=out,
            stderr=err,
            preexec_fn=_limit_address_space,
            env={**os.environ, "PEAK_FILE": str(tmp_path / "peak")},
        )
    killer = threading.Timer(CHILD_KILL_AFTER, child.kill)
    killer.start()
    try:
        _pid, status, usage = os.wait4(child.pid, 0)  # reaped here, with its resource usage
    finally:
        killer.cancel()
    child.returncode = os.waitstatus_to_exitcode(status)  # so that Popen does not wait again
    output = stdout.read_text() + stderr.read_text()
    assert child.returncode == row["exit"], output
    for fragment in row.get("expect", []):
        assert fragment in output, output
    del usage
    peak = int((tmp_path / "peak").read_text()) / 1024  # KiB
    assert peak < row["budget"]["megabytes"], f"{peak:.0f} MB"


def test_the_generators_make_what_the_rows_say(tmp_path: Path) -> None:
    """Guards for the generated inputs: a bomb that does not explode tests nothing."""
    laughs = yaml.load(billion_laughs(3), Loader=yaml.SafeLoader)  # aliases shared, cheap
    assert len(laughs["c"]) == 9 and len(laughs["c"][0]) == 9
    assert len(big(3, "yaml").encode()) > 3 * 1024 * 1024
    assert len(big(3, "json").encode()) > 3 * 1024 * 1024
    assert json.loads(wide_json(450))  # valid JSON, over the item limit
    assert len(wide_json(450)) > 450 * 1024
    flow = wide_flow_yaml(300)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    as_json = json.dumps(yaml.load(flow, Loader=loader), separators=(",", ":"))
    assert len(flow) < 400 * 1024 < len(as_json)
    nested: Any = json.loads(deep(150, "json"))["namespaces"]
    depth = 0
    while isinstance(nested, dict):
        nested, depth = nested["a"], depth + 1
    assert depth == 150
    assert deep(10000, "yaml-map").count("{") == 10000
