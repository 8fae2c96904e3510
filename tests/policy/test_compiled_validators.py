"""fastjsonschema's compiled validators kept in the cache dir (issue 18: the hook's fixed
cost): reused when every input is the same, compiled again when any input changes, and
never run from a corrupt or foreign entry."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema
import pytest

from compiler.cli import main
from compiler.policy.compiled_validators import KIND, compiled_validator, validator_key
from compiler.policy.validator import TwoStageValidator
from tests.conftest import ROOT

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string", "pattern": "^[a-z]+$"}},
    "additionalProperties": False,
}
OTHER: dict[str, Any] = {**SCHEMA, "properties": {"name": {"type": "integer"}}}


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True)


def _compile(schema: dict[str, Any], cache: Path | None, **options: bool) -> Any:
    return compiled_validator(
        schema,
        _text(schema),
        use_default=options.get("use_default", True),
        use_formats=options.get("use_formats", True),
        cache_dir=cache,
    )


def _entries(cache: Path) -> list[Path]:
    return sorted((cache / KIND).glob("*.bin"))


def _no_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("compiled again, not read from the cache")

    monkeypatch.setattr(fastjsonschema, "compile_to_code", refuse)


def test_a_stored_validator_is_read_back_not_compiled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _compile(SCHEMA, tmp_path)
    assert len(_entries(tmp_path)) == 1
    _no_compiling(monkeypatch)
    again = _compile(SCHEMA, tmp_path)
    for validate in (first, again):
        validate({"name": "ok"})
        with pytest.raises(fastjsonschema.JsonSchemaValueException):
            validate({"name": "Not-OK"})
        with pytest.raises(fastjsonschema.JsonSchemaValueException):
            validate({"other": 1})


def test_without_a_cache_dir_nothing_is_stored(tmp_path: Path) -> None:
    validate = _compile(SCHEMA, None)
    validate({"name": "ok"})
    assert not (tmp_path / KIND).exists()


@pytest.mark.parametrize(
    "change",
    ["schema", "use_default", "use_formats", "fastjsonschema version", "python bytecode"],
)
def test_every_input_is_in_the_key(
    change: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A changed input is a new entry: the old one is never read for it."""
    before = validator_key(_text(SCHEMA), use_default=True, use_formats=True)
    _compile(SCHEMA, tmp_path)
    schema, options = SCHEMA, {"use_default": True, "use_formats": True}
    if change == "schema":
        schema = OTHER
    elif change in ("use_default", "use_formats"):
        options[change] = False
    elif change == "fastjsonschema version":
        monkeypatch.setattr(fastjsonschema, "VERSION", fastjsonschema.VERSION + ".1")
    else:
        monkeypatch.setattr(importlib.util, "MAGIC_NUMBER", b"\x00\x00\r\n")
    assert validator_key(_text(schema), **options) != before
    _compile(schema, tmp_path, **options)
    assert len(_entries(tmp_path)) == 2


def test_a_changed_schema_is_validated_by_its_own_code(tmp_path: Path) -> None:
    _compile(SCHEMA, tmp_path)
    validate = _compile(OTHER, tmp_path)
    validate({"name": 3})
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validate({"name": "ok"})


@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty", "foreign"])
def test_a_corrupt_or_foreign_entry_is_compiled_again(
    damage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _compile(SCHEMA, tmp_path)
    [entry] = _entries(tmp_path)
    data = entry.read_bytes()
    if damage == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":
        entry.write_bytes(data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
    elif damage == "empty":
        entry.write_bytes(b"")
    else:  # another schema's entry under this one's name: it would accept an integer
        _compile(OTHER, tmp_path)
        [other] = [p for p in _entries(tmp_path) if p != entry]
        entry.write_bytes(other.read_bytes())
    compiled = []
    real = fastjsonschema.compile_to_code

    def counting(*args: Any, **kwargs: Any) -> str:
        compiled.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(fastjsonschema, "compile_to_code", counting)
    validate = _compile(SCHEMA, tmp_path)
    assert compiled == [1]
    validate({"name": "ok"})
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validate({"name": 3})
    # The damaged entry was replaced: the next run reads it.
    _no_compiling(monkeypatch)
    _compile(SCHEMA, tmp_path)({"name": "ok"})


def test_an_unwritable_cache_dir_is_no_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    validate = _compile(SCHEMA, blocker / "cache")
    validate({"name": "ok"})


def test_with_a_cache_dir_the_two_stage_validator_compiles_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a cache the first document is checked by the compiled validator (jsonschema
    is asked only about a failure), and the next run reads it from the cache."""

    def fresh() -> TwoStageValidator:
        full = jsonschema.Draft202012Validator(SCHEMA)
        return TwoStageValidator(SCHEMA, full, compile_after=1000, cache_dir=tmp_path)

    assert fresh().validate({"name": "ok"}) is None
    assert len(_entries(tmp_path)) == 1
    _no_compiling(monkeypatch)
    failure = fresh().validate({"name": 3})
    assert failure is not None and failure.fast is not None
    assert [e.validator for e in failure.errors] == ["type"]


def test_too_large_a_schema_is_neither_compiled_nor_stored(tmp_path: Path) -> None:
    full = jsonschema.Draft202012Validator(SCHEMA)
    validator = TwoStageValidator(
        SCHEMA, full, compile_after=0, max_compiled_chars=10, cache_dir=tmp_path
    )
    assert validator.validate({"name": "ok"}) is None
    assert not (tmp_path / KIND).exists()


def test_a_validate_run_keeps_its_validators_unless_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["validate", "--cluster", "dev-k3s", "--source", "snapshot:examples"]
    argv += ["--project", str(ROOT)]
    for flag, kept in (("--no-cache", False), (None, True)):
        cache = tmp_path / f"cache-{kept}"
        monkeypatch.setenv("GITOPS_CACHE_DIR", str(cache))
        assert main([*argv, *([flag] if flag else [])]) == 0, capsys.readouterr().err
        assert bool(_entries(cache)) is kept
    monkeypatch.setenv("GITOPS_NO_CACHE", "1")
    monkeypatch.setenv("GITOPS_CACHE_DIR", str(tmp_path / "cache-env"))
    assert main(argv) == 0
    assert not _entries(tmp_path / "cache-env")
    # What a run stored is what the next run reads.
    monkeypatch.delenv("GITOPS_NO_CACHE")
    monkeypatch.setenv("GITOPS_CACHE_DIR", str(tmp_path / "cache-True"))
    stored = {p.name: p.stat().st_mtime_ns for p in _entries(tmp_path / "cache-True")}
    _no_compiling(monkeypatch)
    assert main(argv) == 0
    assert {p.name: p.stat().st_mtime_ns for p in _entries(tmp_path / "cache-True")} == stored
