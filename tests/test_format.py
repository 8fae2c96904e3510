"""`format`: the canonical text of overlay YAML, comments kept, data unchanged."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.commands.format import format_command
from compiler.errors import EXIT_FINDINGS, EXIT_OK, InputError
from compiler.overlay_format import FormatterError, format_overlay
from compiler.yamlio import dump_yaml, load_layer_yaml
from compiler.yamlio.tags import YAML11_BOOL_WORDS

ROOT = Path(__file__).resolve().parent.parent

MESSY = """\
# Production overrides for the payments team.
# Reviewed by platform.

namespaces:
    payments:   # the payments namespace
        quotas: {payments-quota: {memory: 16Gi, cpu: '8'}}
        labels: {team: payments, environment: 'prod'}
        # who may deploy
        access:
            deployers:
                users: ['ops@example.com', "dev@example.com"]
                role: deployer
    sandbox: null   # prod has no sandbox
addons:
  ingress-nginx: {version: 4.11.2, values: {controller: {replicaCount: 3}}}
# look-alikes that must stay strings
strings:
  mode: "0755"
  float: '1e3'
  answer: "no"
  switch: 'on'
  date: "2026-01-01"
  tilde: "~"
  letter: "y"
  unicode: "café ☕"
  script: "#!/bin/sh\\necho hello\\n"
"""

CANONICAL = """\
# Production overrides for the payments team.
# Reviewed by platform.

addons:
  ingress-nginx:
    values:
      controller:
        replicaCount: 3
    version: 4.11.2
namespaces:
  payments:  # the payments namespace
    # who may deploy
    access:
      deployers:
        role: deployer
        users:
          - ops@example.com
          - dev@example.com
    labels:
      environment: prod
      team: payments
    quotas:
      payments-quota:
        cpu: "8"
        memory: 16Gi
  sandbox: null  # prod has no sandbox
# look-alikes that must stay strings
strings:
  answer: "no"
  date: "2026-01-01"
  float: "1e3"
  letter: "y"
  mode: "0755"
  script: |
    #!/bin/sh
    echo hello
  switch: "on"
  tilde: "~"
  unicode: café ☕
"""

CASES = {
    # issue 16: a comment is about the key it precedes (or ends the line of), wherever
    # sorting moves that key; only a blank line or `---` makes comments a header.
    "a comment right above the first key travels with it": (
        "# about b\nb: 1\n# about a\na: 2\n",
        "# about a\na: 2\n# about b\nb: 1\n",
    ),
    "a comment above a nested first key travels with it": (
        "m:\n  # about zeta\n  zeta: 1\n  alpha: 2\n",
        "m:\n  alpha: 2\n  # about zeta\n  zeta: 1\n",
    ),
    "a comment between a key and its block value stays with what follows it": (
        "m:\n  # about zz\n  zz: 2\n  yy: 3\n",
        "m:\n  yy: 3\n  # about zz\n  zz: 2\n",
    ),
    "a comment inside a flow mapping stays with the key whose line it ends": (
        "m: {zeta: 1, # about zeta\n  alpha: 2}\n",
        "m:\n  alpha: 2\n  zeta: 1  # about zeta\n",
    ),
    "a comment on the document start is the header": (
        "--- # the document\nzeta: 1\nalpha: 2\n",
        "# the document\n\nalpha: 2\nzeta: 1\n",
    ),
    "a comment on the document end stays at the end": (
        "zeta: 1\nalpha: 2\n... # the end\n",
        "alpha: 2\nzeta: 1\n# the end\n",
    ),
    "a multi-line string starting with a tab is double-quoted (a block cannot hold it)": (
        'a: "\\tindented\\nsecond\\n"\nb: "x\\n\\ty\\n"\n',
        'a: "\\tindented\\nsecond\\n"\nb: "x\\n\\ty\\n"\n',
    ),
    "a blank line ends the header; the rest travels with its key": (
        "# header\n\n# about zeta\nzeta: 1\nalpha: 2\n",
        "# header\n\nalpha: 2\n# about zeta\nzeta: 1\n",
    ),
    # An empty value is refused by the loader (issue 17: only an explicit null deletes).
    "values: numbers, booleans, null and ~": (
        "e: Null\nd: ~\nc: 1.5\nb: True\na: 0x1f\nf: {}\ng: []\n",
        "a: 31\nb: true\nc: 1.5\nd: null\ne: null\nf: {}\ng: []\n",
    ),
    "look-alike keys and strings keep their quotes": (
        "'on': 1\n\"1e3\": 2\nx: '0o17'\n",
        '"1e3": 2\n"on": 1\nx: "0o17"\n',
    ),
    "plain where every reader agrees, double quotes otherwise": (
        "a: 'plain text'\nb: 'it''s'\nc: ': colon'\nd: ''\ne: \"tab\\there\"\n",
        'a: plain text\nb: it\'s\nc: ": colon"\nd: ""\ne: "tab\\there"\n',
    ),
    "a sequence item's comments go above its dash": (
        "l:\n- one   # eol one\n# about two\n- two\n- name: x  # eol name\n  # about b\n  b: 2\n",
        "l:\n  - one  # eol one\n  # about two\n  - two\n  # about b\n  - b: 2\n"
        "    name: x  # eol name\n",
    ),
    "lists of lists as ruamel indents them": (
        "m: [[a, b], [c]]\n",
        "m:\n  -   - a\n      - b\n  -   - c\n",
    ),
    "multi-line strings as literal blocks, chomping kept": (
        'k: |-\n  no newline\n  at end\nj: "two\\n\\n"\ni: "  indented\\nfirst\\n"\n',
        "i: |2\n    indented\n  first\nj: |+\n  two\n\nk: |-\n  no newline\n  at end\n",
    ),
    "end-of-line comment of a block scalar moves above its key": (
        "s: |  # a script\n  run\n",
        "# a script\ns: |\n  run\n",
    ),
    "end-of-line comment of a flow collection goes to its key": (
        "b: [x, z]  # two\na: {k: v}  # one\n",
        "a:  # one\n  k: v\nb:  # two\n  - x\n  - z\n",
    ),
    "trailing comments stay at the end": (
        "b: 1\na:\n  x: 1\n  # the end\n",
        "a:\n  x: 1\nb: 1\n# the end\n",
    ),
    "markers, CRLF and BOM are dropped (the `---` comment stays a header: a blank line)": (
        "\ufeff%YAML 1.1\r\n--- # doc\r\nb: 1\r\na: 2\r\n...\r\n",
        "# doc\n\na: 2\nb: 1\n",
    ),
    "an item's dash alone on its line": (
        "l:\n-   # first\n  k: v\n  a: 1\n",
        "l:\n  # first\n  - a: 1\n    k: v\n",
    ),
    "a key with a line break stays one double-quoted line": (
        "? |-\n  two\n  lines\n: 1  # one\n",
        '"two\\nlines": 1  # one\n',
    ),
    "comments only": ("# nothing yet\n\n# really\n", "# nothing yet\n\n# really\n"),
    "empty file": ("", ""),
}


def fmt(text: str, source: str = "overlays/prod/x.yaml") -> str:
    return format_overlay(text.encode("utf-8"), source).decode("utf-8")


def typed(value: Any) -> Any:
    """The data with every scalar's type made visible (True == 1 for plain ==)."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


def data(text: str) -> Any:
    return typed(load_layer_yaml(text.encode("utf-8"), "t.yaml").value)


def test_messy_overlay_becomes_canonical() -> None:
    assert fmt(MESSY) == CANONICAL
    assert fmt(CANONICAL) == CANONICAL
    assert data(CANONICAL) == data(MESSY)


@pytest.mark.parametrize(("messy", "canonical"), CASES.values(), ids=CASES.keys())
def test_canonical_form(messy: str, canonical: str) -> None:
    assert fmt(messy) == canonical
    assert fmt(canonical) == canonical
    assert data(canonical) == data(messy)


def test_quoted_case_variants_of_yaml11_booleans() -> None:
    # The strict loader refuses plain yEs/oN in any case: the formatter must quote them.
    assert fmt("a: 'yEs'\nb: 'oN'\nc: 'Off'\n") == 'a: "yEs"\nb: "oN"\nc: "Off"\n'


@pytest.mark.parametrize(
    "path", sorted(ROOT.glob("overlays/*/*.yaml")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_project_overlays(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    out = fmt(text, str(path))
    assert data(out) == data(text)
    assert fmt(out) == out
    assert [line for line in out.splitlines() if line.lstrip().startswith("#")] == [
        line.strip() for line in text.splitlines() if line.lstrip().startswith("#")
    ]


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("a: 1\nb: 2\na: 3\n", 3, "duplicate key 'a'"),
        ("a: &x [1]\nb: *x\n", 1, "aliases"),
        ("a:\n  enabled: on\n", 2, "read as a boolean"),
        ("a: !!python/name:os.system x\n", 1, "not allowed"),
        ("a: [1, 2\n", 2, "expected ',' or ']'"),
        # Strings to YAML 1.1, numbers to YAML 1.2: refused, never quoted as one reading.
        ("a:\n  b: 1e3\n", 2, "the string '1e3' in YAML 1.1 and the number 1000 in YAML 1.2"),
        ("a: x\nmode: 0o17\n", 2, "the string '0o17' in YAML 1.1 and the number 15 in YAML 1.2"),
        ("a: [1.5E3]\n", 1, "the string '1.5E3' in YAML 1.1 and the number 1500 in YAML 1.2"),
    ],
)
def test_refused_input_names_file_and_line(tmp_path: Path, text: str, line: int, says: str) -> None:
    with pytest.raises(InputError) as err:
        fmt(text, "overlays/prod/bad.yaml")
    assert str(err.value).startswith(f"overlays/prod/bad.yaml:{line}")
    assert says in str(err.value)
    path = write(tmp_path / "overlays/prod/bad.yaml", text)
    with pytest.raises(InputError) as err:
        format_command(files=[path], check=False)
    assert str(err.value).startswith(f"{path}:{line}")
    assert path.read_text(encoding="utf-8") == text  # never rewritten


# ------------------------------------------------------------------------------ the command


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def test_command_rewrites_and_keeps_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    messy = write(tmp_path / "prod/10-x.yaml", MESSY)
    messy.chmod(0o640)
    done = write(tmp_path / "prod/20-y.yml", CANONICAL)
    assert format_command(files=[messy, done], check=False) == EXIT_FINDINGS
    assert messy.read_text(encoding="utf-8") == CANONICAL
    assert stat.S_IMODE(messy.stat().st_mode) == 0o640
    # no temp file left behind
    assert sorted(p.name for p in messy.parent.iterdir()) == ["10-x.yaml", "20-y.yml"]
    out = capsys.readouterr().out
    assert out == f"reformatted {messy}\n1 file reformatted, 1 file already canonical\n"
    assert format_command(files=[messy, done], check=False) == EXIT_OK


def test_check_leaves_files_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messy = write(tmp_path / "10-x.yaml", MESSY)
    before = messy.stat()
    assert format_command(files=[messy], check=True) == EXIT_FINDINGS
    assert messy.read_text(encoding="utf-8") == MESSY
    assert messy.stat().st_mtime_ns == before.st_mtime_ns
    out = capsys.readouterr().out
    assert (
        out == f"would reformat {messy}\n1 file would be reformatted, 0 files already canonical\n"
    )


def test_bad_file_is_reported_after_the_others_and_never_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path / "10-bad.yaml", "b: {x: 1}\nb: 2\n")
    good = write(tmp_path / "20-good.yaml", "b: 1\na: 2\n")
    missing = tmp_path / "30-missing.yaml"
    with pytest.raises(InputError) as err:
        format_command(files=[bad, good, missing], check=False)
    assert err.value.exit_code == 2
    assert str(err.value).splitlines() == [
        f"{bad}:2: b: duplicate key 'b' (first at line 1)",
        f"{missing}: cannot read: No such file or directory",
    ]
    assert bad.read_text(encoding="utf-8") == "b: {x: 1}\nb: 2\n"
    assert good.read_text(encoding="utf-8") == "a: 2\nb: 1\n"
    assert capsys.readouterr().out.endswith(
        "1 file reformatted, 0 files already canonical, 2 files could not be formatted\n"
    )


def test_non_yaml_skipped_and_no_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = write(tmp_path / "README.md", "b: 1\na: 2\n")
    assert format_command(files=[readme], check=False) == EXIT_OK
    assert readme.read_text(encoding="utf-8") == "b: 1\na: 2\n"
    assert "skipping" in capsys.readouterr().err
    assert format_command(files=[], check=False) == EXIT_OK


def test_symlinked_overlay_rewrites_its_target(tmp_path: Path) -> None:
    target = write(tmp_path / "real.yaml", "b: 1\na: 2\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    assert format_command(files=[link], check=False) == EXIT_FINDINGS
    assert link.is_symlink()
    assert target.read_text(encoding="utf-8") == "a: 2\nb: 1\n"


# ----------------------------------------------------------------------------- properties

LOOK_ALIKES = [
    *("no", "No", "NO", "on", "off", "yes", "y", "Y", "n", "N", "true", "False", "null"),
    *("~", "", "0755", "0o755", "0x1F", "0b101", "08", "1e3", "1E-5", ".5", "1_000", "+1"),
    *("1.0", ".inf", "-.nan", "2026-01-01", "2026-01-01T10:00:00Z", "1:20", "<<", "="),
    *("8", "16Gi", "500m", "a: b", "- x", "#hash", "x #y", "'q'", '"d"', "@at", "`tick"),
    *("line\nbreak", "trailing\n", "\n", " lead", "trail ", "tab\t", "é ☕", "\x85nel"),
]
# The strict loader refuses yEs/oN written plain, which dump_yaml (PyYAML's resolver)
# writes plain: keep those case variants out of what dump_yaml is given.
text = st.text(max_size=12).filter(
    lambda s: s.lower() not in YAML11_BOOL_WORDS or s in {"yes", "Yes", "YES", "on", "On"}
)
strings = st.one_of(st.sampled_from(LOOK_ALIKES), text)
scalars = st.one_of(strings, st.integers(), st.booleans(), st.none())
documents = st.dictionaries(
    strings,
    st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(strings, inner, max_size=4)
        ),
        max_leaves=20,
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_dumped_documents_format_to_the_same_data(document: dict[str, Any]) -> None:
    dumped = dump_yaml(document)
    assert typed(load_layer_yaml(dumped, "t.yaml").value) == typed(document)
    out = format_overlay(dumped, "t.yaml")
    assert typed(load_layer_yaml(out, "t.yaml").value) == typed(document)
    assert format_overlay(out, "t.yaml") == out
    assert out.endswith(b"\n") and not out.endswith(b"\n\n")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.lists(st.sampled_from(["", "line", "eol", "blank"]), max_size=40))
def test_comments_anywhere_survive_and_settle(document: dict[str, Any], where: list[str]) -> None:
    """Comment lines (any indentation) and end-of-line comments sprinkled over a dump:
    formatting never trips its own safety net and is idempotent."""
    lines = dump_yaml(document).decode("utf-8").split("\n")
    for number, (kind, line) in enumerate(zip(where, lines, strict=False)):
        if kind == "line":
            lines[number] = f"{' ' * (number % 5)}# c{number}\n{line}"
        elif kind == "eol" and line.strip():
            lines[number] = f"{line}{' ' * (number % 3 + 1)}# e{number}"
        elif kind == "blank":
            lines[number] = f"\n{line}"
    messy = "\n".join(lines).encode("utf-8")
    try:
        before = load_layer_yaml(messy, "t.yaml").value  # a comment may end a literal block
    except InputError:
        return
    out = format_overlay(messy, "t.yaml")
    assert typed(load_layer_yaml(out, "t.yaml").value) == typed(before)
    assert format_overlay(out, "t.yaml") == out


def test_safety_net_keeps_a_file_whose_data_would_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import compiler.overlay_format as overlay_format

    monkeypatch.setattr(overlay_format, "_render", lambda text, value, source: "a: 2\n")
    path = write(tmp_path / "10-x.yaml", "a: 1\n")
    with pytest.raises(FormatterError) as err:
        format_command(files=[path], check=False)
    assert err.value.exit_code == 4
    assert "loads to different data" in str(err.value)
    assert path.read_text(encoding="utf-8") == "a: 1\n"
