"""The cue a run uses: its version, read once a binary, and the oldest one supported."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from compiler import cachedir
from compiler.cachedir import cache_root
from compiler.cli import main
from compiler.errors import EXIT_OUTSIDE, OutsideError
from compiler.policy import cue_binary
from compiler.policy.cue_binary import cue_version, supported_cue_version
from tests.conftest import ROOT, WASM_CUE, project_cue


def counting_cue(directory: Path, says: str) -> tuple[Path, Path]:
    """A cue that answers `cue version` with `says` and counts how often it was asked."""
    directory.mkdir(parents=True, exist_ok=True)
    calls = directory / "calls"
    path = directory / "cue"
    path.write_text(f"#!/bin/sh\necho x >> {calls}\nprintf '%s\\n\\ngo version\\n' '{says}'\n")
    path.chmod(0o755)
    return path, calls


def asked(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


@pytest.mark.parametrize(
    ("says", "version"),
    [
        ("cue version v0.17.1", "v0.17.1"),
        ("cue version v0.4.0-beta.1 js/wasm", "v0.4.0-beta.1"),  # the launcher's
        ("cue version v0.4.0", "v0.4.0"),
        ("cue version v1.2.3-rc.10", "v1.2.3-rc.10"),
        ("cue version (devel)", "(devel)"),  # built from a source tree: let through
    ],
)
def test_supported_versions(tmp_path: Path, says: str, version: str) -> None:
    cue, _ = counting_cue(tmp_path, says)
    assert supported_cue_version(cue) == version


@pytest.mark.parametrize("says", ["cue version v0.3.1", "cue version v0.4.0-alpha.2"])
def test_an_older_cue_is_refused_naming_it_and_the_oldest_supported(
    tmp_path: Path, says: str
) -> None:
    cue, _ = counting_cue(tmp_path, says)
    with pytest.raises(OutsideError) as raised:
        supported_cue_version(cue)
    message = str(raised.value)
    assert f"{cue} is cue {says.split()[2]}, older than the oldest" in message
    assert "(v0.4.0-beta.1)" in message and "--cue or GITOPS_CUE" in message


def test_an_older_cue_fails_the_compile_with_exit_3_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cue, _ = counting_cue(tmp_path / "bin", "cue version v0.3.1")
    out = tmp_path / "out"
    argv = ["compile", "--all", "--out", str(out), "--project", str(ROOT), "--cue", str(cue)]
    assert main([*argv, "--source", "snapshot:examples"]) == EXIT_OUTSIDE
    err = capsys.readouterr().err
    assert "is cue v0.3.1, older than the oldest the policies support" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_the_version_is_read_once_a_binary_until_it_changes(tmp_path: Path) -> None:
    cue, calls = counting_cue(tmp_path, "cue version v0.15.0")
    assert cue_version(cue) == "v0.15.0"
    cue_binary._version_of.cache_clear()  # as a new process would start
    assert cue_version(cue) == "v0.15.0"
    assert asked(calls) == 1  # the second run read the cache dir
    cue.write_text(cue.read_text().replace("v0.15.0", "v0.16.10"))  # rebuilt
    os.utime(cue, ns=(1, cue.stat().st_mtime_ns + 10**9))
    assert cue_version(cue) == "v0.16.10"
    assert asked(calls) == 2


def test_a_damaged_or_foreign_version_entry_is_ignored(tmp_path: Path) -> None:
    cue, calls = counting_cue(tmp_path, "cue version v0.15.0")
    assert cue_version(cue) == "v0.15.0"
    entries = list((cache_root() / "cue-version").glob("*.json"))
    assert entries
    for entry in entries:
        entry.write_text(json.dumps({"not": "a version"}))
    cue_binary._version_of.cache_clear()
    assert cue_version(cue) == "v0.15.0"
    assert asked(calls) == 2


def test_no_cache_asks_the_binary_itself(tmp_path: Path) -> None:
    cue, calls = counting_cue(tmp_path, "cue version v0.15.0")
    environ = {"GITOPS_NO_CACHE": "1"}
    assert cue_version(cue, environ=environ) == "v0.15.0"
    cue_binary._version_of.cache_clear()
    assert cue_version(cue, environ=environ) == "v0.15.0"
    assert asked(calls) == 2
    assert not cachedir.use_cache(environ) and cachedir.use_cache({"GITOPS_NO_CACHE": "0"})


def test_the_projects_cues_are_supported() -> None:
    assert supported_cue_version(WASM_CUE) == "v0.4.0-beta.1"
    native = project_cue("native")
    assert supported_cue_version(native).startswith("v0.17.")


def test_version_order() -> None:
    order = cue_binary._order
    ascending = ["v0.3.9", "v0.4.0-alpha.2", "v0.4.0-beta.1", "v0.4.0-beta.2", "v0.4.0-beta.10"]
    ascending += ["v0.4.0-rc.1", "v0.4.0", "v0.4.1", "v0.10.0", "v1.0.0"]
    assert sorted(ascending, key=order) == ascending
