"""Every overlay and example this repository ships is in `format`'s canonical form
(issue 20): a user who copies one passes the gitops-format hook at their first commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.cli import main
from tests.conftest import ROOT

SHIPPED = sorted(
    p.relative_to(ROOT)
    for pattern in ("overlays/**/*.yaml", "examples/**/*.yaml")
    for p in ROOT.glob(pattern)
)


def test_there_are_shipped_files() -> None:
    assert Path("overlays/prod/20-no-sandbox.yaml") in SHIPPED
    assert Path("examples/defaults.yaml") in SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=str)
def test_shipped_file_is_canonical(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["format", "--check", str(ROOT / path)]) == 0, (
        f"{path} is not in the canonical form: run `gitops-compiler format {path}`\n"
        + capsys.readouterr().out
    )
