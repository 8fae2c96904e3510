"""A read-only config table kept as files: `examples/` and hook snapshots.

Layout: `<dir>/defaults.yaml`, `<dir>/env/<env>.yaml`, `<dir>/cluster/<name>.yaml`,
each holding `versions:`, a list of items as they stand in the table (without
pk/sk, which the path gives). Provenance stays `dynamodb:pk/sk@version`, as the
items are the table's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from compiler.errors import InputError, UsageError
from compiler.model import (
    CLUSTER_PK_PREFIX,
    LayerVersion,
    layer_name_from_pk,
    pk_from_layer_name,
    sort_key_for,
)
from compiler.sources import ConfigStore, Pin
from compiler.sources.items import layer_version_from_item, parse_timestamp
from compiler.yamlio import load_layer_yaml


class SnapshotStore:
    source_name = "dynamodb"
    # Files a person may edit in place: a version is known by its content.
    versions_immutable = False

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise UsageError(f"snapshot directory {root} does not exist")
        self.root = root
        self._layers: dict[str, list[LayerVersion]] = {}
        for path in sorted(root.rglob("*.yaml")):
            pk = pk_from_layer_name(path.relative_to(root).with_suffix("").as_posix())
            self._layers[pk] = _read_file(path, pk)

    def read(self, pk: str, pin: Pin) -> LayerVersion | None:
        versions = self._layers.get(pk, [])
        name = layer_name_from_pk(pk)
        if name in pin.versions:
            return next((v for v in versions if v.version == pin.versions[name]), None)
        for version in versions:
            if pin.as_of is None or parse_timestamp(version.created_at, pk) <= pin.as_of:
                return version
        return None

    def history(self, pk: str) -> list[LayerVersion]:
        return list(self._layers.get(pk, []))

    def list_clusters(
        self, as_of: datetime | None = None, *, known: Mapping[str, int] | None = None
    ) -> list[str]:
        listed = []
        for pk, versions in self._layers.items():
            if not pk.startswith(CLUSTER_PK_PREFIX):
                continue
            latest = self.read(pk, Pin(as_of=as_of)) if as_of is not None else versions[0]
            if latest is not None and not latest.retired:
                listed.append(pk.partition("#")[2])
        return sorted(listed)

    def put(
        self,
        pk: str,
        config: Mapping[str, Any],
        *,
        cluster: Mapping[str, Any] | None,
        author: str,
        comment: str,
        created_at: str | None = None,
        version: int | None = None,
        retired: bool = False,
    ) -> LayerVersion:
        raise UsageError(f"the snapshot {self.root} is read-only; write to the DynamoDB table")

    def items(self) -> list[LayerVersion]:
        """Every version of every layer, oldest first per layer: what seeding writes."""
        return [v for pk in sorted(self._layers) for v in reversed(self._layers[pk])]


def _read_file(path: Path, pk: str) -> list[LayerVersion]:
    doc = load_layer_yaml(path.read_bytes(), str(path)).value
    raw_versions = doc.get("versions") if isinstance(doc, dict) else None
    if not isinstance(raw_versions, list) or not raw_versions:
        raise InputError(f"{path}: expected `versions:`, a non-empty list of items")
    versions = []
    for raw in raw_versions:
        if not isinstance(raw, dict):
            raise InputError(f"{path}: every entry of `versions` must be a map")
        number = raw.get("version")
        sk = sort_key_for(number) if isinstance(number, int) else "?"
        try:
            versions.append(layer_version_from_item({"pk": pk, "sk": sk, **raw}))
        except InputError as err:
            raise InputError(f"{path}: {err.message}") from None
    numbers = [v.version for v in versions]
    twice = sorted(n for n, count in Counter(numbers).items() if count > 1)
    if twice:
        sk = sort_key_for(twice[0])
        raise InputError(
            f"{path}: two items claim version {twice[0]} (pk={pk!r} sk={sk!r}); "
            "a version is written once"
        )
    return sorted(versions, key=lambda v: v.version, reverse=True)


def seed(store: ConfigStore, snapshot: SnapshotStore) -> tuple[int, int]:
    """Write every version of a snapshot into a store; (written, already there).

    Idempotent: a version the store holds with the same content is skipped; one
    with different content is an error, since versions are never overwritten.
    """
    _numbered_from_one(snapshot.items())  # before any write: nothing half-seeded
    written = skipped = 0
    for item in snapshot.items():
        existing = store.read(item.pk, Pin(versions={item.layer_name: item.version}))
        if existing is not None:
            if (existing.config, existing.cluster, existing.retired) != (
                item.config,
                item.cluster,
                item.retired,
            ):
                raise InputError(
                    f"{item.pk} version {item.version} differs in the table; "
                    "versions are never overwritten"
                )
            skipped += 1
            continue
        store.put(
            item.pk,
            item.config,
            cluster=item.cluster,
            author=item.author,
            comment=item.comment,
            created_at=item.created_at,
            version=item.version,
            retired=item.retired,
        )
        written += 1
    return written, skipped


def _numbered_from_one(items: Iterable[LayerVersion]) -> None:
    """The write protocol numbers a layer's versions 1, 2, 3 without gaps (README "The
    config table"): the listing finds a cluster by its version 1, and the stale-head
    check looks at the version after the head's. A snapshot seeded into a table keeps
    to it, or is refused whole, naming the layer and the numbers missing."""
    numbers: dict[str, set[int]] = {}
    for item in items:
        numbers.setdefault(item.pk, set()).add(item.version)
    for pk, present in sorted(numbers.items()):
        missing = sorted(set(range(1, max(present) + 1)) - present)
        if missing:
            shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
            raise InputError(
                f"snapshot layer {layer_name_from_pk(pk)} (pk={pk!r}): version(s) {shown} "
                "missing; a table's versions are numbered from 1 without gaps (the listing "
                "finds a cluster by its version 1), so nothing was seeded"
            )


def snapshot_files(store: ConfigStore, pks: Iterable[str]) -> tuple[dict[str, bytes], int]:
    """Every version of the given layers, as `examples/` and `snapshot` spell them: one
    file a layer (`env/prod.yaml`), oldest version first; layers without versions left
    out. Also the number of versions written."""
    from compiler.yamlio import dump_yaml

    files: dict[str, bytes] = {}
    versions = 0
    for pk in sorted(pks):
        history = store.history(pk)  # newest first; optional layers may have none
        if history:
            items = [snapshot_item(v) for v in reversed(history)]
            files[f"{layer_name_from_pk(pk)}.yaml"] = dump_yaml({"versions": items})
            versions += len(items)
    return files, versions


def snapshot_item(version: LayerVersion) -> dict[str, Any]:
    """One version as a snapshot spells it: the item without pk/sk (the path gives them)."""
    item: dict[str, Any] = {
        "version": version.version,
        "created_at": version.created_at,
        "author": version.author,
        "comment": version.comment,
        "config": version.config,
    }
    if version.cluster is not None:
        item["cluster"] = version.cluster
    if version.retired:
        item["retired"] = True
    if version.proposal:
        item.update(proposal=version.proposal, approved_by=version.approved_by)
    return item
