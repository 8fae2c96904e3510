"""`golden check` / `golden update`: the example clusters' expected tree, byte for byte."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from compiler.emit import write_tree
from compiler.errors import EXIT_FINDINGS, EXIT_OK
from compiler.goldenfiles import compare
from compiler.layout import TREE_ROOTS
from compiler.options import Selection, SourceOptions
from compiler.outcome import Outcome
from compiler.report import report_violations
from compiler.run import cluster_names, hook_reads_changes, run_compile_stage


def golden_command(
    *,
    source: SourceOptions,
    golden: Path,
    update: bool,
    fmt: str,
    cue: str | None,
    hook: bool = False,
    changed: Sequence[Path] = (),
) -> Outcome:
    if hook and not update and not hook_reads_changes(source, changed, golden):
        print("golden check: the commit changes nothing the compile reads")
        return Outcome(EXIT_OK)
    result = run_compile_stage(source, Selection(all_clusters=True), cue=cue)
    compiled = cluster_names(result)
    if result.violations:
        report_violations(result.violations, fmt, sys.stdout, result.notices)
        return Outcome(EXIT_FINDINGS, clusters=compiled)
    files = result.files
    if update:
        stats = write_tree(golden, files, owned=list(TREE_ROOTS))
        print(
            f"golden files updated in {golden}: {stats.written} written, "
            f"{stats.unchanged} unchanged, {stats.removed} removed"
        )
        return Outcome(EXIT_OK, clusters=compiled)
    differences = compare(golden, files)
    for difference in differences:
        sys.stdout.write(difference.diff)
    if differences:
        print(
            f"{len(differences)} file(s) differ from {golden}; if the change is intended, "
            "run `gitops-compiler golden update` and commit the result",
            file=sys.stderr,
        )
        return Outcome(EXIT_FINDINGS, clusters=compiled)
    print(f"golden files match: {len(files)} files in {golden}")
    return Outcome(EXIT_OK, clusters=compiled)
