"""Which layer set a value of a merged config: the one question behind a finding's
blame, a diff's `set by` and `explain`.

Findings name `where_set`; the PR diff names `field_blame` for a changed field
and `entry_blame` for a whole DSL entry, and `deleted_by` when a layer's `null`
removed what the tree had. `resolve_path` turns the dotted paths that users and
policies write into paths of the merged config.
"""

from __future__ import annotations

import re
from typing import Any

from compiler.errors import UsageError
from compiler.merge import MergeResult
from compiler.model import DocPath, LayerRef, format_path

_INDEX = re.compile(r"^(.*?)((?:\[\d+\])+)$")


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


def field_blame(merged: MergeResult, path: DocPath) -> str:
    """The layer that set a path; for a path that is gone, the layer that deleted it."""
    if is_live(merged.value, path):
        return where_set(merged, path)
    return deleted_by(merged, path) or where_set(merged, path)


def entry_blame(merged: MergeResult, path: DocPath) -> str:
    """The layers that built a DSL entry, each once, at its first line (where the entry
    starts in a file), highest precedence first."""
    first: dict[LayerRef, int | None] = {}
    for prov in merged.layers_under(path):
        line = first.get(prov.ref, prov.line)
        first[prov.ref] = min(line, prov.line) if line and prov.line else line or prov.line
    if not first:
        return where_set(merged, path)
    shown = [ref.describe(line) for ref, line in reversed(first.items())]
    return ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")


def key_blame(merged: MergeResult, path: DocPath) -> str:
    """The layers that wrote the key at `path`, each at the key's own line (not at the
    first value under it), highest precedence first: for an unknown or misnamed key."""
    shown: list[str] = []
    for layer in reversed(merged.layers):
        found = layer.key_provenance(path)
        if found is not None and (described := found.describe()) not in shown:
            shown.append(described)
    if not shown:
        return entry_blame(merged, path)
    return ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")


def deleted_by(merged: MergeResult, path: DocPath) -> str:
    """The layer whose `null` removed `path` (or an ancestor of it); "" if none did."""
    for n in range(len(path), 0, -1):
        history = merged.history.get(path[:n])
        if history and history[-1].deleted:
            return history[-1].provenance.describe()
    return ""
