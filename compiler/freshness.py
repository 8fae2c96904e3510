"""Is a hook's snapshot as new as the table? A stale one would validate old layers
without a word (issue 16), so the hook compares the latest version of each layer.

The table is asked only briefly (one attempt, short timeouts, a deadline over all
reads): a commit must not hang on a network it may not have. When the table does
not answer in time, the hook says the snapshot could not be checked.
"""

from __future__ import annotations

import time
from pathlib import Path

import boto3
from botocore.config import Config

from compiler.errors import CompilerError, OutsideError
from compiler.model import layer_name_from_pk
from compiler.options import SourceOptions, open_project, open_store
from compiler.project import Project, resolve_endpoint
from compiler.sources import Pin
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.snapshot import SnapshotStore

DEADLINE_SECONDS = 5.0
_QUICK = Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=1, read_timeout=2)


def stale_snapshot_warning(source: SourceOptions) -> str | None:
    """For a hook reading a snapshot: a warning when the table holds newer versions, or
    could not be asked; None for a current snapshot or a run from the table."""
    project = open_project(source)
    store = open_store(source, project)
    if not isinstance(store, SnapshotStore):
        return None
    return snapshot_warning(
        store,
        project,
        endpoint_url=source.endpoint_url,
        table=source.table,
        shown_as=shown_path(store.root, project.root),
    )


def snapshot_warning(
    snapshot: SnapshotStore,
    project: Project,
    *,
    endpoint_url: str | None,
    table: str | None,
    shown_as: str,
) -> str | None:
    """A warning when the table has newer versions than the snapshot (or could not be
    asked); None when the snapshot is current."""
    name = table or project.table
    refresh = f"refresh it with `gitops-compiler snapshot --out {shown_as}` and commit it"
    try:
        newer = _newer_in_table(snapshot, project, endpoint_url, name)
    except OutsideError as err:
        reason = str(err).splitlines()[0]
        return (
            f"warning: could not check whether the snapshot {shown_as} is current "
            f"(table {name}: {reason}); if the table changed, {refresh}"
        )
    if not newer:
        return None
    return (
        f"warning: the snapshot {shown_as} is older than the table {name} "
        f"({', '.join(newer)}): this commit was validated against old layers; {refresh}"
    )


def _newer_in_table(
    snapshot: SnapshotStore, project: Project, endpoint_url: str | None, table: str
) -> list[str]:
    endpoint = resolve_endpoint(endpoint_url, project)
    client = boto3.client(
        "dynamodb", region_name=project.region, endpoint_url=endpoint, config=_QUICK
    )
    store = DynamoDBStore(table, region=project.region, endpoint_url=endpoint, client=client)
    started = time.monotonic()
    # The layers the snapshot holds: a snapshot may hold some clusters on purpose. Read
    # in batches (head items), as a compile reads them: a few calls, not one a layer;
    # the numbers alone (a head holds the layer's whole content).
    pks = sorted({v.pk for v in snapshot.items()})
    found = store.read_latest_numbers(pks)
    if time.monotonic() - started > DEADLINE_SECONDS:
        raise OutsideError(f"no answer for every layer within {DEADLINE_SECONDS:g} s")
    newer: list[str] = []
    for pk in pks:
        latest = found[pk]
        if isinstance(latest, CompilerError):
            raise OutsideError(latest.message)
        mine = snapshot.read(pk, Pin())
        if latest is not None and (mine is None or latest > mine.version):
            was = f"@{mine.version}" if mine is not None else " (none)"
            newer.append(f"{layer_name_from_pk(pk)}{was} → @{latest}")
    return newer


def shown_path(directory: Path, root: Path) -> str:
    """The snapshot directory as the user names it: relative to the project if inside."""
    try:
        return directory.relative_to(root).as_posix()
    except ValueError:
        return str(directory)
