"""The one error root. Each subclass maps to one exit code of DESIGN.md.

Library code raises these and never prints or exits; `cli.error_handler` is the
one place that turns them into a message and an exit code.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1  # violations, golden mismatch, diff found
EXIT_BAD_INPUT = 2  # bad usage or bad input
EXIT_OUTSIDE = 3  # an outside system failed (DynamoDB, git, forge, cue)
EXIT_INTERNAL = 4  # a bug: one line and a crash log
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a tool killed by it exits in a shell


class CompilerError(Exception):
    """Base of every error the compiler reports to a user."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, cluster: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cluster = cluster

    def with_cluster(self, cluster: str) -> CompilerError:
        """Add the cluster as the error travels up, once."""
        if self.cluster is None:
            self.cluster = cluster
        return self

    def __str__(self) -> str:
        if self.cluster:
            return f"cluster {self.cluster}: {self.message}"
        return self.message


class UsageError(CompilerError):
    """The command line or the project file is wrong."""

    exit_code = EXIT_BAD_INPUT


class InputError(CompilerError):
    """A layer document, an item or a file cannot be used as it is."""

    exit_code = EXIT_BAD_INPUT


class OutsideError(CompilerError):
    """An outside system (DynamoDB, git, the forge, cue, kubectl) failed."""

    exit_code = EXIT_OUTSIDE


class RefusedError(CompilerError):
    """A well-formed request that a rule of the project refuses, as a policy finding
    refuses a write (exit 1): approving one's own proposal under `review: required`."""

    exit_code = EXIT_FINDINGS
