"""`golden check` / `golden update`: the example clusters' expected tree, byte for byte."""

from __future__ import annotations

import sys
from pathlib import Path

from compiler.commands.common import Selection, SourceOptions
from compiler.commands.compile import run_compile_stage
from compiler.emit import write_tree
from compiler.errors import EXIT_FINDINGS, EXIT_OK
from compiler.goldenfiles import compare
from compiler.layout import TREE_ROOTS
from compiler.report import report_violations


def golden_command(
    *, source: SourceOptions, golden: Path, update: bool, fmt: str, cue: str | None
) -> int:
    result = run_compile_stage(source, Selection(all_clusters=True), cue=cue)
    if result.violations:
        report_violations(result.violations, fmt, sys.stdout)
        return EXIT_FINDINGS
    files = result.files
    if update:
        stats = write_tree(golden, files, owned=list(TREE_ROOTS))
        print(
            f"golden files updated in {golden}: {stats.written} written, "
            f"{stats.unchanged} unchanged, {stats.removed} removed"
        )
        return EXIT_OK
    differences = compare(golden, files)
    for difference in differences:
        sys.stdout.write(difference.diff)
    if differences:
        print(
            f"{len(differences)} file(s) differ from {golden}; if the change is intended, "
            "run `gitops-compiler golden update` and commit the result",
            file=sys.stderr,
        )
        return EXIT_FINDINGS
    print(f"golden files match: {len(files)} files in {golden}")
    return EXIT_OK
