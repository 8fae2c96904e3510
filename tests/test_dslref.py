"""docs/dsl.md is generated from the DSL schema and current (issue 20)."""

from __future__ import annotations

import json

from compiler.dslref import RENDERS, _entries, _Schema, render
from tests.conftest import ROOT

SCHEMA = json.loads((ROOT / "policies/cluster-config.schema.json").read_text())


def test_docs_dsl_md_is_current() -> None:
    current = (ROOT / "docs/dsl.md").read_text()
    assert render(SCHEMA, ROOT) == current, (
        "docs/dsl.md is stale: run `.venv/bin/python -m compiler.dslref docs/dsl.md`"
    )


def test_every_key_is_described_and_documented() -> None:
    text = (ROOT / "docs/dsl.md").read_text()
    entries = list(_entries(SCHEMA, "", _Schema(SCHEMA)))
    assert len(entries) > 300
    undescribed = [path for path, node in entries if not node.get("description")]
    assert undescribed == []  # the schema carries the descriptions
    for path, _ in entries:
        assert f"### `{path}`\n" in text
    assert set(RENDERS) <= {path for path, _ in entries}  # no stale renders entry


def test_a_key_shows_type_constraints_renders_to_and_an_example() -> None:
    text = (ROOT / "docs/dsl.md").read_text()
    section = text.split("### `namespaces.<name>.quotas.<name>`\n", 1)[1].split("###", 1)[0]
    assert "- renders to: `v1` ResourceQuota" in section
    assert "- type: map of name → " in section
    assert "```yaml\nnamespaces:\n  example:\n    quotas:\n" in section
