"""Records of what a compile wrote for each cluster, so that an unchanged cluster is
not compiled again into the same output.

A cluster's fingerprint is a hash of everything its files and its findings depend
on: the compiler itself (every file of the package, the Python version and the
versions of the libraries that shape bytes), the project (its file's bytes and its
parsed settings), every file of the policies and definitions directories (schemas,
CUE rules, waivers, vendored CRDs), the cue binary, and the cluster's own input (its
facts and every layer it reads, by content, lines and lock: `--pin` and `--as-of`
change content, so they change the key).

After a successful compile, each compiled cluster's record is kept in the cache dir
under the output directory's path: the fingerprint, every file and directory the
compile wrote for it (size, mtime, inode and content hash of each file), its own
findings before the waivers judged them (warnings, waived ones) and the bytes of its
small JSON files (the ApplicationSets' generator files, which fleet-wide checks read).

Next time, a cluster whose fingerprint equals its record's, and whose directory on
disk holds exactly the recorded files and directories, is kept as it is: not merged,
validated, rendered, serialised or written. A file whose stat differs, or whose mtime
is too close to the record's time to tell an edit from the write (git's "racily
clean"), is compared by hash. A record that does not parse, names another output,
cluster or format, is ignored: the cluster is compiled. The cache only saves time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import os
import stat
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import compiler
from compiler import cachedir
from compiler.argocd.applications import Application
from compiler.layers import ClusterInput
from compiler.layout import CLUSTERS_DIR, cluster_dir
from compiler.model import ClusterFacts, Layer
from compiler.policy import Violation
from compiler.project import PROJECT_FILE, Project

_FORMAT = "tree-records/2"  # bump when a record's meaning changes
# A file modified this close to (or after) its record's time may have kept the mtime
# the record holds (timestamps are as coarse as a kernel tick): compare its bytes.
_RACY_NS = 200_000_000
# Libraries whose version can change the bytes or the findings of a compile.
_LIBRARIES = ("PyYAML", "jsonschema", "fastjsonschema", "deepmerge", "kubernetes-validate")
_APPLICATION_FIELDS = tuple(f.name for f in dataclasses.fields(Application))
_ORIGIN = _APPLICATION_FIELDS.index("origin")
_VIOLATION_FIELDS = ("cluster", "path", "rule", "message", "provenance", "severity", "waiver")


@dataclass(frozen=True)
class KeptCluster:
    """A cluster left as the last compile wrote it."""

    name: str
    objects: int
    files: Mapping[str, str]  # path from the tree's root -> sha256 hex of its bytes
    generator_files: Mapping[str, bytes]  # its .json files, for the fleet-wide checks
    findings: tuple[Violation, ...]  # its own findings, before the waivers judged them
    # The Applications its generator files made (those without a finding then).
    applications: tuple[Application, ...] = ()


class TreeRecords:
    """The records of one output directory, for one run."""

    def __init__(self, root: Path, out: Path) -> None:
        self.out = out.absolute()
        self.directory = root / "tree-records" / _digest(str(self.out).encode())
        self.fingerprints: dict[str, str] = {}  # empty: the run kept no record (no cache)
        # Records read and their files checked ahead (`check_ahead`), by cluster name.
        self._ahead: dict[str, dict[str, Any]] = {}
        self._checking: threading.Thread | None = None
        self._identity: dict[str, tuple[ClusterFacts, int]] = {}  # fingerprinted by version
        # Each layer's digest, once a run however the clusters come (one at a time as
        # they are read); the layer is held so that its id names no other meanwhile.
        self._layer_digests: dict[tuple[int, bool], tuple[Any, bytes]] = {}

    def check_ahead(self) -> None:
        """Read every record of this output and check its files on disk, in a thread of
        its own, while the caller waits for the table (a whole-fleet listing on the local
        server takes as long as these checks); `kept` uses what it found."""
        self._checking = threading.Thread(target=self._check_all, name="tree-records", daemon=True)
        self._checking.start()

    def _check_all(self) -> None:
        try:
            self._check_each()
        except Exception:  # the cache only saves time: what is left unchecked is compiled
            return

    def _check_each(self) -> None:
        if not self._tree_dirs():
            return
        paths: list[Path] = []
        with contextlib.suppress(OSError), os.scandir(self.directory) as entries:
            paths = [Path(e.path) for e in entries if e.name.endswith(".json")]
        for path in paths:
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError, AttributeError):
                entry = self._intact_entry(json.loads(path.read_bytes()))
                if entry is not None and self._path(entry["cluster"]) == path:
                    self._ahead[entry["cluster"]] = entry

    def fingerprint(
        self, inputs: Sequence[ClusterInput], base: str, *, by_version: bool = False
    ) -> None:
        """Compute each cluster's fingerprint (layers shared between clusters, once);
        `base` is `run_base`'s. With `by_version` (a store whose versions are never
        rewritten: DynamoDB's conditional puts), a table layer counts by its identity
        (pk, sk, version), so versions read without content (heads.py) give the
        fingerprint of the same versions read whole; and the record keeps the cluster's
        facts and its record's version (`recorded_facts`)."""
        seen = self._layer_digests
        for cluster in inputs:
            if by_version:
                own = f"cluster/{cluster.facts.name}"
                version = next((x.ref.version for x in cluster.layers if x.ref.layer == own), None)
                if version is not None:
                    self._identity[cluster.facts.name] = (cluster.facts, version)
            digest = hashlib.sha256(base.encode())
            # Sorted: a map's keys (labels) may come from the table in any order.
            facts = json.dumps(dataclasses.asdict(cluster.facts), sort_keys=True)
            digest.update(_framed(facts.encode()))
            for layer in cluster.layers:
                by_id = by_version and layer.ref.key is not None
                key = (id(layer), by_id)
                if key not in seen:
                    seen[key] = (layer, _layer_digest(layer, by_id))
                digest.update(seen[key][1])
            self.fingerprints[cluster.facts.name] = digest.hexdigest()

    def recorded_facts(self, name: str) -> tuple[ClusterFacts, int] | None:
        """The facts and the record's version number the cluster was last compiled from,
        when its files are intact (as far as known yet): a record version is never
        rewritten, so the same version number means the same facts."""
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError, AttributeError):
            entry = self._entry_of(name)
            if not isinstance(entry, dict) or entry.get("cluster") != name:
                return None
            facts, version = entry.get("facts"), entry.get("version")
            if not isinstance(facts, dict) or type(version) is not int:
                return None
            if facts.get("name") != name or not all(
                isinstance(v, str) for k, v in facts.items() if k != "labels"
            ):
                return None
            return ClusterFacts(**facts), version
        return None

    def exist(self) -> bool:
        """Whether any record of this output is there (else no cluster can be kept)."""
        try:
            with os.scandir(self.directory) as entries:
                return any(e.name.endswith(".json") for e in entries)
        except OSError:
            return False

    def kept(self, names: Iterable[str]) -> dict[str, KeptCluster]:
        """The clusters among `names` whose record holds and whose files are intact."""
        found: dict[str, KeptCluster] = {}
        if self._checking is not None:
            self._checking.join()
        elif not self._tree_dirs():
            return found
        for name in names:
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError, AttributeError):
                kept = self._check(name)
                if kept is not None:
                    found[name] = kept
        return found

    def record(
        self,
        files: Mapping[str, bytes],
        clusters: Mapping[str, int],
        findings: Mapping[str, Sequence[Violation]],
        applications: Iterable[Application] = (),
    ) -> None:
        """Keep the record of each cluster of `clusters` (name -> object count), written
        to the output just now with `files`; `applications`: those its generator files
        make (none from a file behind a finding: that one is rendered again)."""
        now = time.time_ns()
        by_cluster = _files_by_cluster(files)  # once: a scan of every file per cluster is C²
        apps_by_cluster: dict[str, list[list[str]]] = {}
        for app in applications:
            directory = app.origin.split("/", 2)[:2]
            # Not dataclasses.astuple, which deep-copies each field: strings need no copy.
            apps_by_cluster.setdefault("/".join(directory), []).append(
                [getattr(app, name) for name in _APPLICATION_FIELDS]
            )
        for name, objects in clusters.items():
            fingerprint = self.fingerprints.get(name)
            if fingerprint is None:
                continue
            with contextlib.suppress(OSError, ValueError, TypeError):
                own = by_cluster.get(cluster_dir(name), {})
                entry = self._entry(name, fingerprint, own, objects, findings.get(name, ()))
                entry["applications"] = apps_by_cluster.get(cluster_dir(name), [])
                entry["recorded_ns"] = now
                cachedir.write_atomically(self._path(name), json.dumps(entry).encode())

    def _entry(
        self,
        name: str,
        fingerprint: str,
        own: Mapping[str, bytes],
        objects: int,
        findings: Sequence[Violation],
    ) -> dict[str, Any]:
        """`own`: the files the compile wrote under the cluster's directory."""
        root = cluster_dir(name)
        stats = {}
        out = f"{self.out}{os.sep}"  # strings, not Paths: ~100 files a cluster add up
        for path, data in own.items():
            status = os.lstat(out + path)
            stats[path] = [status.st_size, status.st_mtime_ns, status.st_ino, _digest(data)]
        directories: set[str] = set()
        for path in own:  # every directory between the cluster's and its files
            folder = path.rsplit("/", 1)[0]
            while folder != root and folder not in directories:
                directories.add(folder)
                folder = folder.rsplit("/", 1)[0]
        facts, version = self._identity.get(name, (None, None))
        return {
            "format": _FORMAT,
            "out": str(self.out),
            "cluster": name,
            "facts": dataclasses.asdict(facts) if facts is not None else None,
            "version": version,
            "fingerprint": fingerprint,
            "objects": objects,
            "files": stats,
            "directories": sorted(directories),
            "generator_files": {p: d.decode() for p, d in own.items() if p.endswith(".json")},
            "findings": [[getattr(v, f) for f in _VIOLATION_FIELDS] for v in findings],
        }

    def _path(self, name: str) -> Path:
        return self.directory / f"{_digest(name.encode())}.json"

    def _entry_of(self, name: str) -> Any:
        """The cluster's record: as `check_ahead` found it (files checked; None when
        absent or not intact), else read now (files not checked)."""
        if self._checking is not None:
            self._checking.join()
            return self._ahead.get(name)
        return json.loads(self._path(name).read_bytes())

    def _tree_dirs(self) -> bool:
        """Whether the output and its clusters/ are directories (never links)."""
        try:
            for part in (self.out, self.out / CLUSTERS_DIR):
                if not stat.S_ISDIR(part.lstat().st_mode):
                    return False
        except OSError:
            return False
        return True

    def _intact_entry(self, entry: Any) -> dict[str, Any] | None:
        """A record of this output whose files on disk are as it says, or None."""
        if not isinstance(entry, dict) or entry.get("format") != _FORMAT:
            return None
        if entry["out"] != str(self.out) or not isinstance(entry["cluster"], str):
            return None
        out = f"{self.out}{os.sep}"
        root = cluster_dir(entry["cluster"])
        if not _intact(out, root, entry["files"], entry["directories"], entry):
            return None
        return entry

    def _check(self, name: str) -> KeptCluster | None:
        fingerprint = self.fingerprints.get(name)
        if fingerprint is None:
            return None
        entry = self._entry_of(name)
        if self._checking is None:  # read just now: its files are still to check
            if not isinstance(entry, dict) or entry.get("fingerprint") != fingerprint:
                return None  # before the files: a changed cluster costs no stat
            entry = self._intact_entry(entry)
        if entry is None or entry["cluster"] != name or entry["fingerprint"] != fingerprint:
            return None
        files: dict[str, list[Any]] = entry["files"]
        if any(len(v) != len(_VIOLATION_FIELDS) for v in entry["findings"]):
            return None
        findings = tuple(Violation(*(str(x) for x in v)) for v in entry["findings"])
        if any(v.cluster != name for v in findings):
            return None
        return KeptCluster(
            name=name,
            objects=int(entry["objects"]),
            files={p: str(s[3]) for p, s in files.items()},
            generator_files={p: str(t).encode() for p, t in entry["generator_files"].items()},
            applications=tuple(
                Application(*(str(x) for x in a))
                for a in entry["applications"]
                if len(a) == len(_APPLICATION_FIELDS) and a[_ORIGIN] in entry["files"]
            ),
            findings=findings,
        )


def _files_by_cluster(files: Mapping[str, bytes]) -> dict[str, dict[str, bytes]]:
    """`files` under `clusters/<name>/`, by their cluster's directory."""
    grouped: dict[str, dict[str, bytes]] = {}
    prefix = CLUSTERS_DIR + "/"
    for path, data in files.items():
        if path.startswith(prefix) and path.count("/") >= 2:
            grouped.setdefault(path[: path.index("/", len(prefix))], {})[path] = data
    return grouped


def _intact(
    out: str,
    root: str,
    files: Mapping[str, list[Any]],
    directories: Sequence[str],
    entry: Mapping[str, Any],
) -> bool:
    """Whether `out/root` holds exactly `files` and `directories` (none a link), each
    file with its recorded stat, or else its recorded bytes. `out` ends with a separator
    (strings, not Paths: this runs for every file of the tree)."""
    if not stat.S_ISDIR(os.lstat(out + root).st_mode):
        return False
    racy_from = int(entry["recorded_ns"]) - _RACY_NS
    seen_files = 0
    seen_dirs: list[str] = []
    pending = [root]
    while pending:
        folder = pending.pop()
        with os.scandir(out + folder) as entries:
            for item in entries:
                rel = f"{folder}/{item.name}"
                if item.is_dir(follow_symlinks=False):
                    seen_dirs.append(rel)
                    pending.append(rel)
                    continue
                recorded = files.get(rel)
                if recorded is None or not item.is_file(follow_symlinks=False):
                    return False  # a file a full compile would remove, or a link
                size, mtime, inode, digest = recorded
                status = item.stat(follow_symlinks=False)
                if status.st_size != size:
                    return False
                clean = status.st_mtime_ns == mtime and status.st_ino == inode
                racy = not (clean and mtime < racy_from)
                if racy and _digest(Path(item.path).read_bytes()) != digest:
                    return False
                seen_files += 1
    # Every file seen was recorded, once: as many means the same set.
    return seen_files == len(files) and set(seen_dirs) == set(directories)


def run_base(project: Project, cue_identity: str) -> str:
    """The part of every fingerprint that the whole run shares."""
    digest = hashlib.sha256(f"{_FORMAT}\0{sys.version}\0{cue_identity}\0".encode())
    for library in _LIBRARIES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            digest.update(_framed(f"{library}={importlib.metadata.version(library)}".encode()))
    digest.update(_framed(repr(project).encode()))
    project_file = project.root / PROJECT_FILE
    digest.update(_framed(project_file.read_bytes() if project_file.is_file() else b""))
    package = Path(compiler.__file__).parent
    for top in (package, project.policies_dir, project.definitions_dir, *project.cue_files):
        for path in _files_under(top):
            digest.update(_framed(str(path).encode()) + _framed(path.read_bytes()))
    return digest.hexdigest()


def _files_under(top: Path) -> list[Path]:
    """Every file at or under `top`, links followed, in a stable order (bytecode aside)."""
    if top.is_file():
        return [top]
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        found.extend(Path(dirpath) / name for name in sorted(filenames))
    return [p for p in found if p.is_file() and p.suffix != ".pyc"]


def _layer_digest(layer: Layer, by_version: bool) -> bytes:
    digest = hashlib.sha256()
    digest.update(_framed(repr(layer.ref).encode()))
    if by_version:  # the ref names pk, sk and version: the version's identity
        return digest.digest()
    digest.update(_framed(json.dumps(layer.document, sort_keys=True, default=repr).encode()))
    digest.update(_framed(repr(sorted(layer.lines.items())).encode()))
    digest.update(_framed(repr(sorted(layer.key_lines.items())).encode()))
    digest.update(_framed(json.dumps(layer.lock, sort_keys=True, default=repr).encode()))
    return digest.digest()


def _framed(data: bytes) -> bytes:
    return f"{len(data)}\0".encode() + data


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree_hash(files: Mapping[str, bytes], kept: Iterable[KeptCluster]) -> str:
    """`operations.audit.content_hash` of the whole tree, the kept clusters' files
    taken from their records' hashes."""
    digests = {p: hashlib.sha256(d).digest() for p, d in files.items()}
    for cluster in kept:
        digests.update({p: bytes.fromhex(h) for p, h in cluster.files.items()})
    outer = hashlib.sha256()
    for path in sorted(digests):
        outer.update(path.encode("utf-8") + b"\0" + digests[path])
    return f"sha256:{outer.hexdigest()}"


def stale_entries(out: Path, names: Iterable[str]) -> list[str]:
    """The entries of `out/clusters/` that no cluster of `names` owns: a whole-fleet
    compile removes them."""
    mine = {cluster_dir(n) for n in names}
    try:
        with os.scandir(out / CLUSTERS_DIR) as entries:
            present = sorted(f"{CLUSTERS_DIR}/{e.name}" for e in entries)
    except OSError:
        return []
    return [p for p in present if p not in mine]
