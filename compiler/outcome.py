"""What a command returns to the CLI: its exit code and what the final status reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from compiler.errors import EXIT_OK


@dataclass(frozen=True)
class Outcome:
    exit_code: int = EXIT_OK
    status: str | None = None  # None: "success" or "failed", from the exit code
    clusters: Sequence[str] = ()  # the clusters compiled (none when nothing was)
    trace_id: str | None = None  # None: the run's emit step
    pull_request: str | None = None  # the URL of the pull request opened or updated
    pull_request_name: str | None = None  # the forge's words: "merge request !12" on GitLab
