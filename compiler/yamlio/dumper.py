"""Deterministic dumping: the same bytes on any machine, and every string quoted that a
YAML 1.1 or 1.2 reader, or Go's yaml.v2 (kubectl, Argo CD), would read as something else.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from collections.abc import Mapping
from typing import Any

import yaml

from compiler.yamlio import tags

try:
    from yaml import CSafeDumper as _BaseDumper
except ImportError:  # no libyaml: the pure class behaves the same, only slower
    from yaml import SafeDumper as _BaseDumper  # type: ignore[assignment]

# Strings that a reader other than PyYAML takes for a number or a boolean:
# - Go's yaml.v2 (kubectl, Argo CD via sigs.k8s.io/yaml) drops every `_` and then
#   tries strconv.ParseInt(s, 0) (0x1f, 0o755, 0b1, 08) and YAML 1.2 floats;
# - YAML 1.2 core floats such as 1e3, 1E-5, .5e1, which YAML 1.1 reads as strings;
# - the YAML 1.1 booleans y/Y/n/N, which yaml.v2 honours and PyYAML does not.
GO_OR_YAML12_NUMBER = re.compile(
    r"[-+]?0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)"
    r"|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
)
SINGLE_LETTER_BOOL = frozenset({"y", "Y", "n", "N"})


class _Dumper(_BaseDumper):
    """Block style, no aliases, quoting for every reader of the output."""

    def ignore_aliases(self, data: Any) -> bool:
        # A list shared by two objects after a merge must be written twice, never as
        # &id001/*id001: kubectl and reviewers expect plain manifests.
        return True

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # The emitter writes a string plain only when this says "str" for it; saying
        # "int", "float" or "bool" makes it quote the string.
        tag = super().resolve(kind, value, implicit)
        if kind is yaml.ScalarNode and implicit[0] and tag == tags.STR:
            if GO_OR_YAML12_NUMBER.fullmatch(value.replace("_", "")):
                return tags.FLOAT
            if value in SINGLE_LETTER_BOOL or value.lower() in tags.YAML11_BOOL_WORDS:
                # PyYAML resolves yes/Yes/YES but not yEs; the strict loader refuses all
                # cases of them unquoted, so the dumper quotes all cases.
                return tags.BOOL
        return tag


def _represent_str(dumper: _Dumper, data: str) -> yaml.ScalarNode:
    # Multi-line text (scripts, certificates) reads best as a literal block; the
    # emitter falls back to quoting where a block cannot hold the text exactly.
    return dumper.represent_scalar(tags.STR, data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _represent_str)


def _dump(data: Any) -> bytes:
    text = yaml.dump(
        data,
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,  # the callers order keys; PyYAML's sort hides TypeErrors
        allow_unicode=True,
        width=2**31 - 1,  # never fold long strings
        indent=2,
        line_break="\n",
    )
    return text.encode("utf-8")


def _sorted(obj: Any) -> Any:
    """A copy with every mapping's keys sorted; also breaks any shared references."""
    if isinstance(obj, Mapping):
        return {key: _sorted(obj[key]) for key in sorted(obj)}
    if isinstance(obj, (list, tuple)):
        return [_sorted(item) for item in obj]
    return obj


def _ordered(obj: Mapping[str, Any], first: tuple[str, ...]) -> dict[str, Any]:
    head = [key for key in first if key in obj]
    rest = sorted(key for key in obj if key not in first)
    return {key: _sorted(obj[key]) for key in (*head, *rest)}


# Most objects of a fleet repeat from cluster to cluster (a namespace's LimitRange,
# Role and default-deny policy come from the same layers everywhere; kustomize adds
# the cluster labels later), so each distinct object is serialised once. The key is
# a digest of the object's pickle: equal pickles mean equal types, values and key
# order, hence equal YAML; an equal object pickled differently is only a miss. Only
# the digest is kept (a pickle is as large as its object), and no YAML past
# _CACHED_BYTES (a large ConfigMap seldom repeats): the caches stay small whatever
# the objects.
_MANIFEST_CACHE: dict[bytes, bytes] = {}
_CACHE_ENTRIES = 20_000  # per cache, emptied when full
_CACHED_BYTES = 16_384
# An object that misses is serialised one top-level key at a time, each kept the same
# way: a block mapping's top-level entries are written one after the other, each the
# same whatever its neighbours, so their YAML joined is the whole object's (but for
# the end marker, below; tests/test_yamlio.py compares the two on random objects). What
# differs between clusters is mostly one part: each cluster's Kustomization has its own
# labels but the same resources (0.42 ms of its 0.45 ms at C=1000; 1,000 of them).
_PART_CACHE: dict[bytes, bytes] = {}


def dump_manifest(obj: Mapping[str, Any]) -> bytes:
    """One Kubernetes object: apiVersion, kind, metadata (name, namespace first), rest sorted."""
    key = value_digest(obj)
    found = _MANIFEST_CACHE.get(key) if key is not None else None
    if found is None:
        found = _dump_manifest(obj, parts=_PART_CACHE)
        if key is not None:
            _keep(_MANIFEST_CACHE, key, found)
    return found


def value_digest(value: Any) -> bytes | None:
    """16 bytes that only an equal value (types and key order included) pickles to; None
    for what pickle cannot hold. For caches keyed by content."""
    try:
        return hashlib.blake2b(pickle.dumps(value, protocol=5), digest_size=16).digest()
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
        return None


def _keep(cache: dict[bytes, bytes], key: bytes, data: bytes) -> None:
    if len(data) <= _CACHED_BYTES:
        if len(cache) >= _CACHE_ENTRIES:
            cache.clear()
        cache[key] = data


def _dump_manifest(obj: Mapping[str, Any], parts: dict[bytes, bytes] | None = None) -> bytes:
    out = _ordered(obj, ("apiVersion", "kind", "metadata"))
    if isinstance(obj.get("metadata"), Mapping):
        out["metadata"] = _ordered(obj["metadata"], ("name", "namespace"))
    if parts is None or not out:  # `{}` is written as a flow mapping: no parts to join
        return _dump(out)
    written = []
    for name, value in out.items():
        key = value_digest((name, value))
        part = parts.get(key) if key is not None else None
        if part is None:
            part = _dump({name: value})
            if key is not None:
                _keep(parts, key, part)
        written.append(part)
    # A text kept with its trailing newlines (`|+`) that ends a document is followed by
    # the end marker `...`: within the object it is not, so such a part cannot be joined.
    if any(part.endswith(b"\n...\n") for part in written[:-1]):
        return _dump(out)
    return b"".join(written)


def dump_yaml(obj: Any) -> bytes:
    """Any plain data as YAML, every mapping's keys sorted."""
    return _dump(_sorted(obj))


def dump_json(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, two-space indent, UTF-8, trailing newline."""
    text = json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")
