"""The unit of the object checks: schemas, names and labels, Calico rules."""

from __future__ import annotations

from dataclasses import dataclass

from compiler.model import DocPath


@dataclass(frozen=True, order=True)
class Finding:
    """One problem in one object, before it is placed in a cluster and the DSL."""

    field: DocPath  # in the object: ("spec", "hard", "cpu")
    rule: str
    text: str
