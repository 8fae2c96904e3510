"""Validation: every finding is a `Violation`, collected, never fail-fast.

Who to blame for a finding (`where_set`) is `compiler.provenance`'s question.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Violation:
    """One broken rule, with where it is and which layer put it there."""

    cluster: str
    path: str  # dotted path in the merged config (or `object:<file>` for rendered objects)
    rule: str  # e.g. `schema`, `render.role-missing`
    message: str
    provenance: str = ""  # `overlays/prod/quotas.yaml:3` or `dynamodb:env#prod/v#…@3`
    # "error" fails the run; "warning" and "waived" (an error a live waiver covers) are
    # reported only.
    severity: str = "error"
    waiver: str = ""  # the waiver that covers it: `policies/waivers.yaml:3 (owner …)`

    def describe(self) -> str:
        where = f" (set by {self.provenance})" if self.provenance else ""
        shown = f"{self.cluster}: {self.path}: {self.message} [{self.rule}]{where}"
        if self.severity == "warning":
            return f"warning: {shown}"
        if self.severity == "waived":
            return f"waived: {shown}; waiver {self.waiver}"
        return shown
