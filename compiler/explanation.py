"""`explain`: the value at a path of a merged config, who set it and what it overrode.

Paths are resolved, and told live or deleted, by `compiler.provenance`; this module only
gathers a path's history and renders it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from compiler.merge import MergeResult
from compiler.model import DocPath, format_path, path_order
from compiler.provenance import is_live

_DELETED = object()  # marks a history entry where a `null` deleted the key


@dataclass(frozen=True)
class LeafExplanation:
    path: DocPath
    value: Any
    set_by: str
    overrode: tuple[tuple[Any, str], ...]  # (old value, who set it), newest first

    @property
    def deleted(self) -> bool:
        return self.value is _DELETED


def explain(merged: MergeResult, path: DocPath) -> list[LeafExplanation]:
    """One entry per leaf at or below `path`, in path order.

    A path that is gone because a layer deleted it: one entry per deleted leaf.
    """
    n = len(path)
    if not is_live(merged.value, path):
        gone = (
            p
            for p, history in merged.history.items()
            if p[:n] == path and history and history[-1].deleted and not is_live(merged.value, p)
        )
        return [_entry(merged, p, _DELETED) for p in sorted(gone, key=path_order)]
    out = []
    for leaf in sorted((p for p in merged.provenance if p[:n] == path), key=path_order):
        value = _get(merged.value, leaf)
        if isinstance(value, list) and leaf != path:
            continue  # a list inside the asked path: its items speak for it
        out.append(_entry(merged, leaf, value))
    return out


def _entry(merged: MergeResult, leaf: DocPath, value: Any) -> LeafExplanation:
    history = merged.history.get(leaf, [])
    earlier = tuple(
        (_DELETED if s.deleted else s.value, s.provenance.describe())
        for s in reversed(history[:-1])
    )
    found = merged.provenance.get(leaf)
    set_by = found.describe() if found is not None else history[-1].provenance.describe()
    return LeafExplanation(leaf, value, set_by, earlier)


def format_explanation(entries: list[LeafExplanation], *, as_json: bool) -> str:
    if as_json:
        return json.dumps(
            [
                {
                    "path": format_path(e.path),
                    "value": None if e.deleted else e.value,
                    "deleted": e.deleted,
                    "set_by": e.set_by,
                    "overrode": [
                        {
                            "value": None if v is _DELETED else v,
                            "deleted": v is _DELETED,
                            "set_by": who,
                        }
                        for v, who in e.overrode
                    ],
                }
                for e in entries
            ],
            indent=2,
            sort_keys=True,
        )
    lines = []
    for e in entries:
        lines.append(f"{format_path(e.path)} = {_show(e.value)}")
        verb = "deleted by  " if e.value is _DELETED else "set by      "
        lines.append(f"  {verb}{e.set_by}")
        for value, who in e.overrode:
            lines.append(f"  overrode    {_show(value)}  ({who})")
    return "\n".join(lines)


def _show(value: Any) -> str:
    return "(deleted)" if value is _DELETED else json.dumps(value, sort_keys=True)


def _get(value: Any, path: DocPath) -> Any:
    for part in path:
        value = value[part]
    return value
