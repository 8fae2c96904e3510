"""`doctor [--for check|publish]`: what a run needs, and how to fix what is missing."""

from __future__ import annotations

import os

from compiler.doctor import examine, needs_fixing
from compiler.errors import EXIT_FINDINGS, EXIT_OK
from compiler.options import SourceOptions, open_project


def doctor_command(*, source: SourceOptions, purpose: str, cue: str | None) -> int:
    findings = examine(open_project(source), purpose=purpose, cue=cue, environ=os.environ)
    for finding in findings:
        mark = "ok" if finding.ok else ("MISSING" if finding.needed else "warning")
        print(f"{mark:8} {finding.name}: {finding.detail}")
        if not finding.ok:
            print(f"{'':8} fix: {finding.fix}")
    if needs_fixing(findings):
        print(f"\nsomething `{purpose}` needs is missing: see the fixes above")
        return EXIT_FINDINGS
    print(f"\neverything `{purpose}` needs is there")
    return EXIT_OK
