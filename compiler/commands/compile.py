"""`compile` and `validate`: the pipeline from the store to a tree (or to a verdict)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from compiler.commands.common import Selection, SourceOptions, build_pin, open_project, open_store
from compiler.emit import EmitStats, write_tree
from compiler.errors import EXIT_FINDINGS, EXIT_OK
from compiler.pipeline import CompileResult, build_checks, compile_clusters, select_clusters
from compiler.policy.cue import find_cue
from compiler.report import report_violations


def run_compile_stage(
    source: SourceOptions, selection: Selection, *, cue: str | None
) -> CompileResult:
    project = open_project(source)
    # Found first: a missing cue fails the run before it reads or writes anything.
    cue_binary = find_cue(cue, os.environ)
    store = open_store(source, project)
    pin = build_pin(selection)
    names = select_clusters(store, selection.clusters, all_clusters=selection.all_clusters)
    checks = build_checks(project, cue=cue_binary)
    return compile_clusters(store, project, names, pin, checks)


def compile_command(
    *, source: SourceOptions, selection: Selection, out: Path, fmt: str, cue: str | None
) -> int:
    started = time.perf_counter()
    result = run_compile_stage(source, selection, cue=cue)
    if result.violations:
        report_violations(result.violations, fmt, sys.stdout)
        print(f"nothing written to {out}: fix the violations first", file=sys.stderr)
        return EXIT_FINDINGS
    owned = ["applicationsets", "clusters"] if selection.all_clusters else result.owned
    stats = write_tree(out, result.files, owned=owned)
    elapsed = time.perf_counter() - started
    if fmt == "json":
        json.dump(summary_record(result, stats, elapsed, out), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print(summary(result, stats, elapsed, out))
    return EXIT_OK


def summary(result: CompileResult, stats: EmitStats, elapsed: float, out: Path) -> str:
    names = ", ".join(c.facts.name for c in result.clusters)
    files = stats.written + stats.unchanged
    return (
        f"compiled {len(result.clusters)} cluster(s) ({names}): {result.object_count} objects, "
        f"{files} files ({stats.written} written, {stats.unchanged} unchanged, "
        f"{stats.removed} removed) in {elapsed:.2f} s -> {out}"
    )


def summary_record(
    result: CompileResult, stats: EmitStats, elapsed: float, out: Path
) -> dict[str, object]:
    """The summary for machines (`--format json`)."""
    return {
        "clusters": [c.facts.name for c in result.clusters],
        "objects": result.object_count,
        "files": {"written": stats.written, "unchanged": stats.unchanged, "removed": stats.removed},
        "out": str(out),
        "seconds": round(elapsed, 3),
        "violations": [],
    }


def validate_command(
    *, source: SourceOptions, selection: Selection, fmt: str, cue: str | None
) -> int:
    result = run_compile_stage(source, selection, cue=cue)
    report_violations(result.violations, fmt, sys.stdout)
    if not result.violations and fmt == "text":
        print(f"{len(result.clusters)} cluster(s) valid: {result.object_count} objects")
    return EXIT_FINDINGS if result.violations else EXIT_OK
