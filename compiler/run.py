"""The compile service: from the store to a checked `CompileResult`, for every command
that compiles (compile, validate, golden, publish, diff, watch)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from compiler.affected import affected_clusters, standing
from compiler.cachedir import cache_root
from compiler.changeset import git_changes
from compiler.gctuning import fewer_collections
from compiler.layers import ClusterInput, StackLoader
from compiler.model import cluster_pk
from compiler.operations import steps
from compiler.options import Selection, SourceOptions, build_pin, open_project, open_store
from compiler.pipeline import (
    CompileResult,
    build_checks,
    compile_inputs,
    load_inputs,
    select_clusters,
)
from compiler.policy.cue import CuePolicies, find_cue
from compiler.policy.cue_binary import supported_cue_version, use_cache
from compiler.policy.cue_verdicts import cue_identity
from compiler.progress import tracking
from compiler.project import Project
from compiler.reversion import unknown_cluster
from compiler.sources import ConfigStore, Pin
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
            store = open_store(source, project)
            pin = build_pin(selection)
        with timed("fetch"):
            if hook:
                changed = commit_changes(project, changed)
            if (hook or changed) and not (selection.clusters or selection.all_clusters):
                names = clusters_affected_by(project, store, pin, changed, cache_dir=cache_dir)
            else:
                names = select_clusters(
                    store, selection.clusters, all_clusters=selection.all_clusters
                )
                if not selection.all_clusters:
                    check_clusters(store, names)
        if selection.shard is not None:
            names = selection.shard.select(names)
        with timed("setup"):
            checks = build_checks(project, policies=policies, cache=cache)
        with steps.step("dynamodb", source=source.source, clusters=len(names)) as read:
            inputs = load_inputs(store, project, names, pin, cache_dir=cache_dir)
            read["layers"] = _layers_read(inputs)
        kept = unchanged_clusters(records if cache else None, inputs, project, policies)
        with steps.step("policy", clusters=len(inputs), cue=version) as checked:
            compiling = len(inputs) - len(kept)
            with tracking("compiling", compiling, enabled=show_progress) as tracker:
                result = compile_inputs(
                    inputs, project, checks, tracker, while_policies_run, kept=kept
                )
            checked["kept"] = len(kept)  # unchanged since the last compile into the output
            checked["cue_evaluated"] = len(policies.sent)  # the rest had a kept verdict
            checked["objects"] = result.object_count
            checked["violations"] = len(result.violations)
    finally:
        policies.close()
    return result


def _layers_read(inputs: Sequence[ClusterInput]) -> list[str]:
    """The versions read, `layer@N`, for the run's step record (no versionless files)."""
    return sorted(
        {f"{layer.ref.layer}@{layer.ref.version}" for i in inputs for layer in i.layers}
        - {f"{layer.ref.layer}@None" for i in inputs for layer in i.layers}
    )


def unchanged_clusters(
    records: TreeRecords | None,
    inputs: Sequence[ClusterInput],
    project: Project,
    policies: CuePolicies,
) -> dict[str, KeptCluster]:
    """The clusters that `records` shows unchanged since the last compile into its
    output (none without records, that is without the cache or an output)."""
    if records is None:
        return {}
    with timed("fingerprint"):
        identity = cue_identity(policies.cue, policies.version or "")
        records.fingerprint(inputs, run_base(project, identity))
        return records.kept(records.fingerprints)


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
    loader = StackLoader(store, project, pin, cache_dir=cache_dir)
    facts = []
    for name in store.list_clusters():
        record = store.read(cluster_pk(name), pin)
        if record is not None:
            facts.append(loader.facts(record))
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
