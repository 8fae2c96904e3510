"""`compile` and `validate`: the pipeline from the store to a tree (or to a verdict)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from compiler.argocd.against import replacement_findings
from compiler.cachedir import cache_root
from compiler.emit import EmitStats, StagedTree, staged_tree
from compiler.errors import EXIT_FINDINGS, EXIT_OK
from compiler.gctuning import fewer_collections
from compiler.operations import steps
from compiler.options import Selection, SourceOptions, open_project
from compiler.outcome import Outcome
from compiler.pipeline import CompileResult
from compiler.publishing.diffbase import no_clusters_warning, read_project_base
from compiler.report import names_in_brief, records, report_violations
from compiler.run import cluster_names, run_compile_stage, snapshot_freshness
from compiler.stageclock import timed
from compiler.treerecord import TreeRecords, tree_hash
from compiler.treewrite import kept_in, owned_directories, record_compiled


def compile_command(
    *, source: SourceOptions, selection: Selection, out: Path, fmt: str, cue: str | None
) -> Outcome:
    started = time.perf_counter()

    tree_records = TreeRecords(cache_root(), out)

    def owned_by(result: CompileResult) -> list[str]:
        return owned_directories(result, out, whole_fleet=selection.whole_fleet)

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
            records=tree_records,
        )
        if result.violations:
            report_violations(result.violations, fmt, sys.stdout, result.notices)
            print(f"nothing written to {out}: fix the violations first", file=sys.stderr)
            # Leaving the block discards a staged tree.
            return Outcome(EXIT_FINDINGS, clusters=cluster_names(result))
        # The compile's objects live on: no full collections over them (~1.2 s at C=1000).
        held.enter_context(fewer_collections())
        with steps.step("emit", out=str(out)) as emitted, timed("write"):
            if not staged:  # the hook did not run (it runs whenever nothing was wrong before cue)
                staged.append(
                    held.enter_context(staged_tree(out, result.files, owned=owned_by(result)))
                )
            stats = kept_in(staged[0].commit(), result)
            emitted["tree"] = tree_hash(result.files, result.kept)
            emitted["written"] = stats.written
            emitted["kept"] = len(result.kept)
        if tree_records.fingerprints:
            with timed("record"):
                record_compiled(tree_records, result)
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
    names = names_in_brief(cluster_names(result))
    files = stats.written + stats.unchanged
    kept = f", {len(result.kept)} cluster(s) unchanged, not recompiled" if result.kept else ""
    return (
        f"compiled {len(cluster_names(result))} cluster(s) ({names}): "
        f"{result.object_count} objects, {files} files ({stats.written} written, "
        f"{stats.unchanged} unchanged, {stats.removed} removed{kept}) in {elapsed:.2f} s -> {out}"
    )


def summary_record(
    result: CompileResult, stats: EmitStats, elapsed: float, out: Path
) -> dict[str, object]:
    """The summary for machines (`--format json`)."""
    return {
        "clusters": list(cluster_names(result)),
        "kept": [k.name for k in result.kept],  # unchanged since the last compile, not redone
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
