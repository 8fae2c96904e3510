"""Emit: the tree is written atomically, only where the run owns it, never outside `out`.

Trees are compared as full snapshots (relative path -> bytes, links and empty
directories included), taken by a walker of this file rather than the emitter's own.
"""

from __future__ import annotations

import errno
import os
import random
import re
import select
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from compiler import emit, stagedfiles
from compiler.cli import main
from compiler.emit import EmitStats, write_tree
from compiler.errors import (
    EXIT_BAD_INPUT,
    EXIT_OUTSIDE,
    CompilerError,
    InputError,
    OutsideError,
    UsageError,
)
from tests.conftest import ROOT

OWNED = ["applicationsets", "clusters/c1"]
COMPILE = ["compile", "--source", "snapshot:examples"]


def snapshot(root: Path) -> dict[str, object]:
    """Everything under root: files as bytes, links as ("link", target), dirs as "dir"."""
    found: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in dirnames + filenames:
            path = base / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[rel] = ("link", str(path.readlink()))
            elif path.is_dir():
                found[rel] = "dir"
            else:
                found[rel] = path.read_bytes()
    return found


def files_of(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in snapshot(root).items() if isinstance(v, bytes)}


def leftovers(out: Path) -> list[str]:
    """Staging or aside directories the emitter left beside `out`."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def tree_v1() -> dict[str, bytes]:
    return {
        "applicationsets/cluster-bootstrap.yaml": b"kind: ApplicationSet\n",
        "clusters/c1/kustomization.yaml": b"resources:\n- namespaces/a/namespace.yaml\n",
        "clusters/c1/cluster.json": b'{"name": "c1"}\n',
        "clusters/c1/namespaces/a/namespace.yaml": b"kind: Namespace\nmetadata: {name: a}\n",
        "clusters/c1/namespaces/b/namespace.yaml": b"kind: Namespace\nmetadata: {name: b}\n",
    }


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "parent" / "out"


# ------------------------------------------------------------------ writes and rewrites


def test_first_write_creates_the_tree(out: Path) -> None:
    files = tree_v1()
    stats = write_tree(out, files, owned=OWNED)
    assert stats == EmitStats(written=len(files), unchanged=0, removed=0)
    assert files_of(out) == files
    assert leftovers(out) == []
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]


def test_rewrite_changes_one_removes_one_keeps_the_rest(out: Path) -> None:
    write_tree(out, tree_v1(), owned=OWNED)
    kept = out / "clusters/c1/cluster.json"
    before = kept.stat()
    time.sleep(0.01)
    new = tree_v1()
    new["clusters/c1/kustomization.yaml"] = b"resources: []\n"
    del new["clusters/c1/namespaces/b/namespace.yaml"]
    stats = write_tree(out, new, owned=OWNED)
    assert stats == EmitStats(written=1, unchanged=len(new) - 1, removed=1)
    assert files_of(out) == new
    # The stale file is gone, and its now empty directory with it.
    assert not (out / "clusters/c1/namespaces/b").exists()
    # An unchanged file is the same file: not rewritten, its mtime stays.
    after = kept.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    again = write_tree(out, new, owned=OWNED)
    assert again == EmitStats(written=0, unchanged=len(new), removed=0)
    assert leftovers(out) == []


def test_files_outside_the_owned_directories_are_kept(out: Path) -> None:
    write_tree(out, tree_v1(), owned=OWNED)
    user = {
        "README.md": b"# our cluster repo\n",
        ".git/HEAD": b"ref: refs/heads/main\n",
        "clusters/c2/kustomization.yaml": b"resources: []\n",
        "clusters/notes.txt": b"hand written\n",
    }
    for rel, data in user.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    (out / "docs").mkdir()  # an empty directory of the user's
    (out / "latest").symlink_to("clusters/c2")
    before = snapshot(out)
    new = tree_v1()
    new["clusters/c1/cluster.json"] = b'{"name": "c1", "v": 2}\n'
    write_tree(out, new, owned=OWNED)
    after = snapshot(out)
    for rel, value in before.items():
        if not rel.startswith(("clusters/c1", "applicationsets")):
            assert after[rel] == value, rel
    assert files_of(out) == {**new, **user}
    assert (out / "latest").is_symlink()


def test_a_directory_the_run_owns_is_replaced_whole(out: Path) -> None:
    write_tree(out, tree_v1(), owned=OWNED)
    (out / "clusters/c1/stray.yaml").write_bytes(b"left by hand\n")
    (out / "clusters/c1/namespaces/zz").mkdir()
    stats = write_tree(out, tree_v1(), owned=OWNED)
    assert stats.removed == 1
    assert files_of(out) == tree_v1()
    assert "clusters/c1/namespaces/zz" not in snapshot(out)


def test_directory_mode_of_out_is_kept(out: Path) -> None:
    out.mkdir(parents=True)
    out.chmod(0o750)
    write_tree(out, tree_v1(), owned=OWNED)
    assert stat.S_IMODE(out.stat().st_mode) == 0o750
    fresh = out.parent / "fresh"
    write_tree(fresh, tree_v1(), owned=OWNED)
    umask = os.umask(0o022)
    os.umask(umask)
    # A new tree is made as mkdir would make it, not 0700 as a temporary directory is.
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((fresh / "clusters").stat().st_mode) == 0o777 & ~umask


def test_compile_one_cluster_keeps_the_others_and_the_users_files(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    base = [*COMPILE, "--project", str(project_dir), "--out", str(out)]
    assert main([*base, "--all"]) == 0
    golden = files_of(ROOT / "golden")
    assert files_of(out) == golden
    (out / "README.md").write_bytes(b"kept\n")
    stray = out / "clusters/dev-k3s/namespaces/dev-team/old-file.yaml"
    stray.write_bytes(b"stale\n")
    capsys.readouterr()
    assert main([*base, "--cluster", "dev-k3s"]) == 0
    summary = capsys.readouterr().out
    counts = re.search(r"\((\d+) written, (\d+) unchanged, (\d+) removed\)", summary)
    assert counts, summary
    dev_files = sum(1 for rel in golden if rel.startswith("clusters/dev-k3s/"))
    # Nothing changed but the stray file, removed; + the two ApplicationSets.
    assert tuple(map(int, counts.groups())) == (0, dev_files + 2, 1)
    assert files_of(out) == {**golden, "README.md": b"kept\n"}
    # A cluster whose record is gone is removed by the next compile of the fleet.
    (project_dir / "examples/cluster/test-k3s.yaml").unlink()
    assert main([*base, "--all"]) == 0
    expected = {k: v for k, v in golden.items() if not k.startswith("clusters/test-k3s/")}
    assert files_of(out) == {**expected, "README.md": b"kept\n"}
    assert not (out / "clusters/test-k3s").exists()
    assert leftovers(out) == []


# ------------------------------------------------------------- only what changed


def _fleet(clusters: int, variant: dict[str, str] | None = None) -> dict[str, bytes]:
    variant = variant or {}
    files = {"applicationsets/cluster-bootstrap.yaml": b"kind: ApplicationSet\n"}
    for i in range(clusters):
        name = f"c{i}"
        for ns in ("a", "b"):
            text = f"{name}/{ns} {variant.get(name, 'v1')}\n"
            files[f"clusters/{name}/namespaces/{ns}/namespace.yaml"] = text.encode()
    return files


def test_an_unchanged_tree_is_not_touched(out: Path) -> None:
    write_tree(out, _fleet(3), owned=["applicationsets", "clusters"])
    before = {p: p.stat() for p in [out, *out.rglob("*")]}
    stats = write_tree(out, _fleet(3), owned=["applicationsets", "clusters"])
    assert (stats.written, stats.unchanged, stats.removed) == (0, 7, 0)
    after = {p: p.stat() for p in [out, *out.rglob("*")]}
    assert {p: (s.st_ino, s.st_mtime_ns) for p, s in before.items()} == {
        p: (s.st_ino, s.st_mtime_ns) for p, s in after.items()
    }
    assert leftovers(out) == []


def test_one_changed_cluster_swaps_only_its_directory(out: Path) -> None:
    owned = ["applicationsets", "clusters"]
    write_tree(out, _fleet(3), owned=owned)
    (out / "README.md").write_bytes(b"user\n")
    inodes = {rel: (out / rel).stat().st_ino for rel in ("", "clusters", "clusters/c0")}
    stats = write_tree(out, _fleet(3, {"c1": "v2"}), owned=owned)
    assert (stats.written, stats.unchanged, stats.removed) == (2, 5, 0)
    assert files_of(out) == {**_fleet(3, {"c1": "v2"}), "README.md": b"user\n"}
    # the tree, its clusters/ and the other clusters stay the same directories
    assert {rel: (out / rel).stat().st_ino for rel in inodes} == inodes
    assert leftovers(out) == []


def test_a_new_cluster_appears_and_a_gone_one_leaves_no_empty_directory(out: Path) -> None:
    owned = ["applicationsets", "clusters"]
    write_tree(out, _fleet(2), owned=owned)
    grown = {**_fleet(2), "clusters/new/namespaces/a/namespace.yaml": b"new\n"}
    write_tree(out, grown, owned=owned)
    assert files_of(out) == grown
    shrunk = {k: v for k, v in _fleet(2).items() if not k.startswith("clusters/c1/")}
    stats = write_tree(out, shrunk, owned=owned)
    assert stats.removed == 2 + 1
    assert files_of(out) == shrunk
    assert sorted(p.name for p in (out / "clusters").iterdir()) == ["c0"]
    assert leftovers(out) == []


def test_without_renameat2_a_change_swaps_the_whole_tree(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owned = ["applicationsets", "clusters"]
    write_tree(out, _fleet(3), owned=owned)
    monkeypatch.setattr(emit, "_exchange", lambda a, b: False)
    write_tree(out, _fleet(3, {"c2": "v2"}), owned=owned)
    assert files_of(out) == _fleet(3, {"c2": "v2"})
    assert leftovers(out) == []


# ------------------------------------------------------------------ failing midway


class Boom(Exception):
    pass


def _fail_on_nth_write(monkeypatch: pytest.MonkeyPatch, n: int, error: Exception) -> list[int]:
    """The n-th new file the write creates fails with `error`."""
    real_write = stagedfiles.write_new
    calls = [0]

    def write_new(path: str, data: bytes) -> None:
        calls[0] += 1
        if calls[0] == n:
            raise error
        real_write(path, data)

    monkeypatch.setattr(stagedfiles, "write_new", write_new)
    return calls


def _big_tree(variant: str, n: int = 40) -> dict[str, bytes]:
    return {
        f"clusters/c1/namespaces/ns{i % 7}/f{i:04d}.yaml": f"{variant} {i}\n".encode()
        for i in range(n)
    }


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (OSError(28, "No space left on device"), OutsideError),
        (Boom("unexpected"), Boom),
    ],
)
def test_a_write_failing_midway_leaves_the_old_tree(
    out: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, raised: type[Exception]
) -> None:
    write_tree(out, _big_tree("old"), owned=OWNED)
    (out / "README.md").write_bytes(b"user\n")
    before = snapshot(out)
    calls = _fail_on_nth_write(monkeypatch, 25, error)
    with pytest.raises(raised):
        write_tree(out, _big_tree("new"), owned=OWNED)
    assert calls[0] == 25  # it really failed with files already staged
    monkeypatch.undo()
    assert snapshot(out) == before
    assert leftovers(out) == []


def _forking(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Trees of 64 files and more are written by two processes; the forks made."""
    monkeypatch.setattr(stagedfiles, "FORK_FROM", 64)
    monkeypatch.setattr(stagedfiles, "_can_fork", lambda: True)  # on one core too
    forks: list[int] = []
    real_fork = os.fork

    def fork() -> int:
        pid = real_fork()
        if pid:
            forks.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    return forks


def test_a_large_tree_is_written_by_two_processes(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forks = _forking(monkeypatch)
    write_tree(out, _big_tree("old", 200), owned=OWNED)
    assert len(forks) == 1
    assert files_of(out) == _big_tree("old", 200)  # both halves, every byte
    write_tree(out, _big_tree("new", 200), owned=OWNED)
    assert files_of(out) == _big_tree("new", 200)
    assert leftovers(out) == []


def test_a_forked_write_from_another_thread_while_others_run(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service compiles in threads, and a compile has cue's and the reader's
    threads alive when it writes: a child forked from a thread that is not the main
    one writes its half, and holds none of the parent's pipes open (cue would wait
    for its EOF)."""
    forks = _forking(monkeypatch)
    reader, writer = os.pipe()  # as cue's stdin, which a cue thread writes and closes
    parent = os.getpid()
    real_write = stagedfiles.write_new

    def write_new(path: str, data: bytes) -> None:
        if os.getpid() != parent:
            try:
                os.fstat(writer)
            except OSError:
                pass  # closed in the child, as it must be
            else:
                raise OSError(errno.EBUSY, "the child holds the parent's pipe open", path)
        real_write(path, data)

    monkeypatch.setattr(stagedfiles, "write_new", write_new)
    errors: list[BaseException] = []

    def compile_in_a_thread() -> None:
        try:
            write_tree(out, _big_tree("new", 200), owned=OWNED)
        except BaseException as err:
            errors.append(err)

    worker = threading.Thread(target=compile_in_a_thread)
    worker.start()
    worker.join(timeout=30)
    os.close(reader)
    os.close(writer)
    assert not worker.is_alive() and errors == []
    assert len(forks) == 1 and files_of(out) == _big_tree("new", 200)


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGINT"])
def test_a_child_killed_by_a_signal_is_named_and_the_old_tree_stays(
    out: Path, monkeypatch: pytest.MonkeyPatch, signal_name: str
) -> None:
    """The OOM killer, or ^C, which reaches the whole process group: the child goes at
    once (its ^C is the default action, never Python's handler, which would unwind the
    parent's stack in the child) and the user reads which signal ended it."""
    write_tree(out, _big_tree("old", 200), owned=OWNED)
    before = snapshot(out)
    _forking(monkeypatch)
    parent = os.getpid()
    real_write = stagedfiles.write_new

    def write_new(path: str, data: bytes) -> None:
        if os.getpid() != parent:
            os.kill(os.getpid(), getattr(signal, signal_name))
            time.sleep(5)  # the signal ends the child before this does
        real_write(path, data)

    monkeypatch.setattr(stagedfiles, "write_new", write_new)
    with pytest.raises(OutsideError, match=f"was killed by {signal_name}"):
        write_tree(out, _big_tree("new", 200), owned=OWNED)
    monkeypatch.undo()
    assert snapshot(out) == before
    assert leftovers(out) == []


def test_a_fork_that_fails_leaves_one_process_to_write_all(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No process to spare (a pids limit, memory): the write goes on in this one, and
    the pipe it made for the child is closed."""
    _forking(monkeypatch)

    def fork() -> int:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", fork)
    descriptors = len(list(Path("/proc/self/fd").iterdir()))
    write_tree(out, _big_tree("new", 200), owned=OWNED)
    assert files_of(out) == _big_tree("new", 200)
    assert len(list(Path("/proc/self/fd").iterdir())) == descriptors


@pytest.mark.parametrize("half", ["the child's", "the parent's"])
def test_a_failure_in_either_half_of_a_forked_write_leaves_the_old_tree(
    out: Path, monkeypatch: pytest.MonkeyPatch, half: str
) -> None:
    write_tree(out, _big_tree("old", 200), owned=OWNED)
    before = snapshot(out)
    forks = _forking(monkeypatch)
    # Sorted paths: the parent writes the first half, the child the second.
    victim = sorted(_big_tree("new", 200))[150 if half == "the child's" else 10]
    real_write = stagedfiles.write_new

    def write_new(path: str, data: bytes) -> None:
        if path.endswith("/".join(victim.split("/")[-2:])):  # staged under a temporary dir
            raise OSError(28, "No space left on device", path)
        real_write(path, data)

    monkeypatch.setattr(stagedfiles, "write_new", write_new)
    with pytest.raises(OutsideError, match="No space left on device"):
        write_tree(out, _big_tree("new", 200), owned=OWNED)
    assert len(forks) == 1
    with pytest.raises(ChildProcessError):  # reaped, whichever half failed
        os.waitpid(forks[0], os.WNOHANG)
    monkeypatch.undo()
    assert snapshot(out) == before
    assert leftovers(out) == []


def test_a_failing_exchange_leaves_the_old_tree(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(out, _big_tree("old"), owned=OWNED)
    before = snapshot(out)

    def exchange(a: Path, b: Path) -> bool:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(emit, "_exchange", exchange)
    with pytest.raises(OutsideError, match="Input/output error"):
        write_tree(out, _big_tree("new"), owned=OWNED)
    assert snapshot(out) == before
    assert leftovers(out) == []


def test_two_rename_fallback_failing_on_the_second_rename_puts_the_old_tree_back(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where renameat2 is missing: out -> .out.old, staging -> out; the second fails."""
    write_tree(out, _big_tree("old"), owned=OWNED)
    before = snapshot(out)
    monkeypatch.setattr(emit, "_exchange", lambda a, b: False)
    real_rename = Path.rename

    def rename(self: Path, target: Path) -> Path:
        if self.name.startswith(".out.staging-"):
            raise OSError(13, "Permission denied")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OutsideError):
        write_tree(out, _big_tree("new"), owned=OWNED)
    monkeypatch.undo()
    assert snapshot(out) == before  # at once, not only after the next run's recovery
    assert leftovers(out) == []


def test_the_two_rename_fallback_writes_the_new_tree(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(out, _big_tree("old"), owned=OWNED)
    monkeypatch.setattr(emit, "_exchange", lambda a, b: False)
    write_tree(out, _big_tree("new"), owned=OWNED)
    assert files_of(out) == _big_tree("new")
    assert leftovers(out) == []


def test_leftovers_of_a_killed_run_are_recovered(out: Path) -> None:
    write_tree(out, tree_v1(), owned=OWNED)
    (out / "README.md").write_bytes(b"user\n")
    old = snapshot(out)
    # Killed between the fallback's two renames: the old tree is aside, out is missing.
    out.rename(out.with_name(".out.old"))
    staging = out.with_name(".out.staging-killed")
    staging.mkdir()
    (staging / "half.yaml").write_bytes(b"half written")
    new = tree_v1()
    new["clusters/c1/cluster.json"] = b"{}\n"
    write_tree(out, new, owned=OWNED)
    assert leftovers(out) == []
    # The old tree was put back first: the user's file outside the owned dirs survived.
    assert files_of(out) == {**new, "README.md": b"user\n"}
    assert old["README.md"] == b"user\n"


def test_concurrent_writers_do_not_mix(out: Path) -> None:
    trees = {"a": _big_tree("a", 120), "b": _big_tree("b", 100)}
    errors: list[BaseException] = []

    def writer(key: str) -> None:
        try:
            for _ in range(3):
                write_tree(out, trees[key], owned=OWNED)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(k,)) for k in ("a", "b", "a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert files_of(out) in (trees["a"], trees["b"])
    assert leftovers(out) == []


# ------------------------------------------------------------------ paths


BAD_KEYS = [
    "../x",
    "/abs",
    "/etc/passwd",
    "clusters/../../x",
    "clusters/c1/../../../x",
    "clusters/c1/./x.yaml",
    "clusters/c1/.",
    ".",
    "a//b",
    "clusters/c1//x.yaml",
    "clusters/c1/x\x00.yaml",
    "clusters/c1/",
    "",
    "clusters\\c1\\x",
    "clusters/c1/" + "x" * 256,
    "clusters/c1/.hidden",
]


@pytest.mark.parametrize("bad", BAD_KEYS)
def test_a_bad_path_is_refused_before_anything_is_written(out: Path, bad: str) -> None:
    write_tree(out, tree_v1(), owned=OWNED)
    root = out.parent.parent
    before = snapshot(root)
    files = {**tree_v1(), "clusters/c1/cluster.json": b"changed\n", bad: b"evil\n"}
    with pytest.raises(InputError, match=r"not a plain path|over 255 bytes") as info:
        write_tree(out, files, owned=OWNED)
    assert info.value.exit_code == EXIT_BAD_INPUT == 2
    assert snapshot(root) == before  # nothing written, inside out or beside it


@pytest.mark.parametrize("bad", ["..", "../elsewhere", "/tmp", "clusters/../..", ""])
def test_a_bad_owned_directory_is_refused(out: Path, bad: str) -> None:
    write_tree(out, tree_v1(), owned=OWNED)
    root = out.parent.parent
    before = snapshot(root)
    with pytest.raises(InputError):
        write_tree(out, tree_v1(), owned=[*OWNED, bad])
    assert snapshot(root) == before


def test_a_file_outside_the_owned_directories_is_refused(out: Path) -> None:
    write_tree(out, tree_v1(), owned=OWNED)
    before = snapshot(out)
    with pytest.raises(InputError, match="outside the directories"):
        write_tree(out, {**tree_v1(), "clusters/c2/x.yaml": b"x\n"}, owned=OWNED)
    with pytest.raises(InputError, match="outside the directories"):
        write_tree(out, {**tree_v1(), "clusters/c10/x.yaml": b"x\n"}, owned=["clusters/c1"])
    assert snapshot(out) == before


def test_out_that_is_a_symlink_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "precious.txt").write_bytes(b"mine\n")
    out = tmp_path / "out"
    out.symlink_to(target)
    before = snapshot(tmp_path)
    with pytest.raises(UsageError, match="symbolic link"):
        write_tree(out, tree_v1(), owned=OWNED)
    argv = [*COMPILE, "--project", str(ROOT), "--all", "--out", str(out)]
    assert main(argv) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "symbolic link" in err and "Traceback" not in err
    assert snapshot(tmp_path) == before


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_bytes(b"not a dir\n")
    with pytest.raises(UsageError, match="not a directory"):
        write_tree(out, tree_v1(), owned=OWNED)
    assert out.read_bytes() == b"not a dir\n"


def test_symlinks_planted_in_an_owned_directory_are_not_written_through(
    out: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "victim.yaml").write_bytes(b"do not touch\n")
    write_tree(out, tree_v1(), owned=OWNED)
    c1 = out / "clusters/c1"
    # A file link where a file will be written, and a directory link over a folder.
    (c1 / "kustomization.yaml").unlink()
    (c1 / "kustomization.yaml").symlink_to(outside / "victim.yaml")
    import shutil

    shutil.rmtree(c1 / "namespaces/a")
    (c1 / "namespaces/a").symlink_to(outside / "dir")
    (c1 / "extra.yaml").symlink_to(outside / "victim.yaml")
    before_outside = snapshot(outside)
    write_tree(out, tree_v1(), owned=OWNED)
    assert snapshot(outside) == before_outside
    assert files_of(out) == tree_v1()
    for rel in ("kustomization.yaml", "namespaces/a", "namespaces/a/namespace.yaml"):
        assert not (c1 / rel).is_symlink(), rel
    assert not (c1 / "extra.yaml").exists()
    assert (outside / "victim.yaml").read_bytes() == b"do not touch\n"


def test_a_symlink_above_an_owned_directory_is_refused(out: Path, tmp_path: Path) -> None:
    """Compiling one cluster owns clusters/<c>; out/clusters itself may be a user's link."""
    outside = tmp_path / "outside"
    outside.mkdir()
    out.mkdir(parents=True)
    (out / "clusters").symlink_to(outside)
    before = snapshot(tmp_path)
    with pytest.raises(InputError, match="symbolic link"):
        write_tree(out, tree_v1(), owned=OWNED)
    assert snapshot(tmp_path) == before
    assert leftovers(out) == []


# ------------------------------------------------------------------ SIGKILL

_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[3])
from pathlib import Path
from compiler import emit

exec(sys.argv[4])  # defines build(variant)
out, mode = Path(sys.argv[1]), sys.argv[2]
if mode == "rename":
    emit._exchange = lambda a, b: False
only = "c1" if mode == "narrow" else None
trees = {"A": build("A", only), "B": build("B", only)}
owned = ["applicationsets", "clusters"]
print("ready", flush=True)
while True:
    for key in ("B", "A"):
        emit.write_tree(out, trees[key], owned=owned)
"""

_BUILD = r"""
FILES = 1500


def build(variant, only=None):
    # Variant B differs in every file, or (`only`) in one cluster's files alone:
    # the write then swaps just that cluster's directory.
    files = {"applicationsets/appset.yaml": f"variant {variant if only is None else 'A'}\n".encode()}
    for i in range(FILES):
        # With `only`, four files in five are that cluster's: a kill mostly lands in its write.
        cluster = f"c{i % 5}" if only is None else (only if i % 5 else "c0")
        own = variant if only in (None, cluster) else "A"
        if own == "B" and i % 7 == 0:  # B also drops some files: stale removal is cut too
            continue
        rel = f"clusters/{cluster}/namespaces/ns{i % 40}/object-{i:05d}.yaml"
        files[rel] = f"kind: ConfigMap\nvariant: {own}\nindex: {i}\n".encode()
    return files
"""


def _wait_ready(proc: subprocess.Popen[bytes], deadline: float) -> None:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
    assert ready, "the writer did not start in time"
    assert proc.stdout.readline() == b"ready\n"


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "kills"), [("exchange", 4), ("rename", 2), ("narrow", 6)])
def test_sigkill_during_emit_leaves_one_whole_tree(tmp_path: Path, mode: str, kills: int) -> None:
    """A writer loops A, B, A, ... over a 1500-file tree; SIGKILL it at random moments."""
    namespace: dict[str, object] = {}
    exec(_BUILD, namespace)
    build = namespace["build"]
    only = "c1" if mode == "narrow" else None
    trees = {key: build(key, only) for key in ("A", "B")}  # type: ignore[operator]
    out = tmp_path / "out"
    out.mkdir()
    readme = b"the user's, outside the owned dirs\n"
    (out / "README.md").write_bytes(readme)
    expected = {key: {**tree, "README.md": readme} for key, tree in trees.items()}
    owned = ["applicationsets", "clusters"]
    started = time.perf_counter()
    write_tree(out, trees["A"], owned=owned)
    one_write = time.perf_counter() - started
    rng = random.Random(f"{mode}-20260106")
    mid_write = attempt = 0
    # `kills` kills, and more (a bounded number) until one lands inside a write: where
    # a kill lands depends on how long each phase of the writer's loop takes here.
    while attempt < kills or (mid_write == 0 and attempt < kills + 16):
        attempt += 1
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(out), mode, str(ROOT), _BUILD],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_ready(proc, time.monotonic() + 20)
            time.sleep(rng.uniform(0.05, 2.2) * one_write)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            _, stderr = proc.communicate(timeout=20)
        assert proc.returncode == -signal.SIGKILL, stderr.decode()
        mid_write += bool(leftovers(out))  # a staging dir: the kill cut a write
        emit._recover(out)  # what the next run does first, under its lock
        got = files_of(out)
        assert got in (expected["A"], expected["B"]), f"mixed tree after a kill: {len(got)} files"
        assert leftovers(out) == []
    assert mid_write >= 1, "no kill landed inside a write"
    # And the next run from there writes a whole tree as usual.
    write_tree(out, trees["B"], owned=owned)
    assert files_of(out) == expected["B"]


# ------------------------------------------------------------------ read-only parent

_DROP_DAC = r"""
import ctypes, os, sys
if os.geteuid() == 0:  # root ignores permissions: drop the capabilities that let it
    libc = ctypes.CDLL(None, use_errno=True)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]

    header, data = Header(0x20080522, 0), (Data * 2)()
    assert libc.capget(ctypes.byref(header), data) == 0
    drop = (1 << 1) | (1 << 2) | (1 << 3)  # DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER
    data[0].effective &= ~drop
    data[0].permitted &= ~drop
    assert libc.capset(ctypes.byref(header), data) == 0, ctypes.get_errno()
sys.path.insert(0, sys.argv[1])
from compiler.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _compile_without_write_permission(out: Path) -> subprocess.CompletedProcess[str]:
    argv = [*COMPILE, "--project", str(ROOT), "--all", "--out", str(out)]
    return subprocess.run(
        [sys.executable, "-c", _DROP_DAC, str(ROOT), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("existing", [False, True])
def test_read_only_output_parent_is_a_clear_error(tmp_path: Path, existing: bool) -> None:
    parent = tmp_path / "ro"
    out = parent / "out"
    if existing:
        write_tree(out, tree_v1(), owned=OWNED)
    else:
        parent.mkdir()
    before = snapshot(parent)
    parent.chmod(0o555)
    try:
        proc = _compile_without_write_permission(out)
    finally:
        parent.chmod(0o755)
    assert proc.returncode == EXIT_OUTSIDE, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert proc.stderr.startswith("error: cannot write"), proc.stderr
    assert "Permission denied" in proc.stderr
    assert snapshot(parent) == before


def test_errors_raised_by_emit_are_compiler_errors(out: Path) -> None:
    for bad in ({"../x": b""}, {"clusters/c1/a\x00": b""}):
        with pytest.raises(CompilerError):
            write_tree(out, bad, owned=OWNED)
    assert not out.exists() and not out.parent.exists()
