"""Write a tree atomically: build it beside the output, then swap it in.

A killed run leaves the old tree or the new one, never half of each: the new
tree is assembled in a staging directory next to `<out>` (same file system),
then exchanged with `<out>` in one `renameat2(RENAME_EXCHANGE)` where the
kernel has it, else in two renames that the next run completes if it was cut
between them. Unchanged files are hard links to the old ones, so only
changed bytes are written and their mtimes stay. Directories the compile
owns are replaced whole (stale files vanish); everything else under `<out>`
is carried over untouched.

Only the narrowest directory that holds every change is staged and exchanged
(a one-cluster compile into a fleet's tree swaps `clusters/<c>`), and a tree
whose bytes did not change is not touched. `staged_tree` separates the two
halves: the compile stages while the CUE policies still run, then commits, or
leaves the block and the staging is dropped with `<out>` as it was.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import InputError, OutsideError, UsageError
from compiler.stagedfiles import link_or_copy, write_all

# Plain names (never `.` or `..`: a name starts with a letter, digit or `_`), joined by `/`.
_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@dataclass(frozen=True)
class EmitStats:
    written: int  # files whose bytes changed or are new
    unchanged: int
    removed: int  # files of owned directories that the compile no longer produces


def check_relative_path(rel: str) -> None:
    """A path inside the tree: relative, no `..`, plain names only (they come from config)."""
    if _PATH.fullmatch(rel) is None:  # one match a path: this runs for every file of a fleet
        raise InputError(f"refusing to write {rel!r}: not a plain path inside the output")
    if len(rel) > 255 and any(len(p) > 255 for p in rel.split("/")):  # ASCII: chars = bytes
        raise InputError(f"refusing to write {rel!r}: a name is over 255 bytes")


def write_tree(out: Path, files: Mapping[str, bytes], *, owned: Sequence[str]) -> EmitStats:
    """Make `out` hold `files` under the `owned` directories; keep all else as it was."""
    with staged_tree(out, files, owned=owned) as staged:
        return staged.commit()


@contextmanager
def staged_tree(
    out: Path, files: Mapping[str, bytes], *, owned: Sequence[str]
) -> Iterator[StagedTree]:
    """The new tree, staged beside `out` but not yet in it: `commit()` swaps it in;
    leaving the block without a commit discards it and leaves `out` as it was.

    The compile stages while the CUE policies still run, and commits only if they
    find nothing. The lock on `out`'s parent is held for the whole block.
    """
    for rel in list(files) + list(owned):
        check_relative_path(rel)
    for rel in files:
        if not any(rel == o or rel.startswith(o + "/") for o in owned):
            raise InputError(f"refusing to write {rel!r}: outside the directories this run owns")
    if out.is_symlink():
        raise UsageError(f"output {out} is a symbolic link; give the real directory")
    if out.exists() and not out.is_dir():
        raise UsageError(f"output {out} exists and is not a directory")
    parent = out.absolute().parent
    with ExitStack() as held:
        try:
            parent.mkdir(parents=True, exist_ok=True)
            held.enter_context(_locked(parent))
            _recover(out)
            staged = StagedTree(out, files, owned, _compare(out, files, owned))
            held.callback(staged.discard)
            staged.stage()
        except OSError as err:  # ours only: not the caller's, in the block below
            raise OutsideError(f"cannot write {out}: {err.strerror or err}") from None
        yield staged


class StagedTree:
    """What `staged_tree` yields: the change, staged, waiting for `commit`."""

    def __init__(
        self, out: Path, files: Mapping[str, bytes], owned: Sequence[str], change: _Change
    ) -> None:
        self.out, self.files, self.owned, self.change = out, files, owned, change
        self.stats = EmitStats(
            written=len(change.differ),
            unchanged=len(files) - len(change.differ),
            removed=len(change.removed),
        )
        self._base = ""
        self._staging: Path | None = None
        self._committed = False

    def stage(self) -> None:
        if not self.out.is_dir():
            self._base = ""  # a first write: the whole tree appears at once
        elif not self.change.paths:
            return  # nothing to do: the tree stays as it is, mtimes and all
        else:
            self._base = _narrowest(self.out, self.change.paths)
        self._staging = _prepare(self.out, self._base, self.files, self.owned, self.change)

    def commit(self) -> EmitStats:
        if self._committed:
            raise RuntimeError("a staged tree is committed once")
        self._committed = True
        if self._staging is None:
            return self.stats
        try:
            done = _swap_in(self.out, self._base, self._staging, self.owned)
            if not done:  # only `out` itself can be swapped here: stage all of it
                _discard(self._staging)
                self._base = ""
                self._staging = _prepare(self.out, "", self.files, self.owned, self.change)
                _swap_in(self.out, "", self._staging, self.owned)
        except OSError as err:
            raise OutsideError(f"cannot write {self.out}: {err.strerror or err}") from None
        return self.stats

    def discard(self) -> None:
        if self._staging is not None:
            _discard(self._staging)  # after a swap: the old tree, else the unused new one
            self._staging = None


@dataclass(frozen=True)
class _Change:
    old_owned: frozenset[str]  # files under the owned directories now
    differ: frozenset[str]  # files to write: new ones and ones whose bytes changed
    removed: frozenset[str]  # files of owned directories that the compile no longer makes

    @property
    def paths(self) -> frozenset[str]:
        return self.differ | self.removed


def _compare(out: Path, files: Mapping[str, bytes], owned: Sequence[str]) -> _Change:
    old_owned: set[str] = set()  # files and links: a link planted there is stale too
    for entry in owned:  # a directory (`clusters`) or a single file (`defaults.yaml`)
        if _real_directories(out, entry):
            old_owned.update(
                f"{entry}/{rel}" for rel, kind in walk_tree(out / entry) if kind != "dir"
            )
        elif _real_directories(out, entry.rpartition("/")[0]) and os.path.lexists(out / entry):
            old_owned.add(entry)
    differ = {
        rel
        for rel, data in files.items()
        if rel not in old_owned or not _same_bytes(out / rel, data)
    }
    return _Change(frozenset(old_owned), frozenset(differ), frozenset(old_owned - files.keys()))


def _narrowest(out: Path, paths: frozenset[str]) -> str:
    """The deepest directory of `out` that holds every changed path, "" for `out` itself.

    Replacing it alone is as atomic as replacing the tree, and costs only what it
    holds: a one-cluster compile into a fleet's tree swaps `clusters/<name>`. It
    must be a real directory (no link on the way) or, when new, have one as parent.
    """
    parents = [rel.split("/")[:-1] for rel in paths]
    common = parents[0]
    for parts in parents[1:]:
        while parts[: len(common)] != common:
            common = common[:-1]
    while common:
        base = "/".join(common)
        if _real_directories(out, base):
            return base
        above = "/".join(common[:-1])
        if not os.path.lexists(out / base) and (not above or _real_directories(out, above)):
            return base
        common = common[:-1]
    return ""


def _real_directories(out: Path, rel: str) -> bool:
    """Whether every name of `rel` under `out` is a directory, none a symbolic link."""
    path = out
    for part in rel.split("/"):
        path = path / part
        try:
            if not stat.S_ISDIR(path.lstat().st_mode):
                return False
        except OSError:
            return False
    return True


def _prepare(
    out: Path, base: str, files: Mapping[str, bytes], owned: Sequence[str], change: _Change
) -> Path:
    """A staging directory beside `out` holding what `out/base` must hold."""
    target = out / base if base else out
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.absolute().parent))
    try:
        # mkdtemp makes it 0700; the swapped-in directory keeps the mode it had.
        staging.chmod(_dir_mode(target))
        _stage(out, base, staging, files, owned, change)
    except BaseException:
        _discard(staging)
        raise
    return staging


def _swap_in(out: Path, base: str, staging: Path, owned: Sequence[str]) -> bool:
    """Swap `staging` in for `out/base`; False where the kernel cannot exchange two
    directories or they lie on two file systems (then only `out` itself can be
    swapped, with the two-rename fallback). `staging` then holds the old tree."""
    target = out / base if base else out
    if not base:
        _swap(staging, out)
    elif not target.exists():
        staging.rename(target)  # a new directory appears whole
    else:
        try:
            if not _exchange(staging, target):
                return False
        except OSError as err:
            if err.errno == errno.EXDEV:
                return False
            raise
        _drop_empty(out, base, owned)
    return True


def _drop_empty(out: Path, base: str, owned: Sequence[str]) -> None:
    """Remove `base` and the directories above it that the swap left empty, inside
    the owned directories only, as the whole-tree swap would not have made them."""
    parts = base.split("/")
    while parts and any("/".join(parts) == o or "/".join(parts).startswith(o + "/") for o in owned):
        try:
            (out / "/".join(parts)).rmdir()
        except OSError:  # not empty (or gone): the directories above are not empty either
            return
        parts.pop()


def _stage(
    out: Path,
    base: str,
    staging: Path,
    files: Mapping[str, bytes],
    owned: Sequence[str],
    change: _Change,
) -> None:
    """Fill `staging` with what `out/base` must hold."""
    prefix = f"{base}/" if base else ""

    def is_owned(rel: str) -> bool:
        return any(rel == o or rel.startswith(o + "/") for o in owned)

    links: set[str] = set()  # symbolic links carried over, relative to `staging`
    modes: list[tuple[Path, int]] = []  # of carried-over directories, set once they are full
    made: set[str] = {""}  # directories of `staging` that exist
    source = out / base if base else out
    if source.is_dir():
        for local, kind in walk_tree(source):
            rel = prefix + local
            if is_owned(rel):
                continue
            target = staging / local
            if kind == "dir":
                target.mkdir()
                made.add(local)
                modes.append((target, stat.S_IMODE((source / local).lstat().st_mode)))
            elif kind == "link":
                target.symlink_to((source / local).readlink())
                links.add(local)
            else:
                link_or_copy(source / local, target)
    mine = sorted(rel[len(prefix) :] for rel in files if rel.startswith(prefix))
    for local in mine:  # a carried-over link above an owned file would be written through
        parts = local.split("/")
        for depth in range(1, len(parts)):
            above = "/".join(parts[:depth])
            if above in links:
                raise InputError(
                    f"refusing to write {prefix + local!r}: {prefix + above!r} in {out} "
                    "is a symbolic link"
                )
    into = f"{staging}{os.sep}"  # strings, not Paths: this runs for every file of a fleet
    writes: list[tuple[str, bytes]] = []
    for local in mine:
        folder = local.rpartition("/")[0]
        if folder not in made:
            os.makedirs(into + folder, exist_ok=True)  # noqa: PTH103 - a string, as above
            made.add(folder)
        rel = prefix + local
        if rel not in change.differ:
            link_or_copy(out / rel, staging / local)
            continue
        writes.append((into + local, files[rel]))
    write_all(writes)  # a large tree by two processes (stagedfiles.py)
    for directory, mode in reversed(modes):  # deepest first: a read-only parent comes last
        directory.chmod(mode)


def _dir_mode(out: Path) -> int:
    if out.is_dir():
        return stat.S_IMODE(out.stat().st_mode)
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o777 & ~umask


def walk_tree(root: Path) -> Iterator[tuple[str, str]]:
    """(relative path, "dir" | "file" | "link"), parents first, never following links."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in sorted(dirnames):
            path = base / name
            rel = path.relative_to(root).as_posix()
            yield rel, "link" if path.is_symlink() else "dir"
        for name in sorted(filenames):
            path = base / name
            rel = path.relative_to(root).as_posix()
            yield rel, "link" if path.is_symlink() else "file"


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        if path.is_symlink() or path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:
        return False


def _swap(staging: Path, out: Path) -> None:
    if not out.exists():
        staging.rename(out)
        return
    if _exchange(staging, out):
        return  # `staging` now holds the old tree; the caller removes it
    aside = out.with_name(f".{out.name}.old")
    _discard(aside)
    out.rename(aside)
    try:
        staging.rename(out)  # a kill between these two renames is completed by `_recover`
    except BaseException:
        aside.rename(out)  # a failure (not a kill) puts the old tree back at once
        raise
    _discard(aside)


def _recover(out: Path) -> None:
    """Finish a two-rename swap that a killed run left half done; drop stale staging dirs."""
    aside = out.with_name(f".{out.name}.old")
    if aside.is_dir() and not out.exists():
        aside.rename(out)
    _discard(aside)
    for stale in out.parent.glob(f".{out.name}.staging-*"):
        _discard(stale)


def _discard(tree: Path) -> None:
    """Remove a directory of ours (a staging dir, an old tree), best effort.

    The old tree holds the user's directories as they were, read-only ones
    too, whose entries cannot be removed: make those writable and try again,
    rather than leave a copy of the old tree beside `out` for good.
    """
    shutil.rmtree(tree, ignore_errors=True)
    if tree.is_symlink() or not tree.exists():
        return
    for dirpath, dirnames, _ in os.walk(tree):  # never follows links
        base = Path(dirpath)
        for path in (base, *(base / name for name in dirnames)):
            if not path.is_symlink():
                with suppress(OSError):
                    path.chmod(stat.S_IRWXU)
    shutil.rmtree(tree, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One writer per parent directory at a time (two would remove each other's staging).

    The lock is on the directory itself, so no lock file is left behind.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
