"""The on-disk cache of derived data: keyed by content, never required."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from compiler import cachedir
from compiler.cli import main
from compiler.policy import cue_binary


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("GITOPS_CACHE_DIR", str(root))
    monkeypatch.delenv("GITOPS_NO_CACHE", raising=False)
    return root


def test_where_the_cache_lives(tmp_path: Path) -> None:
    assert cachedir.cache_root({"GITOPS_CACHE_DIR": "/c"}) == Path("/c")
    assert cachedir.cache_root({"XDG_CACHE_HOME": "/x"}) == Path("/x/gitops-compiler")
    assert cachedir.cache_root({}) == Path.home() / ".cache" / "gitops-compiler"


def test_derived_once_then_read_back(cache: Path) -> None:
    calls = []

    def derive() -> dict[str, object]:
        calls.append(1)
        return {"kind": "CRD", "n": [1, 2]}

    first = cachedir.cached_json("crd", b"source bytes", derive)
    second = cachedir.cached_json("crd", b"source bytes", derive)
    assert first == second == {"kind": "CRD", "n": [1, 2]}
    assert len(calls) == 1
    (entry,) = (cache / "crd").iterdir()
    assert json.loads(entry.read_bytes()) == first
    assert not [p for p in (cache / "crd").iterdir() if p.name.startswith(".tmp-")]


def test_other_content_is_another_entry(cache: Path) -> None:
    assert cachedir.cached_json("crd", b"one", lambda: 1) == 1
    assert cachedir.cached_json("crd", b"two", lambda: 2) == 2
    assert cachedir.cached_json("crd", b"one", lambda: 3) == 1
    assert len(list((cache / "crd").iterdir())) == 2


def test_a_corrupt_entry_is_derived_again(cache: Path) -> None:
    cachedir.cached_json("crd", b"src", lambda: {"a": 1})
    (entry,) = (cache / "crd").iterdir()
    entry.write_bytes(b'{"a": ')  # a torn or edited entry
    assert cachedir.cached_json("crd", b"src", lambda: {"a": 2}) == {"a": 2}
    assert json.loads(entry.read_bytes()) == {"a": 2}


def test_an_unwritable_cache_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("GITOPS_CACHE_DIR", str(blocker / "cache"))
    assert cachedir.cached_json("crd", b"src", lambda: [1]) == [1]
    assert blocker.read_text() == "not a directory"


def test_no_cache_neither_reads_nor_writes(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cachedir.cached_json("crd", b"src", lambda: "kept")
    monkeypatch.setenv("GITOPS_NO_CACHE", "1")
    assert cachedir.cached_json("crd", b"src", lambda: "derived") == "derived"
    assert cachedir.cached_json("crd", b"other", lambda: "derived") == "derived"
    assert len(list((cache / "crd").iterdir())) == 1


def compiled(project: Path, out: Path, *extra: str) -> None:
    argv = ["compile", "--all", "--source", "snapshot:examples", "--project", str(project)]
    assert main([*argv, "--out", str(out), "--format", "json", *extra]) == 0


def test_a_no_cache_command_leaves_the_cache_dir_as_it_was(
    cache: Path, project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every cache (cue's version, the Kubernetes schemas, verdicts, compiled validators,
    # the tree records): the per-process memo of the cue version included.
    cue_binary._version_of.cache_clear()
    compiled(project_dir, tmp_path / "out-1", "--no-cache")
    assert not cache.exists() or not any(cache.rglob("*"))
    assert "GITOPS_NO_CACHE" not in os.environ  # the next command uses the cache again
    cue_binary._version_of.cache_clear()
    compiled(project_dir, tmp_path / "out-2")
    kinds = {path.name for path in cache.iterdir()}
    assert {"cue-version", "k8s-schema", "tree-records", "cue-verdicts"} <= kinds, kinds
