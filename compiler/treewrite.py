"""How a compile that kept some clusters (compiler/treerecord.py) writes its tree: what
it owns, what it reports, and the records it leaves for the next run."""

from __future__ import annotations

from pathlib import Path

from compiler.emit import EmitStats
from compiler.layout import SHARED_DIR, TREE_ROOTS, cluster_dir
from compiler.pipeline import CompileResult
from compiler.treerecord import TreeRecords, stale_entries


def owned_directories(result: CompileResult, out: Path, *, whole_fleet: bool) -> list[str]:
    """The directories the compile replaces whole: never a kept cluster's, which stays
    as it is on disk; for the whole fleet, every other entry of clusters/ (stale ones
    go, as when the compile owns all of clusters/)."""
    if not whole_fleet:
        return result.owned
    if not result.kept:
        return list(TREE_ROOTS)
    names = [c.facts.name for c in result.clusters] + [k.name for k in result.kept]
    compiled = [cluster_dir(c.facts.name) for c in result.clusters]
    return sorted({SHARED_DIR, *compiled, *stale_entries(out, names)})


def kept_in(stats: EmitStats, result: CompileResult) -> EmitStats:
    """The write's counts with the kept clusters' files as unchanged, as a compile of
    every cluster would count them."""
    kept = sum(len(k.files) for k in result.kept)
    return EmitStats(written=stats.written, unchanged=stats.unchanged + kept, removed=stats.removed)


def record_compiled(records: TreeRecords, result: CompileResult) -> None:
    """Keep the records of the clusters just written (after the swap only)."""
    compiled = {c.facts.name: len(c.objects) for c in result.clusters}
    records.record(result.files, compiled, result.own_findings, result.applications)
