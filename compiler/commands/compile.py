"""`compile` and `validate`: the pipeline from the store to a tree (or to a verdict)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from compiler.argocd.against import replacement_findings
from compiler.emit import EmitStats, StagedTree, staged_tree
from compiler.errors import EXIT_FINDINGS, EXIT_OK
from compiler.layout import TREE_ROOTS
from compiler.operations import steps
from compiler.operations.audit import content_hash
from compiler.options import Selection, SourceOptions, open_project
from compiler.outcome import Outcome
from compiler.pipeline import CompileResult
from compiler.publishing.diffbase import no_clusters_warning, read_project_base
from compiler.report import records, report_violations
from compiler.run import cluster_names, run_compile_stage, snapshot_freshness
from compiler.stageclock import timed


def compile_command(
    *, source: SourceOptions, selection: Selection, out: Path, fmt: str, cue: str | None
) -> Outcome:
    started = time.perf_counter()

    def owned_by(result: CompileResult) -> list[str]:
        return list(TREE_ROOTS) if selection.whole_fleet else result.owned

    with ExitStack() as held:
        staged: list[StagedTree] = []

        def stage_beside_cue(result: CompileResult) -> None:
            # The tree is written beside `out` while cue still runs (the main thread
            # would only wait), and swapped in below only if cue finds nothing.
            with timed("stage"):
                staged.append(
                    held.enter_context(staged_tree(out, result.files, owned=owned_by(result)))
                )

        result = run_compile_stage(
            source,
            selection,
            cue=cue,
            show_progress=fmt == "text",
            while_policies_run=stage_beside_cue,
        )
        if result.violations:
            report_violations(result.violations, fmt, sys.stdout, result.notices)
            print(f"nothing written to {out}: fix the violations first", file=sys.stderr)
            # Leaving the block discards a staged tree.
            return Outcome(EXIT_FINDINGS, clusters=cluster_names(result))
        with steps.step("emit", out=str(out)) as emitted, timed("write"):
            if not staged:  # the hook did not run (it runs whenever nothing was wrong before cue)
                staged.append(
                    held.enter_context(staged_tree(out, result.files, owned=owned_by(result)))
                )
            stats = staged[0].commit()
            emitted["tree"] = content_hash(result.files)
            emitted["written"] = stats.written
    elapsed = time.perf_counter() - started
    if fmt == "json":
        json.dump(summary_record(result, stats, elapsed, out), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        # Warnings and waived findings: beside the summary (annotations on stdout for
        # GitHub, where the runner reads them).
        stream = sys.stdout if fmt == "github" else sys.stderr
        report_violations([], fmt, stream, result.notices)
        print(summary(result, stats, elapsed, out))
    return Outcome(EXIT_OK, clusters=cluster_names(result))


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
        **({"notices": records(result.notices)} if result.notices else {}),
    }


def validate_command(
    *,
    source: SourceOptions,
    selection: Selection,
    fmt: str,
    cue: str | None,
    changed: Sequence[Path] = (),
    against: str | None = None,
    hook: bool = False,
) -> Outcome:
    with snapshot_freshness(source, hook=hook) as stale_snapshot:
        result = run_compile_stage(
            source, selection, cue=cue, changed=changed, hook=hook, show_progress=fmt == "text"
        )
        stale = stale_snapshot()
    if against is not None and not result.violations:  # changes refused in place
        argocd = open_project(source).argocd
        base = read_project_base(against, result.owned, argocd)
        if not base.has_clusters:
            print(f"warning: {no_clusters_warning(base)}", file=sys.stderr)
        failing, notices = replacement_findings(dict(base.files), result.files, against)
        result.violations.extend(failing)
        result.notices.extend(notices)
    report_violations(result.violations, fmt, sys.stdout, result.notices)
    if stale:
        print(stale, file=sys.stderr)
    if not result.violations and fmt == "text":
        if (changed or hook) and not result.clusters:
            print(f"{len(changed)} file(s) checked: no cluster reads them")
        else:
            print(f"{len(result.clusters)} cluster(s) valid: {result.object_count} objects")
    code = EXIT_FINDINGS if result.violations else EXIT_OK
    return Outcome(code, clusters=cluster_names(result))
