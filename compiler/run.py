"""The compile service: from the store to a checked `CompileResult`, for every command
that compiles (compile, validate, golden, publish, diff, watch)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

from compiler.affected import affected_clusters, standing
from compiler.cachedir import cache_root, use_cache
from compiler.changeset import git_changes
from compiler.errors import CompilerError
from compiler.gctuning import fewer_collections
from compiler.layers import ClusterInput, StackLoader, load_inputs, stream_inputs
from compiler.layout import CLUSTERS_DIR, LOCK_FILE
from compiler.model import LayerVersion, cluster_pk, sort_key_for
from compiler.operations import steps
from compiler.options import Selection, SourceOptions, build_pin, open_project, open_store
from compiler.pipeline import (
    CompileResult,
    build_checks,
    finish_compile,
    merge_inputs,
    select_clusters,
)
from compiler.policy.cue import CuePolicies, find_cue
from compiler.policy.cue_binary import supported_cue_version
from compiler.policy.cue_stream import CueStream
from compiler.policy.cue_verdicts import cue_identity
from compiler.progress import tracking
from compiler.project import Project
from compiler.reversion import unknown_cluster
from compiler.sources import ConfigStore, Pin
from compiler.sources.items import is_layer_pk
from compiler.sources.snapshot import SnapshotStore
from compiler.stageclock import timed
from compiler.treerecord import KeptCluster, TreeRecords, run_base
from compiler.yamlio import load_layer_yaml


def run_compile_stage(
    source: SourceOptions,
    selection: Selection,
    *,
    cue: str | None,
    changed: Sequence[Path] = (),
    hook: bool = False,
    show_progress: bool = True,
    while_policies_run: Callable[[CompileResult], None] | None = None,
    records: TreeRecords | None = None,
) -> CompileResult:
    """Compile the selected clusters; with `changed` files, those they affect; as a
    `hook`, those that the files and git's own list of the commit's changes affect.
    With `records` (of the output the result will be written to) and the cache on,
    the clusters whose inputs and files there did not change are kept, not compiled."""
    with fewer_collections():
        return _compile_stage(
            source, selection, cue, changed, hook, show_progress, while_policies_run, records
        )


def _compile_stage(
    source: SourceOptions,
    selection: Selection,
    cue: str | None,
    changed: Sequence[Path],
    hook: bool,
    show_progress: bool,
    while_policies_run: Callable[[CompileResult], None] | None,
    records: TreeRecords | None = None,
) -> CompileResult:
    with timed("setup"):
        project = open_project(source)
        # Found and its version checked first: a missing or too old cue fails the run
        # before it reads or writes anything.
        cue_path = find_cue(cue, os.environ, project=project.root)
        version = supported_cue_version(cue_path)
        cache = source.cache and use_cache(os.environ)
        cache_dir = cache_root() if cache else None  # compiled validators, as build_checks
        policies = CuePolicies(
            project.policies_dir, cue_path, version=version, cache=cache, files=project.cue_files
        )
        policies.warm_up()  # cue loads (~0.5 s) while the layers are read and merged
    try:
        with timed("setup"):
            store, pin = open_store(source, project), build_pin(selection)
            out = records.out if records is not None else None
            records = records if cache else None
        with timed("fetch"):
            names, listed = _select_clusters(
                project, store, pin, selection, changed, hook, cache_dir, records, out
            )
        with timed("setup"):
            checks = build_checks(project, policies=policies, cache=cache)
        unchanged = Unchanged(records, store, project, policies, pin, cache_dir=cache_dir)
        kept, known = unchanged.without_content(names, listed)
        # Each cluster is merged, schema-checked and handed to cue as its layers arrive.
        with CueStream(policies) as policy_run:
            with steps.step("dynamodb", source=source.source, clusters=len(names)) as read:
                arriving, kept = unchanged.read(names, kept, known)
                merging = merge_inputs(arriving, project, checks, kept, policy_run)
                read["layers"] = _layers_read(merging.inputs)
            with steps.step("policy", clusters=len(merging.inputs), cue=version) as checked:
                compiling = len(merging.inputs) - len(kept)
                with tracking("compiling", compiling, enabled=show_progress) as tracker:
                    result = finish_compile(
                        merging,
                        project,
                        checks,
                        policy_run,
                        tracker,
                        while_policies_run,
                        unchanged.reload,
                    )
                checked["kept"] = len(kept)  # unchanged since the last compile into the output
                checked["cue_evaluated"] = len(policies.sent)  # the rest had a kept verdict
                checked["objects"] = result.object_count
                checked["violations"] = len(result.violations)
    finally:
        policies.close()
    return result


def _select_clusters(
    project: Project,
    store: ConfigStore,
    pin: Pin,
    selection: Selection,
    changed: Sequence[Path],
    hook: bool,
    cache_dir: Path | None,
    records: TreeRecords | None,
    out: Path | None,
) -> tuple[list[str], dict[str, int]]:
    """The clusters to compile (this shard's) and, when the table was listed for them,
    each one's latest record version as the listing saw it (`listed_versions`). The
    `records` of a whole-fleet compile are checked meanwhile, in a thread; the clusters
    of its output `out` are listed whatever the table's index says (listing.py)."""
    if records is not None and selection.all_clusters:
        records.check_ahead()  # the files on disk, while the table lists the clusters
    if hook:
        changed = commit_changes(project, changed)
    listed: dict[str, int] = {}
    if (hook or changed) and not (selection.clusters or selection.all_clusters):
        names = clusters_affected_by(project, store, pin, changed, cache_dir=cache_dir)
    else:
        names = select_clusters(
            store,
            selection.clusters,
            all_clusters=selection.all_clusters,
            as_of=pin.as_of,
            known=clusters_in_tree(out) if out is not None and selection.all_clusters else {},
        )
        if selection.all_clusters:  # the listing just learned each one's latest version
            listed = dict(getattr(store, "listed_versions", {}))
        else:
            check_clusters(store, names)
    return (names if selection.shard is None else selection.shard.select(names)), listed


def clusters_in_tree(out: Path) -> dict[str, int]:
    """The clusters an output tree holds (`clusters/<name>/`, named as a cluster can be),
    each with its record's version as the tree's `config-lock.json` says (0: unknown)."""
    try:
        with os.scandir(out / CLUSTERS_DIR) as entries:
            names = sorted(e.name for e in entries if is_layer_pk(cluster_pk(e.name)))
    except OSError:
        return {}
    return {name: _locked_version(out / CLUSTERS_DIR / name / LOCK_FILE, name) for name in names}


def _locked_version(lock: Path, name: str) -> int:
    try:
        layers = json.loads(lock.read_bytes())["layers"]
        found = [e["version"] for e in layers if e.get("pk") == cluster_pk(name)]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return 0
    return found[0] if len(found) == 1 and type(found[0]) is int else 0


def _layers_read(inputs: Sequence[ClusterInput]) -> list[str]:
    """The versions read, `layer@N`, for the run's step record (no versionless files)."""
    return sorted(
        {f"{layer.ref.layer}@{layer.ref.version}" for i in inputs for layer in i.layers}
        - {f"{layer.ref.layer}@None" for i in inputs for layer in i.layers}
    )


class Unchanged:
    """Which clusters a compile keeps as the last compile into its output left them
    (treerecord.py): none without records (no cache, or no output).

    From DynamoDB at the latest versions, the clusters' versions are found first without
    the layers' content (`without_content`): the clusters whose fingerprint and files did
    not change are kept and never read whole, the others are read and compiled (`read`).
    Otherwise every cluster is read whole and fingerprinted from its content (`read`).
    """

    def __init__(
        self,
        records: TreeRecords | None,
        store: ConfigStore,
        project: Project,
        policies: CuePolicies,
        pin: Pin,
        *,
        cache_dir: Path | None = None,
    ) -> None:
        self.records, self.store, self.project, self.pin = records, store, project, pin
        self.cache_dir = cache_dir
        self.by_version = False
        self.base = ""
        if records is not None:
            with timed("fingerprint"):
                self.base = run_base(project, cue_identity(policies.cue, policies.version or ""))
                # A version number names its content in one table only: that table.
                if getattr(store, "versions_immutable", False):
                    table = getattr(store, "identity", lambda: None)()
                    if table is not None:
                        self.by_version, self.base = True, f"{self.base}\0{table}"
        self._kept_versions: dict[str, Pin] = {}
        self._examined: set[str] = set()  # clusters `without_content` looked up

    def without_content(
        self, names: Sequence[str], listed: Mapping[str, int]
    ) -> tuple[dict[str, KeptCluster], dict[str, ClusterInput]]:
        """The kept clusters and their inputs, read without content (none: this run
        cannot tell before reading the layers whole). `listed`: the latest version of
        each cluster's record, when this run listed the table's clusters."""
        latest = self.pin.as_of is None and not self.pin.versions
        if self.records is None or not self.by_version or not latest or not self.records.exist():
            return {}, {}
        with timed("fetch"):
            loader = StackLoader(
                self.store, self.project, self.pin, content=False, cache_dir=self.cache_dir
            )
            stubs = self._listed_stubs(loader, names, listed) if listed else []
            if not listed:
                loader.prefetch(names)
                for name in names:
                    # A cluster failing here fails again when read whole, naming itself.
                    with suppress(CompilerError):
                        stubs.append(loader.load(name))
        with timed("fingerprint"):
            self.records.fingerprint(stubs, self.base, by_version=True)
            self._examined = {c.facts.name for c in stubs}
            kept = self.records.kept(self._examined)
        inputs = {c.facts.name: c for c in stubs if c.facts.name in kept}
        for name, cluster in inputs.items():
            # The exact versions it was kept at, should a finding need it merged (reload).
            versions = {layer.ref.layer: layer.ref.version for layer in cluster.layers}
            self._kept_versions[name] = Pin(
                versions={k: v for k, v in versions.items() if v is not None}
            )
        return kept, inputs

    def _listed_stubs(
        self, loader: StackLoader, names: Sequence[str], listed: Mapping[str, int]
    ) -> list[ClusterInput]:
        """The stacks of the clusters whose latest record version (from the listing, which
        read every version's key) is the one their record was compiled from: their facts
        are that version's, kept in the record, so no cluster record is read at all."""
        assert self.records is not None
        known = {}
        for name in names:
            recorded = self.records.recorded_facts(name)
            if recorded is not None and listed.get(name) == recorded[1]:
                known[name] = recorded
        loader.prefetch_shared(facts for facts, _ in known.values())
        stubs = []
        for name, (facts, version) in known.items():
            pk = cluster_pk(name)
            record = LayerVersion(
                pk=pk, sk=sort_key_for(version), version=version, config={}, created_at=""
            )
            with suppress(CompilerError):
                stubs.append(loader.stack_of(facts, record))
        return stubs

    def read(
        self,
        names: Sequence[str],
        kept: Mapping[str, KeptCluster],
        known: Mapping[str, ClusterInput],
    ) -> tuple[Generator[ClusterInput, None, None], dict[str, KeptCluster]]:
        """Every cluster's input, in the order of `names`, as the reads arrive: the kept
        ones as `without_content` found them, the others read whole (`stream_inputs`)
        and fingerprinted (their records are written after the swap); and the kept
        clusters, to which a cluster read whole is added, before it is given, when
        `without_content` could not tell."""
        kept = dict(kept)
        return self._arriving(names, kept, known), kept

    def _arriving(
        self,
        names: Sequence[str],
        kept: dict[str, KeptCluster],
        known: Mapping[str, ClusterInput],
    ) -> Generator[ClusterInput, None, None]:
        loading = [n for n in names if n not in kept]
        stream = stream_inputs(
            self.store, self.project, loading, self.pin, cache_dir=self.cache_dir
        )
        try:
            for name in names:
                if name in kept:
                    yield known[name]
                    continue
                cluster = next(stream)  # in the same order: `loading` keeps `names`' order
                if self.records is not None:
                    with timed("fingerprint"):
                        self.records.fingerprint([cluster], self.base, by_version=self.by_version)
                        # One `without_content` could not look up (no record, or a stack
                        # without the cluster's own layer) may be kept still.
                        if name not in self._examined:
                            kept.update(self.records.kept([name]))
                yield cluster
        finally:
            stream.close()

    def reload(self, name: str) -> ClusterInput | None:
        """A kept cluster's input, whole, at the versions it was kept at, when those were
        read without content; None when it was read whole already."""
        pin = self._kept_versions.get(name)
        if pin is None:
            return None
        return load_inputs(self.store, self.project, [name], pin, cache_dir=self.cache_dir)[0]


def check_clusters(store: ConfigStore, names: Sequence[str]) -> None:
    """Every cluster named on the command line has a record, else the error names the
    closest names the table has (issue 17, item 10). One read per name, and the table's
    listing only when one is missing; a retired record or one newer than `--as-of` is
    left to the loader, which says so."""
    for name in names:
        if store.read(cluster_pk(name), Pin()) is None:
            raise unknown_cluster(store, name)


def clusters_affected_by(
    project: Project,
    store: ConfigStore,
    pin: Pin,
    changed: Sequence[Path],
    *,
    cache_dir: Path | None = None,
) -> list[str]:
    """The clusters a hook must recompile for `changed` files; each overlay among them
    is read strictly first, so a broken file is reported by name and line."""
    # Only the records' facts are needed: read without the configs, in batches.
    loader = StackLoader(store, project, pin, content=False, cache_dir=cache_dir)
    facts = loader.facts_of_clusters(store.list_clusters())
    for path in changed:
        # Overlays only: a hook sees every staged file, and a workflow's `on:` is no layer.
        is_overlay = path.suffix in (".yaml", ".yml") and path.is_file()
        if is_overlay and affected_clusters(project.root, project.stack, facts, [path]):
            load_layer_yaml(path.read_bytes(), _shown(path, project.root))
    # The snapshot the run reads is an input like the policies (wherever it is); the
    # table is not a file, so a DynamoDB run has none.
    everything = [store.root] if isinstance(store, SnapshotStore) else []
    return affected_clusters(project.root, project.stack, facts, changed, everything=everything)


def commit_changes(project: Project, passed: Sequence[Path]) -> list[Path]:
    """The files pre-commit passed and what git itself lists for the commit (deletions
    and the old side of renames, which pre-commit never passes)."""
    given = {standing(p) for p in passed}
    return sorted(given.union(git_changes(project.root, os.environ)))


def hook_reads_changes(source: SourceOptions, passed: Sequence[Path], golden: Path) -> bool:
    """Whether a commit touches anything the golden check compares: the golden files
    or an input of some cluster (git's list of changes included)."""
    project = open_project(source)
    changed = commit_changes(project, passed)
    golden = standing(golden)
    if any(p == golden or p.is_relative_to(golden) for p in changed):
        return True
    store = open_store(source, project)
    return bool(clusters_affected_by(project, store, Pin(), changed))


@contextmanager
def snapshot_freshness(source: SourceOptions, *, hook: bool) -> Iterator[Callable[[], str | None]]:
    """For a hook: `stale_snapshot_warning` asked beside the compile, so that the table's
    answer (and boto3's import) overlaps the compile instead of following it: by the
    process `compiler.entry` started for it (`freshness_process`), else in a thread of
    its own. Yields the function that waits for the warning (None without `hook`)."""
    if not hook:
        yield lambda: None
        return
    from compiler import freshness_process

    started = freshness_process.claim()
    if started is not None:
        try:
            yield lambda: freshness_process.answer(started, source, stale_snapshot_warning)
        finally:
            freshness_process.stop(started)  # a compile that failed does not wait for it
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="freshness") as pool:
        asked = pool.submit(stale_snapshot_warning, source)
        try:
            yield asked.result
        finally:
            asked.cancel()  # a compile that failed does not wait for an answer not yet asked


def stale_snapshot_warning(source: SourceOptions) -> str | None:
    """`freshness.stale_snapshot_warning`: boto3 is imported only when it is asked."""
    from compiler.freshness import stale_snapshot_warning as asked

    return asked(source)


def _shown(path: Path, root: Path) -> str:
    try:
        return standing(path).relative_to(standing(root)).as_posix()
    except ValueError:
        return str(path)


def cluster_names(result: CompileResult) -> tuple[str, ...]:
    """The clusters a compile covered, as the final status reports them."""
    names = [c.facts.name for c in result.clusters]
    return tuple(sorted(names + [k.name for k in result.kept]) if result.kept else names)
