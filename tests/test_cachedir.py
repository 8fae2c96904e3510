"""The on-disk cache of derived data: keyed by content, never required."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler import cachedir


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("GITOPS_CACHE_DIR", str(root))
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
