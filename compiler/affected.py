"""Which clusters a set of changed files affects: what a pre-commit hook must recompile.

An overlay file affects the clusters whose stack reads its directory (the
`files:` entries of the layer stack, `overlays/{env}` by default); anything
else the compile reads (policies, the project file, a snapshot) affects every
cluster. Files the compile never reads (a README) affect none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from compiler.model import ClusterFacts
from compiler.project import PROJECT_FILE, StackEntry

_EVERYTHING = ("policies/", PROJECT_FILE, ".gitops/snapshot/", "examples/")


def affected_clusters(
    root: Path,
    stack: Sequence[StackEntry],
    facts: Sequence[ClusterFacts],
    changed: Iterable[Path],
) -> list[str]:
    names: set[str] = set()
    patterns = [_directory_pattern(e.template) for e in stack if e.kind == "files"]
    for path in changed:
        rel = _relative(root, path)
        if rel is None:
            continue
        if rel.startswith(_EVERYTHING):
            return sorted(f.name for f in facts)
        directory = rel.rpartition("/")[0]
        for pattern in patterns:
            match = pattern.fullmatch(directory)
            if match is None:
                continue
            env, cluster = match.groupdict().get("env"), match.groupdict().get("cluster")
            names.update(
                f.name
                for f in facts
                if (env is None or f.env == env) and (cluster is None or f.name == cluster)
            )
    return sorted(names)


def _directory_pattern(template: str) -> re.Pattern[str]:
    text = re.escape(template.strip("/"))
    text = text.replace(r"\{env\}", "(?P<env>[^/]+)").replace(r"\{cluster\}", "(?P<cluster>[^/]+)")
    return re.compile(text)


def _relative(root: Path, path: Path) -> str | None:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None  # outside the project: not something the compile reads
