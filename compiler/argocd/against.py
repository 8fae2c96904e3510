"""`validate --against DIR|REF`: the in-place changes a compile would ask of the clusters,
judged against a base tree, for CI where no publish gives a base. The base is read as
`diff --against` reads it (`compiler.publishing.diffbase`).
"""

from __future__ import annotations

from collections.abc import Mapping

from compiler.argocd.immutable import RULE, immutable_changes
from compiler.policy import Violation


def replacement_findings(
    base: Mapping[str, bytes], new: Mapping[str, bytes], against: str
) -> tuple[list[Violation], list[Violation]]:
    """(violations, notices): each change the API server refuses in place fails unless the
    config accepts the replacement (`replaceOnSync`); an accepted one is a notice."""
    failing: list[Violation] = []
    notices: list[Violation] = []
    for change in immutable_changes(base, new):
        found = Violation(
            change.cluster,
            f"object:{change.file}",
            RULE,
            f"against {against}: {change.describe()}",
            severity="warning" if change.accepted else "error",
        )
        (notices if change.accepted else failing).append(found)
    return failing, notices
