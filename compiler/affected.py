"""Which clusters a set of changed files affects: what a pre-commit hook must recompile.

An overlay file affects the clusters whose stack reads its directory (the
`files:` entries of the layer stack, `overlays/{env}` by default); anything
else the compile reads (policies, the project file, the snapshot the run reads)
affects every cluster. Files the compile never reads (a README) affect none.

A path is mapped by where it stands in the project (a symlinked overlay is the
overlay, not its target) and also through links: a change to the target of a
linked overlay file or env directory affects the clusters that read it through
the link (issue 16). Deleted paths map the same way, by name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from compiler.model import ClusterFacts
from compiler.project import PROJECT_FILE, StackEntry

_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class _Reader:
    """One cluster's overlay directory, as it stands and as it resolves."""

    cluster: str
    directory: Path  # absolute, links kept
    real: Path  # links resolved


def affected_clusters(
    root: Path,
    stack: Sequence[StackEntry],
    facts: Sequence[ClusterFacts],
    changed: Iterable[Path],
    *,
    everything: Sequence[Path] = (),
) -> list[str]:
    """The clusters `changed` affects; a path in `everything` (besides the policies and
    the project file) affects them all."""
    root = standing(root)
    shared = [root / "policies", root / PROJECT_FILE, *(standing(p) for p in everything)]
    readers = [
        _Reader(f.name, root / d, (root / d).resolve())
        for f in facts
        for d in sorted({e.resolve(env=f.env, cluster=f.name) for e in stack if e.kind == "files"})
    ]
    linked = _linked_files(readers)
    names: set[str] = set()
    for path in changed:
        path = standing(path)
        if any(_within(path, s) or _within(path.resolve(), s.resolve()) for s in shared):
            return sorted(f.name for f in facts)
        if path.suffix not in _SUFFIXES:
            continue
        real = path.resolve()
        for reader in readers:
            if path.parent in (reader.directory, reader.real) or real.parent == reader.real:
                names.add(reader.cluster)
        names.update(linked.get(real, ()))
    return sorted(names)


def _linked_files(readers: Sequence[_Reader]) -> dict[Path, set[str]]:
    """The targets of overlay files that are links, and the clusters reading each."""
    targets: dict[Path, set[str]] = {}
    for reader in readers:
        if not reader.directory.is_dir():
            continue
        for entry in reader.directory.iterdir():
            if entry.is_symlink():
                targets.setdefault(entry.resolve(), set()).add(reader.cluster)
    return targets


def standing(path: Path) -> Path:
    """`path` made absolute without following links: where it stands in the project."""
    return Path(os.path.normpath(path.absolute()))


def _within(path: Path, base: Path) -> bool:
    return path == base or path.is_relative_to(base)
