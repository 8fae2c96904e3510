"""Validation: every finding is a `Violation`, collected, never fail-fast."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from compiler.merge import MergeResult
    from compiler.model import DocPath


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


def where_set(merged: MergeResult, path: DocPath) -> str:
    """The layer(s) to blame for a path: its own, those under it, or its parent's.

    A finding on a map (a namespace without a quota) names the layers that
    built that map; a missing key names the layer that set its parent.
    """
    if path in merged.provenance:
        return merged.provenance[path].describe()
    under = list(dict.fromkeys(p.describe() for p in merged.layers_under(path)))
    if under:
        # Highest precedence first: the layer a reviewer most likely has to change.
        under.reverse()
        return ", ".join(under[:3]) + (f" and {len(under) - 3} more" if len(under) > 3 else "")
    found = merged.provenance_of(path)
    return found.describe() if found is not None else ""
