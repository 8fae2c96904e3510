"""`--shard i/n`: a stable partition of the fleet, so n machines compile it in parallel.

A cluster belongs to shard `sha256(name) mod n` (numbered from 1, as
`--shard 1/4` reads): the same on any machine and in any run, independent of
the listing's order, so the shards never overlap and their union is the fleet.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from compiler.errors import UsageError

_SPEC = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class Shard:
    index: int  # 1..count
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = _SPEC.match(text.strip())
        if not match or not 1 <= int(match[1]) <= int(match[2]):
            raise UsageError(f"--shard {text!r}: use i/n with 1 <= i <= n, e.g. --shard 2/4")
        return cls(int(match[1]), int(match[2]))

    def holds(self, cluster: str) -> bool:
        digest = hashlib.sha256(cluster.encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def select(self, clusters: Iterable[str]) -> list[str]:
        return [c for c in clusters if self.holds(c)]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
