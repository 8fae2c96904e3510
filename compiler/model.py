"""Plain data passed between the pipeline stages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# A path into a document: map keys and list indexes, outermost first.
DocPath = tuple[str | int, ...]


def path_order(path: DocPath) -> tuple[tuple[int, Any], ...]:
    """A sort key for paths that mix keys and list indexes (an index sorts before a key)."""
    return tuple((0, p) if isinstance(p, int) else (1, p) for p in path)


def format_path(path: DocPath) -> str:
    """`("namespaces", "dev", "users", 0)` -> `namespaces.dev.users[0]`.

    A key holding characters that a terminal hides or reorders (controls, bidi
    overrides, zero-width spaces) is shown escaped: a message must not disguise it.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = shown_plainly(str(part))
            out += f".{key}" if out else key
    return out or "(root)"


def shown_plainly(text: str) -> str:
    """`text` as it is when every character prints; else escaped (`\\n`, `\\x1b`,
    `\\u202e`): a line break, a terminal escape or a bidi override in a value someone
    else wrote must not forge or disguise what is printed around it."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


@dataclass(frozen=True, order=True)
class LayerRef:
    """Where one layer document came from; printed in every message about it."""

    layer: str  # stack name: "defaults", "env/prod", "overlays/prod", "cluster/dev-k3s"
    source: str  # "dynamodb", "snapshot" or "files"
    key: str | None = None  # "pk/sk" of a DynamoDB item
    version: int | None = None
    file: str | None = None  # path relative to the project root, for files

    def describe(self, line: int | None = None) -> str:
        if self.file is not None:
            return f"{self.file}:{line}" if line else self.file
        where = f"{self.source}:{self.key}" if self.key else f"{self.source}:{self.layer}"
        return f"{where}@{self.version}" if self.version is not None else where


@dataclass(frozen=True)
class Provenance:
    """Which layer set a value, and on which line where the layer is a file."""

    ref: LayerRef
    line: int | None = None

    def describe(self) -> str:
        return self.ref.describe(self.line)


@dataclass(frozen=True)
class Layer:
    """One layer document of the stack, ready to merge."""

    ref: LayerRef
    document: Mapping[str, Any]
    lines: Mapping[DocPath, int] = field(default_factory=dict)
    # The line of each map entry's key, where a file gives it (yamlio.LoadedDocument).
    key_lines: Mapping[DocPath, int] = field(default_factory=dict)
    # What config-lock.json records: version facts or a file's content hash.
    lock: Mapping[str, Any] = field(default_factory=dict)

    def provenance(self, path: DocPath) -> Provenance:
        line = None
        if self.lines:
            # The nearest recorded node: a value's own line, else its parent's.
            probe = path
            while probe and probe not in self.lines:
                probe = probe[:-1]
            line = self.lines.get(probe)
        return Provenance(self.ref, line)

    def key_provenance(self, path: DocPath) -> Provenance | None:
        """Where this layer writes the key at `path` (its line, not its value's), or None
        when the layer does not set it (absent, or a `null` that deletes it)."""
        value: Any = self.document
        for part in path:
            if isinstance(part, int):
                ok = isinstance(value, list) and 0 <= part < len(value)
            else:
                ok = isinstance(value, Mapping) and part in value
            if not ok:
                return None
            value = value[part]
        if value is None:
            return None
        line = self.key_lines.get(path)
        return Provenance(self.ref, line) if line else self.provenance(path)


@dataclass(frozen=True)
class ClusterFacts:
    """The cluster's own facts (the `cluster` attribute of its record)."""

    name: str
    env: str
    server: str
    region: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    # The apiVersion of its Calico objects; "" for the default (compiler.render.calico).
    calico_api: str = ""


@dataclass(frozen=True)
class LayerVersion:
    """One versioned item of the config table, converted to plain data at the edge."""

    pk: str
    sk: str
    version: int
    config: Mapping[str, Any]
    created_at: str
    author: str = ""
    comment: str = ""
    cluster: Mapping[str, Any] | None = None
    # A tombstone (`config retire`): the cluster leaves the tree; the history keeps it.
    retired: bool = False
    # Under `review: required`, the proposal this version was approved from and who
    # approved it (the author is the proposer); 0 and "" for a version written directly.
    proposal: int = 0
    approved_by: str = ""
    # A version not written yet (`config put`'s gate compiles it): the file it comes
    # from and each path's line there, so a finding names `file:line`, not `@0`.
    file: str | None = field(default=None, compare=False)
    lines: Mapping[DocPath, int] = field(default_factory=dict, compare=False, hash=False)
    key_lines: Mapping[DocPath, int] = field(default_factory=dict, compare=False, hash=False)

    @property
    def layer_name(self) -> str:
        return layer_name_from_pk(self.pk)


CLUSTER_PK_PREFIX = "cluster#"  # every cluster record's pk starts so (DESIGN.md "DynamoDB table")


def cluster_pk(name: str) -> str:
    """The table key of a cluster's record: `dev-k3s` -> `cluster#dev-k3s`."""
    return f"{CLUSTER_PK_PREFIX}{name}"


def pk_from_layer_name(name: str) -> str:
    """`env/prod` -> `env#prod`; `defaults` stays `defaults`."""
    kind, sep, rest = name.partition("/")
    return f"{kind}#{rest}" if sep else kind


def layer_name_from_pk(pk: str) -> str:
    kind, sep, rest = pk.partition("#")
    return f"{kind}/{rest}" if sep else kind


def sort_key_for(version: int) -> str:
    """Zero-padded so that the table's sort order is the version order."""
    return f"v#{version:010d}"
