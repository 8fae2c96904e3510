"""`diff --against` the Argo CD repository itself (issue 17, item 7): a bare repository,
a work tree, a URL or a branch of `--repo` is read at its branch, never as a directory
of files; a base without `clusters/` is a warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.cli import main
from tests.conftest import ROOT, tree
from tests.gitrepos import commit_files, git


def _diff(project_dir: Path, *extra: str) -> int:
    return main(
        ["diff", "--project", str(project_dir), "--source", "snapshot:examples",
         "--cluster", "prod-eks-1", "--exit-code", *extra]
    )  # fmt: skip


def _merged(remote: Path) -> None:
    """The golden tree merged on main, as after a publish and a merged pull request."""
    commit_files(remote, "main", tree(ROOT / "golden"), "merge the tree", author="Bob")


def test_the_repository_itself_is_read_at_its_branch(
    project_dir: Path,
    remote: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _merged(remote)
    monkeypatch.chdir(tmp_path)
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(remote), str(clone))
    for against in (str(remote), f"file://{remote}", str(clone)):
        assert _diff(project_dir, "--against", against) == 0, capsys.readouterr().err
        captured = capsys.readouterr()
        assert captured.out == "no differences\n" and "warning" not in captured.err
    assert _diff(project_dir, "--against", "main", "--repo", str(remote)) == 0
    assert capsys.readouterr().out == "no differences\n"
    # Another branch of the same repository: the one Argo CD deployed before the merge.
    commit_files(remote, "old", {"README.md": b"# Argo CD\n"}, "init", author="Alice")
    assert _diff(project_dir, "--against", str(remote), "--base", "old") == 1
    assert "has no clusters/ at all" in capsys.readouterr().err
    assert _diff(project_dir, "--against", "no-such-ref", "--repo", str(remote)) == 2
    assert "'no-such-ref' is neither a directory nor a commit" in capsys.readouterr().err
    assert _diff(project_dir, "--against", f"file://{remote}", "--base", "nope") == 2
    assert "branch nope of file://" in capsys.readouterr().err


def test_a_base_without_clusters_is_a_warning(
    project_dir: Path, remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _diff(project_dir, "--against", str(remote)) == 1
    captured = capsys.readouterr()
    assert "+ " in captured.out  # every object added
    assert f"warning: branch main of {remote} has no clusters/ at all" in captured.err


@pytest.mark.parametrize("path", ["/nonexistent/tree", "./no-such-tree", "../no-such-tree"])
def test_a_missing_path_is_named_as_a_missing_directory(
    project_dir: Path, capsys: pytest.CaptureFixture[str], path: str
) -> None:
    """Not as a branch name git refuses: a path was meant, and it is not there."""
    assert _diff(project_dir, "--against", path) == 2
    assert f"--against '{path}': no such directory" in capsys.readouterr().err
