"""The cluster listing's reading of a Scan: each cluster's latest version, from keys alone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from compiler.sources.items import is_version_key, parse_timestamp


class ClusterListing:
    """The latest version key of each cluster and whether it is a tombstone, as the pages
    of a Scan of the `cluster#` items arrive; with `as_of`, the latest then (a version's
    `created_at` says when, as `read` takes it)."""

    def __init__(self, as_of: datetime | None = None) -> None:
        self.as_of = as_of
        self._latest: dict[str, tuple[str, bool]] = {}

    def add(self, items: Iterable[Mapping[str, Any]]) -> None:
        for item in items:
            name, sk = item["pk"]["S"].partition("#")[2], item["sk"]["S"]
            if not is_version_key(sk) or sk <= self._latest.get(name, ("", False))[0]:
                continue
            if self.as_of is not None and _created_after(item, self.as_of):
                continue
            self._latest[name] = (sk, item.get("retired", {}).get("BOOL", False))

    def listed(self) -> dict[str, str]:
        """The clusters whose latest version is not a tombstone (a retired cluster is not
        listed; its history stays in the table), and that version's key."""
        return {name: sk for name, (sk, retired) in self._latest.items() if not retired}


def _created_after(item: Mapping[str, Any], when: datetime) -> bool:
    """Whether a listed version was written after `when` (a missing or malformed time
    fails the listing, naming the item, as reading that version would)."""
    where = f"item pk={item['pk']['S']!r} sk={item['sk']['S']!r}: field created_at"
    return parse_timestamp(item.get("created_at", {}).get("S", ""), where) > when
