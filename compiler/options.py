"""What every command needs: the project, a store and the pin, from plain options.

The CLI turns its arguments into these frozen objects; nothing below it sees argparse.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.errors import UsageError
from compiler.project import Project, load_project, local_endpoint, resolve_endpoint
from compiler.shard import Shard
from compiler.sources import ConfigStore, Pin
from compiler.sources.items import parse_timestamp

if TYPE_CHECKING:
    from compiler.sources.dynamodb import DynamoDBStore

DEFAULT_SNAPSHOT = ".gitops/snapshot"  # `gitops-compiler snapshot` writes here by default
_LAYER = re.compile(r"^(defaults|(env|cluster)/[a-z0-9]([-a-z0-9]*[a-z0-9])?)$")


@dataclass(frozen=True)
class SourceOptions:
    project_dir: Path
    source: str = "dynamodb"  # or "snapshot:<dir>"
    endpoint_url: str | None = None
    table: str | None = None
    # Keep and reuse cue's verdicts in the cache dir (off: --no-cache, GITOPS_NO_CACHE=1).
    cache: bool = True


@dataclass(frozen=True)
class Selection:
    clusters: Sequence[str] = ()
    all_clusters: bool = False
    as_of: str | None = None
    pins: Sequence[str] = field(default_factory=tuple)  # "cluster/dev-k3s=3"
    shard: Shard | None = None
    # Versions already known as a Pin (watch, rollback --versions): used as it is,
    # instead of `as_of` and `pins`.
    pin: Pin | None = None

    @property
    def whole_fleet(self) -> bool:
        """Every cluster, unsharded: the run owns all of clusters/ (stale ones go)."""
        return self.all_clusters and self.shard is None


@dataclass(frozen=True)
class Destination:
    """Where a publication goes: the Argo CD repository, its branches and the forge."""

    repo: str  # any git URL or a local path
    base: str = "main"
    branch: str | None = None  # None: one branch per scope (`scope_branch`)
    forge: str = "auto"  # github, gitlab, none (push the branch only) or auto (`forge.select`)
    forge_repo: str | None = None  # OWNER/NAME or GROUP/SUB/NAME; None: from `repo`
    labels: Sequence[str] = ("gitops-compiler",)
    dry_run: bool = False
    rollback: bool = False  # a return to older versions: its own branch and title
    reverts: Sequence[str] = ()  # a rollback's reverts in the table, for its title and body


def open_project(options: SourceOptions) -> Project:
    return load_project(options.project_dir)


def open_store(options: SourceOptions, project: Project) -> ConfigStore:
    if options.source == "snapshot" or options.source.startswith("snapshot:"):
        from compiler.sources.snapshot import SnapshotStore

        # Bare `snapshot`: where `gitops-compiler snapshot` writes by default.
        directory = Path(options.source.partition(":")[2] or DEFAULT_SNAPSHOT)
        if not directory.is_absolute():
            directory = options.project_dir / directory
        return SnapshotStore(directory)
    if options.source != "dynamodb":
        raise UsageError(
            f"--source is dynamodb, snapshot (= snapshot:{DEFAULT_SNAPSHOT}) or snapshot:<dir>, "
            f"not {options.source!r}"
        )
    return dynamodb_store(project, options.endpoint_url, options.table)


def dynamodb_store(
    project: Project, endpoint_url: str | None = None, table: str | None = None
) -> DynamoDBStore:
    """The project's table, at the endpoint `resolve_endpoint` finds."""
    from compiler.localdb import LOCAL_CREDENTIALS
    from compiler.sources.dynamodb import DynamoDBStore

    endpoint = resolve_endpoint(endpoint_url, project)
    if endpoint is not None and endpoint == local_endpoint(project.root):
        # The project's own local server (`local up`): any credentials do, and none
        # should be needed (or real ones picked up) for it.
        for key, value in LOCAL_CREDENTIALS.items():
            os.environ.setdefault(key, value)
    return DynamoDBStore(table or project.table, region=project.region, endpoint_url=endpoint)


def current_author() -> str:
    """Who a table write is recorded as: $GITOPS_AUTHOR, else the user name."""
    return os.environ.get("GITOPS_AUTHOR") or getpass.getuser()


def check_layer_name(name: str) -> str:
    if not _LAYER.match(name):
        raise UsageError(f"layer {name!r}: use defaults, env/<env> or cluster/<name>")
    return name


def build_pin(selection: Selection) -> Pin:
    if selection.pin is not None:
        return selection.pin
    as_of: datetime | None = None
    if selection.as_of:
        try:
            as_of = parse_timestamp(selection.as_of, "--as-of")
        except Exception as err:
            raise UsageError(str(err)) from None
    return Pin(as_of=as_of, versions=_pinned_versions(selection.pins, "--pin"))


def _pinned_versions(pins: Sequence[str], option: str) -> dict[str, int]:
    """`LAYER=VERSION` each, every layer once: two versions of one layer is a slip to
    name, not one to settle silently by the order of the options."""
    versions: dict[str, int] = {}
    for pin in pins:
        layer, sep, number = pin.partition("=")
        if not sep or not number.isdigit() or int(number) < 1:
            raise UsageError(f"{option} {pin!r}: use LAYER=VERSION, e.g. env/prod=3")
        name = check_layer_name(layer)
        if name in versions and versions[name] != int(number):
            raise UsageError(
                f"{option} {pin!r}: {name} is given version {versions[name]} already; "
                "name each layer once"
            )
        versions[name] = int(number)
    return versions


def parse_versions(text: str) -> Mapping[str, int]:
    """`defaults=3,env/prod=2` (the form `rollback --versions` takes)."""
    return _pinned_versions([p for p in text.split(",") if p], "--versions")
