"""A cluster record's facts are checked with the same message whichever validator runs:
jsonschema for the first records of a run, compiled fastjsonschema after them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from compiler.errors import InputError
from compiler.layers import _FACTS_COMPILE_AFTER, StackLoader, _facts_validator
from compiler.model import LayerVersion
from compiler.project import load_project
from compiler.sources import Pin
from compiler.sources.snapshot import SnapshotStore
from tests.conftest import ROOT


def _record(index: int, **facts: Any) -> LayerVersion:
    name = f"c{index:03d}"
    cluster = {"name": name, "env": "dev", "server": f"https://{name}.example:6443", **facts}
    return LayerVersion(
        pk=f"cluster#{name}", sk="v#0000000001", version=1, config={},
        created_at="2026-01-01T00:00:00Z", cluster=cluster,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        ({"env": "Dev_1"}, r"field cluster\.env: 'Dev_1' does not match"),
        ({"server": "http://c.example"}, r"field cluster\.server: 'http://c\.example' does not"),
        ({"calicoAPI": "v3"}, r"field cluster\.calicoAPI: 'v3' is not one of"),
        ({"server": 6443}, r"field cluster\.server: 6443 is not of type 'string'"),
        ({"labels": {"tier": 3}}, r"field cluster\.labels\.tier: 3 is not of type 'string'"),
        # The region is every object's label value gitops-compiler.io/region: the API
        # server refuses one that starts with '-' or is longer than 63 characters.
        ({"region": "-eu-west-1-"}, r"field cluster\.region: '-eu-west-1-' does not match"),
        ({"region": "r" * 64}, r"field cluster\.region: 'r{64}' is too long"),
        # The rule a `not` keeps, not the schema fragment jsonschema would quote.
        (
            {"server": "https://c.example\n"},
            r"field cluster\.server: 'https://c\.example\\n' is not allowed: it must be a "
            r"single line: no line breaks \(",
        ),
    ],
)
@pytest.mark.parametrize("position", [0, _FACTS_COMPILE_AFTER + 5])
def test_bad_facts_named_the_same_before_and_after_the_compiled_validator(
    facts: dict[str, Any], message: str, position: int
) -> None:
    _facts_validator.cache_clear()  # a run's first records go to jsonschema alone
    loader = StackLoader(SnapshotStore(ROOT / "examples"), load_project(ROOT), Pin())
    for index in range(position):
        loader.facts(_record(index))  # good records first: past them, fastjsonschema runs
    bad = _record(position, **facts)
    with pytest.raises(InputError, match=rf"item pk='{bad.pk}' sk='v#0000000001'.*{message}"):
        loader.facts(bad)
    compiled = _facts_validator(loader.project.definitions_dir, loader.cache_dir)._fast is not None
    assert compiled == (position > _FACTS_COMPILE_AFTER)
    # A good record after the bad one still passes, with its facts read back.
    assert loader.facts(_record(position + 1)).env == "dev"


@pytest.mark.parametrize(("facts", "message"), [({"env": "Dev_1"}, r"field cluster\.env: 'Dev_1'")])
def test_with_a_cache_dir_the_facts_are_compiled_at_the_first_record(
    facts: dict[str, Any], message: str, tmp_path: Path
) -> None:
    """A compile with the cache on (a one-cluster run, a hook) checks its first record
    with the compiled validator, kept in the cache dir; a bad one is named the same."""
    project = load_project(ROOT)
    loader = StackLoader(SnapshotStore(ROOT / "examples"), project, Pin(), cache_dir=tmp_path)
    loader.facts(_record(0))
    assert _facts_validator(project.definitions_dir, tmp_path)._fast is not None
    assert list((tmp_path / "validators").glob("*.bin"))
    with pytest.raises(InputError, match=message):
        StackLoader(SnapshotStore(ROOT / "examples"), project, Pin(), cache_dir=tmp_path).facts(
            _record(1, **facts)
        )
