"""jsonschema's valid verdicts kept in the cache dir (compiler/policy/verdicts.py):
a schema too large to compile, and the project file, are not validated again for a
document found valid before, and jsonschema is not built for it; an invalid one is
validated every time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from compiler.errors import UsageError
from compiler.policy import verdicts
from compiler.policy.validator import TwoStageValidator
from compiler.project import load_project

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
}
LABEL = "Draft202012Validator, no format checker"


def _uncompiled(cache: Path | None, built: list[int], label: str | None = LABEL) -> Any:
    def full() -> jsonschema.protocols.Validator:
        built.append(1)
        return jsonschema.Draft202012Validator(SCHEMA)

    # Too large to compile (10 characters): jsonschema alone, as for the ApplicationSet CRD.
    return TwoStageValidator(
        SCHEMA, full, full_label=label, compile_after=0, max_compiled_chars=10, cache_dir=cache
    )


def _kept(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / verdicts.KIND).rglob("*") if p.is_file())


def test_a_valid_verdict_is_kept_and_jsonschema_not_built_again(tmp_path: Path) -> None:
    built: list[int] = []
    assert _uncompiled(tmp_path, built).validate({"name": "ok"}) is None
    assert built == [1] and len(_kept(tmp_path)) == 1
    assert _uncompiled(tmp_path, built).validate({"name": "ok"}) is None  # the next run
    assert built == [1]


def test_an_invalid_document_is_validated_every_time(tmp_path: Path) -> None:
    built: list[int] = []
    for _ in range(2):
        failure = _uncompiled(tmp_path, built).validate({"name": 3})
        assert failure is not None
        assert [e.validator for e in failure.errors] == ["type"]
    assert built == [1, 1] and not _kept(tmp_path)


def test_without_a_cache_dir_or_a_label_nothing_is_kept(tmp_path: Path) -> None:
    built: list[int] = []
    assert _uncompiled(None, built).validate({"name": "ok"}) is None
    assert _uncompiled(tmp_path, built, label=None).validate({"name": "ok"}) is None
    assert _uncompiled(tmp_path, built, label=None).validate({"name": "ok"}) is None
    assert built == [1, 1, 1] and not _kept(tmp_path)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({"n": 1}, {"n": 1.0}),
        ({"n": 1}, {"n": True}),
        ({"n": [1]}, {"n": (1,)}),
        ({"n": "1"}, {"n": 1}),
    ],
)
def test_documents_json_would_not_tell_apart_have_different_keys(one: Any, other: Any) -> None:
    assert verdicts.key(LABEL, "{}", one) != verdicts.key(LABEL, "{}", other)


def test_the_key_names_the_validator_and_the_schema() -> None:
    doc = {"name": "ok"}
    assert verdicts.key(LABEL, "{}", doc) == verdicts.key(LABEL, "{}", doc)
    assert verdicts.key(LABEL, "{}", doc) != verdicts.key("with formats", "{}", doc)
    assert verdicts.key(LABEL, "{}", doc) != verdicts.key(LABEL, '{"type":"object"}', doc)


def test_the_draft_a_schema_names_is_part_of_the_key(tmp_path: Path) -> None:
    built: list[int] = []
    assert _uncompiled(tmp_path, built).validate({"name": "ok"}) is None
    other = TwoStageValidator(
        {**SCHEMA, "$schema": "http://json-schema.org/draft-07/schema#"},
        lambda: built.append(2) or jsonschema.Draft202012Validator(SCHEMA),
        full_label=LABEL,
        compile_after=0,
        max_compiled_chars=10,
        cache_dir=tmp_path,
    )
    assert other.validate({"name": "ok"}) is None
    assert built == [1, 2]


def test_a_project_file_found_valid_is_not_validated_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("GITOPS_CACHE_DIR", str(cache))
    project = tmp_path / "project"
    project.mkdir()
    (project / "gitops-compiler.yaml").write_text("table: my-table\n")
    assert load_project(project).table == "my-table"
    assert len(_kept(cache)) == 1

    def no_jsonschema(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("validated again")

    with monkeypatch.context() as patched:
        patched.setattr(jsonschema, "Draft202012Validator", no_jsonschema)
        assert load_project(project).table == "my-table"
    # Another content is validated, and refused as before.
    (project / "gitops-compiler.yaml").write_text("table: x\n")
    for _ in range(2):
        with pytest.raises(UsageError, match=r"gitops-compiler.yaml:1: table: 'x' is too short"):
            load_project(project)
    assert len(_kept(cache)) == 1


def test_gitops_no_cache_keeps_no_project_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITOPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GITOPS_NO_CACHE", "1")
    (tmp_path / "gitops-compiler.yaml").write_text("table: my-table\n")
    assert load_project(tmp_path).table == "my-table"
    assert not (tmp_path / "cache").exists()
