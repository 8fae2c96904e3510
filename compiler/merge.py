"""Merge a layer stack with JSON Merge Patch (RFC 7386) semantics, remembering who set what.

Maps merge recursively, scalars replace, `null` deletes the key. Lists replace,
unless the project file declares another strategy for their path (`append` or
`by-key:<field>`): that is one table (`ListStrategies`), not a rewrite.

Built on `deepmerge`: the strategies below are plugged into its `Merger`; the
recording of provenance rides along in a small `_Recorder`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from deepmerge import Merger

from compiler.errors import UsageError
from compiler.model import DocPath, Layer, LayerRef, Provenance


@dataclass(frozen=True)
class Setting:
    """One layer's write to a path: what it set and who it was."""

    provenance: Provenance
    value: Any
    deleted: bool = False  # a `null` in this layer deleted the key


@dataclass(frozen=True)
class ListStrategies:
    """List strategy per path pattern, e.g. `namespaces.*.access.*.users: append`.

    Patterns are dotted paths whose parts are fnmatch globs; the first match wins.
    """

    rules: tuple[tuple[tuple[str, ...], str], ...] = ()

    @classmethod
    def from_mapping(cls, table: Mapping[str, str]) -> ListStrategies:
        rules = []
        for pattern, strategy in table.items():
            kind, _, key = strategy.partition(":")
            if kind == "by-key" and key.strip():
                strategy = f"by-key:{key.strip()}"  # `by-key: name` as DESIGN.md spells it
            elif strategy not in ("replace", "append"):
                raise UsageError(
                    f"list strategy for {pattern!r} is {strategy!r}: "
                    "use replace, append or by-key:<field>"
                )
            rules.append((tuple(pattern.split(".")), strategy))
        return cls(tuple(rules))

    def for_path(self, path: DocPath) -> str:
        parts = [str(p) for p in path]
        for pattern, strategy in self.rules:
            if len(pattern) == len(parts) and all(
                fnmatch.fnmatchcase(part, glob) for part, glob in zip(parts, pattern, strict=True)
            ):
                return strategy
        return "replace"


@dataclass
class MergeResult:
    value: dict[str, Any]
    # The layer that set each leaf of `value` (scalars, lists and their items, empty maps).
    provenance: dict[DocPath, Provenance]
    # Every write to a leaf path, oldest first: what `explain` shows as "overrode";
    # a compile's merge keeps a path's writes from its first deletion on only
    # (`merge_layers(full_history=False)`).
    history: dict[DocPath, list[Setting]] = field(default_factory=dict)
    # The layers merged, lowest precedence first.
    stack: tuple[LayerRef, ...] = ()
    # The same layers themselves (shared, not copied): where a finding about a key
    # rather than a value looks up the key's own line (provenance.key_blame).
    layers: tuple[Layer, ...] = ()

    def provenance_of(self, path: DocPath) -> Provenance | None:
        """The provenance of a path, or of the nearest ancestor that has one."""
        probe = path
        while True:
            found = self.provenance.get(probe)
            if found is not None or not probe:
                return found
            probe = probe[:-1]

    def layers_under(self, path: DocPath) -> list[Provenance]:
        """The distinct layers that set any leaf at or below a path, in stack order."""
        n = len(path)
        seen = {prov for p, prov in self.provenance.items() if p[:n] == path}
        rank = {ref: i for i, ref in enumerate(self.stack)}
        return sorted(
            seen, key=lambda prov: (rank.get(prov.ref, len(rank)), prov.ref, prov.line or 0)
        )


class _Recorder:
    """Records, for the layer being merged, every leaf it writes."""

    def __init__(self, *, full_history: bool = True) -> None:
        self.full_history = full_history
        self.layer: Layer | None = None
        self.provenance: dict[DocPath, Provenance] = {}
        self.history: dict[DocPath, list[Setting]] = {}
        # Result path -> path in the layer document, where they differ (by-key merges).
        self._aliases: dict[DocPath, DocPath] = {}

    def source(self, path: DocPath) -> DocPath:
        """Where a path of the result is in the layer being merged."""
        for n in range(len(path), 0, -1):
            found = self._aliases.get(path[:n])
            if found is not None:
                return (*found, *path[n:])
        return path

    @contextmanager
    def aliased(self, path: DocPath, source_path: DocPath) -> Iterator[None]:
        self._aliases[path] = source_path
        try:
            yield
        finally:
            del self._aliases[path]

    def write(self, path: DocPath, value: Any, source_path: DocPath, *, strip: bool = True) -> Any:
        """Record a fresh value and return it.

        Per RFC 7386 the nulls of a patch's objects are stripped, but an array is
        taken as it is (its items' nulls included): `strip` is off inside lists.
        """
        assert self.layer is not None
        if isinstance(value, dict):
            written = {
                k: self.write((*path, k), v, (*source_path, k), strip=strip)
                for k, v in value.items()
                if v is not None or not strip
            }
            if not written:  # `{}`, or a map of nulls only: an empty map is a leaf
                self._leaf(path, written, source_path)
            return written
        if isinstance(value, list):
            self._leaf(path, value, source_path)
            return [
                self.write((*path, i), v, (*source_path, i), strip=False)
                for i, v in enumerate(value)
            ]
        self._leaf(path, value, source_path)
        return value

    def deleted(self, path: DocPath, removed: Any) -> None:
        """A `null` removed `removed` at `path`: every leaf of it is deleted there."""
        assert self.layer is not None
        setting = Setting(self.layer.provenance(self.source(path)), None, deleted=True)
        for at in dict.fromkeys([path, *_leaf_paths(removed, path)]):
            self.history.setdefault(at, []).append(setting)
            self.provenance.pop(at, None)

    def replaced(self, path: DocPath, old: Any) -> None:
        """The value at `path` is about to be replaced whole: its leaves are leaves no
        more (the new value's are recorded as it is written). Keeping `provenance` to
        the live leaves as the merge goes costs the size of what is replaced; a walk
        of the whole result after the merge was a third of the merge's time."""
        for at in _leaf_paths(old, path):  # `path` itself too, unless a map with keys
            self.provenance.pop(at, None)

    def grown(self, path: DocPath) -> None:
        """An empty map (a leaf) got keys: it is a leaf no more."""
        self.provenance.pop(path, None)

    def _leaf(self, path: DocPath, value: Any, source_path: DocPath) -> None:
        assert self.layer is not None
        prov = self.layer.provenance(source_path)
        self.provenance[path] = prov
        if not isinstance(value, dict) or not value:
            if self.full_history:
                self.history.setdefault(path, []).append(Setting(prov, value))
            elif path in self.history:  # the writes after a deletion (see merge_layers)
                self.history[path].append(Setting(prov, value))


def _build_merger(recorder: _Recorder, lists: ListStrategies) -> Merger:
    def merge_patch(
        config: Merger, path: list[Any], base: dict[str, Any], nxt: dict[str, Any]
    ) -> dict[str, Any]:
        emptied, was_empty = False, not base
        for key, value in nxt.items():
            at = (*path, key)
            if value is None:
                if key in base:
                    recorder.deleted(at, base.pop(key))
                    emptied = True
            elif key in base:
                base[key] = config.value_strategy(list(at), base[key], value)
            else:
                base[key] = recorder.write(at, value, recorder.source(at))
        if emptied and not base and path:
            # A map whose last key this layer deleted is a leaf now, set by this layer.
            recorder.write(tuple(path), {}, recorder.source(tuple(path)))
        elif was_empty and base:
            recorder.grown(tuple(path))
        return base

    def merge_list(config: Merger, path: list[Any], base: list[Any], nxt: list[Any]) -> list[Any]:
        at = tuple(path)
        strategy = lists.for_path(at)
        if strategy == "append":
            merged = list(base)
            for i, item in enumerate(nxt):
                if not any(_json_equal(item, old) for old in merged):
                    merged.append(
                        recorder.write(
                            (*at, len(merged)), item, (*recorder.source(at), i), strip=False
                        )
                    )
            return merged
        if strategy.startswith("by-key:"):
            return _merge_by_key(config, at, base, nxt, strategy.partition(":")[2], recorder)
        recorder.replaced(at, base)
        return recorder.write(at, nxt, recorder.source(at))

    def replace(config: Merger, path: list[Any], base: Any, nxt: Any) -> Any:
        recorder.replaced(tuple(path), base)
        return recorder.write(tuple(path), nxt, recorder.source(tuple(path)))

    return Merger(
        type_strategies=[(dict, merge_patch), (list, merge_list)],
        fallback_strategies=[replace],
        type_conflict_strategies=[replace],
    )


def _merge_by_key(
    config: Merger, at: DocPath, base: list[Any], nxt: list[Any], key: str, recorder: _Recorder
) -> list[Any]:
    merged = list(base)
    index = {_identity(item, key): pos for pos, item in enumerate(merged)}
    for i, item in enumerate(nxt):
        ident = _identity(item, key)
        if ident is not None and ident in index:
            pos = index[ident]
            # The entry is at `i` in the layer but at `pos` in the result.
            with recorder.aliased((*at, pos), (*recorder.source(at), i)):
                merged[pos] = config.value_strategy([*at, pos], merged[pos], item)
        else:
            index.setdefault(ident, len(merged))
            merged.append(recorder.write((*at, len(merged)), item, (*recorder.source(at), i)))
    return merged


def _identity(item: Any, key: str) -> tuple[str, Any] | None:
    """What entries of a by-key list are matched by: the key field's value when it is
    a string, number or boolean, by its JSON type (`true` is not `1`); None (no match,
    the entry is appended) for an entry without one, or whose key is a map or list,
    which the schema reports where it checks that list's items."""
    value = item.get(key) if isinstance(item, dict) else None
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    return None


def _json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: unlike Python's, `true` is not `1`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def merge_layers(
    layers: Sequence[Layer], lists: ListStrategies | None = None, *, full_history: bool = True
) -> MergeResult:
    """Apply each layer, lowest precedence first, onto an empty document.

    Without `full_history` (a compile), `history` holds a path's writes only from its
    first deletion on: what blaming a deletion reads (its last entry is the same as in
    the full history), not every override, which only `explain` shows. Recording every
    write was half the merge's time (1.0 s of the C=1000 fleet's, 376,000 settings)."""
    recorder = _Recorder(full_history=full_history)
    merger = _build_merger(recorder, lists or ListStrategies())
    value: dict[str, Any] = {}
    for layer in layers:
        recorder.layer = layer
        # No copy of the layer: the strategies only read `nxt`, and every value they
        # take from it goes through `_Recorder.write`, which builds new maps and
        # lists; so the result shares nothing with the layers, which stay as they
        # were (tests/test_merge.py). A deepcopy here was 30% of the merge.
        value = merger.merge(value, dict(layer.document))
    return MergeResult(
        value=value,
        provenance=recorder.provenance,
        history=recorder.history,
        stack=tuple(layer.ref for layer in layers),
        layers=tuple(layers),
    )


def _leaf_paths(value: Any, path: DocPath = ()) -> Iterable[DocPath]:
    if isinstance(value, dict):
        if not value:
            yield path
        for k, v in value.items():
            yield from _leaf_paths(v, (*path, k))
    elif isinstance(value, list):
        yield path
        for i, v in enumerate(value):
            yield from _leaf_paths(v, (*path, i))
    else:
        yield path
