"""`config put`, `config history`, `config seed` and `table create`: the table's edge."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from compiler.errors import EXIT_OK, InputError, UsageError
from compiler.layers import StackLoader
from compiler.model import CLUSTER_PK_PREFIX, LayerVersion, pk_from_layer_name
from compiler.options import (
    SourceOptions,
    check_layer_name,
    current_author,
    open_project,
    open_store,
)
from compiler.policy.schema import ConfigSchema
from compiler.sources import ConfigStore, Pin
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.snapshot import SnapshotStore, seed
from compiler.yamlio import load_layer_json, load_layer_yaml

MAX_ITEM_BYTES = 400 * 1024  # DynamoDB's item size limit


def put_command(
    *, source: SourceOptions, layer: str, file: Path, author: str | None, comment: str
) -> int:
    pk = pk_from_layer_name(check_layer_name(layer))
    project = open_project(source)
    config, facts = _read_put_file(file)
    size = file.stat().st_size
    if size > MAX_ITEM_BYTES:
        raise InputError(f"{file}: {size} bytes; a DynamoDB item holds at most {MAX_ITEM_BYTES}")
    # A layer is a patch: check its keys and types, not completeness (nulls delete).
    patch_errors = ConfigSchema(project.policies_dir).check_patch(config)
    if patch_errors:
        raise InputError(f"{file}: " + "; ".join(patch_errors[:5]))
    store = open_store(source, project)
    if pk.startswith(CLUSTER_PK_PREFIX):
        facts = facts if facts is not None else _previous_facts(store, pk, file)
        record = LayerVersion(pk=pk, sk="", version=0, config={}, created_at="", cluster=facts)
        try:
            StackLoader(store, project, Pin()).facts(record)  # same checks as a compile
        except InputError as err:
            raise InputError(f"{file}: {err.message}") from None
    elif facts is not None:
        raise InputError(f"{file}: `cluster:` facts belong to cluster/<name> layers only")
    written = store.put(
        pk, config, cluster=facts, author=author or current_author(), comment=comment
    )
    print(f"wrote {layer} version {written.version} ({written.pk}/{written.sk})")
    return EXIT_OK


def _read_put_file(file: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A layer document, or `{cluster: facts, config: document}` for a cluster record."""
    try:
        data = file.read_bytes()
    except OSError as err:
        raise UsageError(f"{file}: cannot read: {err.strerror}") from None
    value = (
        load_layer_json(data, str(file))
        if file.suffix == ".json"
        else load_layer_yaml(data, str(file)).value
    )
    if not isinstance(value, dict):
        raise InputError(f"{file}:1: a layer document must be a map")
    if "cluster" in value:
        if set(value) - {"cluster", "config"}:
            raise InputError(f"{file}: with `cluster:` facts, the document goes under `config:`")
        return dict(value.get("config") or {}), dict(value["cluster"])
    return value, None


def _previous_facts(store: ConfigStore, pk: str, file: Path) -> dict[str, Any]:
    latest = store.read(pk, Pin())
    if latest is None or latest.cluster is None:
        raise InputError(
            f"{file}: the first version of {pk} needs the cluster's facts: "
            "write `cluster: {name, env, server, region}` and put the layer under `config:`"
        )
    return dict(latest.cluster)


def history_command(*, source: SourceOptions, layer: str) -> int:
    pk = pk_from_layer_name(check_layer_name(layer))
    project = open_project(source)
    versions = open_store(source, project).history(pk)
    if not versions:
        print(f"{layer}: no versions")
        return EXIT_OK
    print(f"{'VERSION':>7}  {'CREATED':20}  {'AUTHOR':16}  COMMENT")
    for v in versions:
        print(f"{v.version:>7}  {v.created_at:20}  {v.author[:16]:16}  {v.comment}")
    return EXIT_OK


def seed_command(*, source: SourceOptions, directory: Path) -> int:
    """Write every version of a snapshot directory into the table; existing ones are kept."""
    project = open_project(source)
    store = open_store(source, project)
    if not directory.is_absolute():  # as --source snapshot:DIR: relative to the project
        directory = source.project_dir / directory
    written, skipped = seed(store, SnapshotStore(directory))
    print(f"seeded from {directory}: {written} version(s) written, {skipped} already there")
    return EXIT_OK


def create_table_command(*, source: SourceOptions) -> int:
    project = open_project(source)
    store = open_store(source, project)
    if not isinstance(store, DynamoDBStore):
        raise UsageError("table create works on --source dynamodb")
    created = store.create_table()
    state = "created" if created else "exists already"
    print(f"table {store.table} {state}", file=sys.stdout)
    return EXIT_OK
