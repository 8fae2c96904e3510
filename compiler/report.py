"""Reporters render findings; they decide nothing (the exit code comes from the result)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import TextIO

from compiler.policy import Violation
from compiler.secrets import redact

FORMATS = ("text", "json", "github")

# Names a one-line summary shows before it counts the rest: a fleet's compile names a
# thousand clusters, which no reader scans on one line (`--format json` lists them all).
NAMES_SHOWN = 10


def names_in_brief(names: Sequence[str], shown: int = NAMES_SHOWN) -> str:
    """`a, b, c`; past `shown` names, the first ones and how many more."""
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def records(violations: Sequence[Violation]) -> list[dict[str, str]]:
    """Findings as JSON objects, masked: a message may quote a credential."""
    return [{k: redact(x) for k, x in asdict(v).items()} for v in violations]


# GitHub Actions annotation levels: a finding fails, a warning warns, a waived one informs.
_ANNOTATION = {"error": "error", "warning": "warning", "waived": "notice"}


def report_violations(
    violations: Sequence[Violation],
    fmt: str,
    stream: TextIO,
    notices: Sequence[Violation] = (),
) -> None:
    """The findings that fail the run, and the notices (warnings, waived findings) beside."""
    if fmt == "json":
        # One object, as the success summary is, so a caller parses one shape.
        # Values are quoted in messages: a credential in one (a URL's user:password@) is masked.
        record = {"violations": records(violations)}
        if notices:
            record["notices"] = records(notices)
        json.dump(record, stream, indent=2, sort_keys=True)
        stream.write("\n")
        return
    for v in [*notices, *violations]:
        if fmt == "github":
            # GitHub Actions workflow command: an annotation on the run.
            where = f" (set by {v.provenance})" if v.provenance else ""
            waiver = f"; waived by {v.waiver}" if v.waiver else ""
            text = f"{v.cluster}: {v.path}: {v.message}{where}{waiver}".replace("\n", "%0A")
            level = _ANNOTATION.get(v.severity, "error")
            stream.write(redact(f"::{level} title={v.rule}::{text}\n"))
        else:
            stream.write(redact(f"{v.describe()}\n"))
    if fmt == "text" and violations:
        clusters = len({v.cluster for v in violations})
        stream.write(f"{len(violations)} violation(s) in {clusters} cluster(s)\n")
