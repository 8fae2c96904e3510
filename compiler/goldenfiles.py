"""Golden files: the expected tree of the example clusters, compared byte for byte."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from compiler.emit import walk_tree


@dataclass(frozen=True)
class FileDifference:
    path: str
    # "changed", "missing" (expected, not produced) or "unexpected" (produced, not expected)
    kind: str
    diff: str  # unified diff, golden -> compiled


def compare(golden: Path, files: Mapping[str, bytes]) -> list[FileDifference]:
    expected: dict[str, bytes] = {}
    if golden.is_dir():
        expected = {
            rel: (golden / rel).read_bytes() for rel, kind in walk_tree(golden) if kind == "file"
        }
    out = []
    for rel in sorted(set(expected) | set(files)):
        old, new = expected.get(rel), files.get(rel)
        if old == new:
            continue
        kind = "missing" if new is None else "unexpected" if old is None else "changed"
        out.append(FileDifference(rel, kind, _unified(rel, old, new)))
    return out


def _unified(rel: str, old: bytes | None, new: bytes | None) -> str:
    def lines(data: bytes | None) -> list[str]:
        return data.decode("utf-8", "replace").splitlines(keepends=True) if data else []

    diff = difflib.unified_diff(
        lines(old),
        lines(new),
        fromfile=f"golden/{rel}" if old is not None else "/dev/null",
        tofile=f"compiled/{rel}" if new is not None else "/dev/null",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in diff)
