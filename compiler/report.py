"""Reporters render findings; they decide nothing (the exit code comes from the result)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import TextIO

from compiler.policy import Violation
from compiler.secrets import redact

FORMATS = ("text", "json", "github")


def report_violations(violations: Sequence[Violation], fmt: str, stream: TextIO) -> None:
    if fmt == "json":
        # One object, as the success summary is, so a caller parses one shape.
        # Values are quoted in messages: a credential in one (a URL's user:password@) is masked.
        record = {"violations": [{k: redact(x) for k, x in asdict(v).items()} for v in violations]}
        json.dump(record, stream, indent=2, sort_keys=True)
        stream.write("\n")
        return
    for v in violations:
        if fmt == "github":
            # GitHub Actions workflow command: an annotation on the run.
            where = f" (set by {v.provenance})" if v.provenance else ""
            text = f"{v.cluster}: {v.path}: {v.message}{where}".replace("\n", "%0A")
            stream.write(redact(f"::error title={v.rule}::{text}\n"))
        else:
            stream.write(redact(f"{v.describe()}\n"))
    if fmt == "text" and violations:
        clusters = len({v.cluster for v in violations})
        stream.write(f"{len(violations)} violation(s) in {clusters} cluster(s)\n")
