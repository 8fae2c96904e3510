"""Sources of layer documents: the versioned config table and the overlay files.

A store of versioned layers implements `ConfigStore`; the DynamoDB table and a
snapshot directory (such as `examples/`) are two implementations, so tests and
hooks can swap one for the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from compiler.model import LayerVersion


@dataclass(frozen=True)
class Pin:
    """Which version of each layer to read: the latest, as of a time, or exact versions."""

    as_of: datetime | None = None
    versions: Mapping[str, int] = field(default_factory=dict)  # layer name -> version


class ConfigStore(Protocol):
    """A table of versioned layer items keyed by pk (`env#prod`) and sk (`v#0000000042`)."""

    source_name: str

    def read(self, pk: str, pin: Pin) -> LayerVersion | None:
        """The version `pin` selects (latest by default), or None when there is none."""
        ...

    def history(self, pk: str) -> list[LayerVersion]:
        """Every version of a layer, newest first."""
        ...

    def list_clusters(
        self, as_of: datetime | None = None, *, known: Mapping[str, int] | None = None
    ) -> list[str]:
        """The names of all clusters whose latest record is not a tombstone, sorted; with
        `as_of`, of those whose latest record then was not (the fleet as it was).
        `known`: the clusters of the caller's output tree and their record's version
        there (0: not known), listed by consistent reads whatever an eventually
        consistent index says (sources/listing.py)."""
        ...

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
        """Write a new version (never overwrite one); return what was written."""
        ...
