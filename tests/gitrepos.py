"""Real git for tests: bare Argo CD repositories, commits by others, reading a ref's files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def git(*args: str, cwd: Path | None = None, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bare Argo CD repository whose main holds a README; git without user config."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    bare = tmp_path / "argocd.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    commit_files(bare, "main", {"README.md": b"# Argo CD\n"}, "init", author="Alice")
    return bare


def commit_files(
    bare: Path, branch: str, files: dict[str, bytes], message: str, *, author: str
) -> str:
    """A commit by someone else on `branch` of the bare repository (created if absent)."""
    env = {
        **os.environ,
        "GIT_DIR": str(bare),
        "GIT_INDEX_FILE": str(bare / "test.index"),
        "GIT_AUTHOR_NAME": author,
        "GIT_AUTHOR_EMAIL": f"{author.lower()}@example.com",
        "GIT_COMMITTER_NAME": author,
        "GIT_COMMITTER_EMAIL": f"{author.lower()}@example.com",
    }

    def run(*args: str, stdin: bytes | None = None) -> str:
        done = subprocess.run(["git", *args], env=env, input=stdin, capture_output=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.decode().strip()

    parent = (
        run("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
        if has_branch(bare, branch)
        else ""
    )
    run("read-tree", parent) if parent else run("read-tree", "--empty")
    for path, data in files.items():
        blob = run("hash-object", "-w", "--stdin", stdin=data)
        run("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
    tree = run("write-tree")
    sha = run("commit-tree", tree, "-m", message, *(["-p", parent] if parent else []))
    run("update-ref", f"refs/heads/{branch}", sha)
    (bare / "test.index").unlink()
    return sha


def has_branch(bare: Path, branch: str) -> bool:
    done = subprocess.run(
        ["git", f"--git-dir={bare}", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
        capture_output=True,
    )
    return done.returncode == 0


def files_at(bare: Path, ref: str, prefix: str = "") -> dict[str, bytes]:
    listing = git(f"--git-dir={bare}", "ls-tree", "-r", "--name-only", ref, "--",
                  *([prefix] if prefix else []))  # fmt: skip
    return {
        path: subprocess.run(
            ["git", f"--git-dir={bare}", "show", f"{ref}:{path}"], capture_output=True, check=True
        ).stdout
        for path in listing.splitlines()
    }
