"""Deletion is explicit in overlays (issue 17): an empty value is an error naming the
file, the line and the fix; `null` and `~` still delete, and explain says who did."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.cli import main
from compiler.errors import InputError
from compiler.yamlio import load_layer_yaml

SNAPSHOT = ["--source", "snapshot:examples"]
# `quotas:` whose entry lost its indentation: YAML reads an empty (null) quotas.
MIS_INDENTED = """\
namespaces:
  dev-team:
    quotas:
    dev-quota: {cpu: "4"}
"""


def test_an_empty_value_is_an_error_at_the_key_line_with_the_fix() -> None:
    with pytest.raises(InputError) as raised:
        load_layer_yaml(MIS_INDENTED.encode(), "overlays/dev/20-quota.yaml")
    assert raised.value.message == (
        "overlays/dev/20-quota.yaml:3: namespaces.dev-team.quotas: empty value: it would "
        "delete this key from the layers below; write `null` (or `~`) to delete it, or "
        "indent the lines below if they belong to it"
    )


@pytest.mark.parametrize("text", ["a: null\n", "a: ~\n", "a: [1, null]\n", "a: ''\n"])
def test_explicit_nulls_and_empty_strings_still_load(text: str) -> None:
    assert "a" in load_layer_yaml(text.encode(), "x.yaml").value


def test_validate_refuses_an_overlay_with_an_empty_value(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: the quota vanished and validate said valid.
    (project_dir / "overlays/dev/20-quota.yaml").write_text(MIS_INDENTED)
    argv = ["validate", "--cluster", "dev-k3s", "--project", str(project_dir), *SNAPSHOT]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "20-quota.yaml:3: namespaces.dev-team.quotas: empty value" in err


@pytest.mark.parametrize("null", ["null", "~"])
def test_an_explicit_null_deletes_and_explain_names_the_layer(
    project_dir: Path, null: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (project_dir / "overlays/dev/20-quota.yaml").write_text(
        f"namespaces:\n  dev-team:\n    annotations: {null}\n"
    )
    argv = ["explain", "--cluster", "dev-k3s", "--project", str(project_dir), *SNAPSHOT]
    assert main([*argv, "namespaces.dev-team.annotations"]) == 0
    out = capsys.readouterr().out
    assert "deleted by" in out
    assert "overlays/dev/20-quota.yaml:3" in out
