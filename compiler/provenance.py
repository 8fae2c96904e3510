"""`explain`: the value at a path of a merged config, who set it and what it overrode."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from compiler.errors import UsageError
from compiler.merge import MergeResult
from compiler.model import DocPath, format_path

_DELETED = object()  # marks a history entry where a `null` deleted the key
_INDEX = re.compile(r"^(.*?)((?:\[\d+\])+)$")


@dataclass(frozen=True)
class LeafExplanation:
    path: DocPath
    value: Any
    set_by: str
    overrode: tuple[tuple[Any, str], ...]  # (old value, who set it), newest first

    @property
    def deleted(self) -> bool:
        return self.value is _DELETED


def resolve_path(config: Any, text: str) -> DocPath:
    """`namespaces.dev-team.quotas.dev-quota.cpu` -> a path; keys may hold dots.

    Given a `MergeResult`, a path that a layer deleted (`null`) resolves too.
    """
    if isinstance(config, MergeResult):
        try:
            return resolve_path(config.value, text)
        except UsageError:
            wanted = ".".join(t for t in text.split(".") if t)
            for gone in _deleted_paths(config):
                if format_path(gone) == wanted:
                    return gone
            raise
    tokens = [t for t in text.split(".") if t != ""] if text else []
    path: list[str | int] = []
    node = config
    i = 0
    while i < len(tokens):
        if not isinstance(node, dict):
            raise UsageError(f"{format_path(tuple(path))} is not a map; cannot go to {text!r}")
        # The longest run of tokens that is a key: role names like `a.b` contain dots.
        for j in range(len(tokens), i, -1):
            key, indexes = _split_index(".".join(tokens[i:j]))
            if key in node:
                path.append(key)
                node = node[key]
                for index in indexes:
                    if not isinstance(node, list) or index >= len(node):
                        raise UsageError(
                            f"{format_path(tuple(path))} has no item [{index}] (in {text!r})"
                        )
                    path.append(index)
                    node = node[index]
                i = j
                break
        else:
            where = format_path(tuple(path)) if path else "the merged config"
            raise UsageError(f"{where} has no key {tokens[i]!r} (in {text!r})")
    return tuple(path)


def _split_index(token: str) -> tuple[str, list[int]]:
    match = _INDEX.match(token)
    if not match:
        return token, []
    return match.group(1), [int(n) for n in re.findall(r"\d+", match.group(2))]


def _deleted_paths(merged: MergeResult) -> set[DocPath]:
    """Paths (and their ancestors) whose last write was a deletion, and that are gone."""
    out: set[DocPath] = set()
    for path, history in merged.history.items():
        if history and history[-1].deleted and not is_live(merged.value, path):
            out.update(path[:n] for n in range(1, len(path) + 1))
    return {p for p in out if not is_live(merged.value, p)}


def is_live(value: Any, path: DocPath) -> bool:
    for part in path:
        in_map = isinstance(value, dict) and part in value
        in_list = isinstance(value, list) and isinstance(part, int) and part < len(value)
        if not (in_map or in_list):
            return False
        value = value[part]
    return True


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
        return [_entry(merged, p, _DELETED) for p in sorted(gone, key=_sort_key)]
    out = []
    for leaf in sorted((p for p in merged.provenance if p[:n] == path), key=_sort_key):
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


def _sort_key(path: DocPath) -> tuple:
    return tuple((0, p) if isinstance(p, int) else (1, p) for p in path)
