"""Run ids and trace ids in the seed's form: `ms-<run>-<step>-e<NN>`.

One run id per run (given with `--run-id`, else generated); each interaction
with an outside system carries the trace id of its step, so a commit, a pull
request and an audit line can be followed back to one run.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

STEPS = {"dynamodb": "e10", "policy": "e20", "emit": "e30", "git": "e40", "argocd": "e50"}
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._]{0,63}$")


def new_run_id() -> str:
    """UTC time to the second, then randomness: sortable, and unique across machines."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Run:
    id: str = field(default_factory=new_run_id)

    def __post_init__(self) -> None:
        if not _RUN_ID.match(self.id):
            from compiler.errors import UsageError

            raise UsageError(
                f"run id {self.id!r}: use 1-64 letters, digits, dots or underscores "
                "(no dashes: they separate the parts of a trace id)"
            )

    def trace(self, step: str) -> str:
        return f"ms-{self.id}-{step}-{STEPS[step]}"
