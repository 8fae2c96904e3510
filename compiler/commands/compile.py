"""`compile` and `validate`: the pipeline from the store to a tree (or to a verdict)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

from compiler.affected import affected_clusters
from compiler.commands.common import Selection, SourceOptions, build_pin, open_project, open_store
from compiler.emit import EmitStats, StagedTree, staged_tree
from compiler.errors import EXIT_FINDINGS, EXIT_OK
from compiler.gctuning import fewer_collections
from compiler.layers import StackLoader
from compiler.layout import TREE_ROOTS
from compiler.model import cluster_pk
from compiler.operations import steps
from compiler.operations.audit import content_hash
from compiler.pipeline import (
    CompileResult,
    build_checks,
    compile_inputs,
    load_inputs,
    select_clusters,
)
from compiler.policy.cue import CuePolicies, find_cue
from compiler.progress import tracking
from compiler.project import Project
from compiler.report import report_violations
from compiler.sources import ConfigStore, Pin
from compiler.stageclock import timed
from compiler.yamlio import load_layer_yaml


def run_compile_stage(
    source: SourceOptions,
    selection: Selection,
    *,
    cue: str | None,
    changed: Sequence[Path] = (),
    show_progress: bool = True,
    while_policies_run: Callable[[CompileResult], None] | None = None,
) -> CompileResult:
    """Compile the selected clusters; with `changed` files (a hook), those they affect."""
    with fewer_collections():
        return _compile_stage(source, selection, cue, changed, show_progress, while_policies_run)


def _compile_stage(
    source: SourceOptions,
    selection: Selection,
    cue: str | None,
    changed: Sequence[Path],
    show_progress: bool,
    while_policies_run: Callable[[CompileResult], None] | None,
) -> CompileResult:
    with timed("setup"):
        project = open_project(source)
        # Found first: a missing cue fails the run before it reads or writes anything.
        policies = CuePolicies(project.policies_dir, find_cue(cue, os.environ))
        policies.warm_up()  # cue loads (~0.5 s) while the layers are read and merged
    try:
        with timed("setup"):
            store = open_store(source, project)
            pin = build_pin(selection)
        with timed("fetch"):
            if changed and not (selection.clusters or selection.all_clusters):
                names = clusters_affected_by(project, store, pin, changed)
            else:
                names = select_clusters(
                    store, selection.clusters, all_clusters=selection.all_clusters
                )
        if selection.shard is not None:
            names = selection.shard.select(names)
        with timed("setup"):
            checks = build_checks(project, policies=policies)
        with steps.step("dynamodb", source=source.source, clusters=len(names)) as read:
            inputs = load_inputs(store, project, names, pin)
            read["layers"] = sorted(
                {f"{layer.ref.layer}@{layer.ref.version}" for i in inputs for layer in i.layers}
                - {f"{layer.ref.layer}@None" for i in inputs for layer in i.layers}
            )
        with steps.step("policy", clusters=len(inputs)) as checked:
            with tracking("compiling", len(inputs), enabled=show_progress) as tracker:
                result = compile_inputs(inputs, project, checks, tracker, while_policies_run)
            checked["objects"] = result.object_count
            checked["violations"] = len(result.violations)
    finally:
        policies.close()
    steps.current().outcome["clusters"] = [c.facts.name for c in result.clusters]
    return result


def clusters_affected_by(
    project: Project, store: ConfigStore, pin: Pin, changed: Sequence[Path]
) -> list[str]:
    """The clusters a hook must recompile for `changed` files; each overlay among them
    is read strictly first, so a broken file is reported by name and line."""
    for path in changed:
        if path.suffix in (".yaml", ".yml") and path.is_file():
            load_layer_yaml(path.read_bytes(), str(path))
    loader = StackLoader(store, project, pin)
    facts = []
    for name in store.list_clusters():
        record = store.read(cluster_pk(name), pin)
        if record is not None:
            facts.append(loader.facts(record))
    return affected_clusters(project.root, project.stack, facts, changed)


def compile_command(
    *, source: SourceOptions, selection: Selection, out: Path, fmt: str, cue: str | None
) -> int:
    started = time.perf_counter()

    def owned_by(result: CompileResult) -> list[str]:
        return list(TREE_ROOTS) if selection.whole_fleet else result.owned

    with ExitStack() as held:
        staged: list[StagedTree] = []

        def stage_beside_cue(result: CompileResult) -> None:
            # The tree is written beside `out` while cue still runs (the main thread
            # would only wait), and swapped in below only if cue finds nothing.
            with timed("stage"):
                staged.append(
                    held.enter_context(staged_tree(out, result.files, owned=owned_by(result)))
                )

        result = run_compile_stage(
            source,
            selection,
            cue=cue,
            show_progress=fmt == "text",
            while_policies_run=stage_beside_cue,
        )
        if result.violations:
            report_violations(result.violations, fmt, sys.stdout)
            print(f"nothing written to {out}: fix the violations first", file=sys.stderr)
            return EXIT_FINDINGS  # leaving the block discards a staged tree
        with steps.step("emit", out=str(out)) as emitted, timed("write"):
            if not staged:  # the hook did not run (it runs whenever nothing was wrong before cue)
                staged.append(
                    held.enter_context(staged_tree(out, result.files, owned=owned_by(result)))
                )
            stats = staged[0].commit()
            emitted["tree"] = content_hash(result.files)
            emitted["written"] = stats.written
    elapsed = time.perf_counter() - started
    if fmt == "json":
        json.dump(summary_record(result, stats, elapsed, out), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print(summary(result, stats, elapsed, out))
    return EXIT_OK


def summary(result: CompileResult, stats: EmitStats, elapsed: float, out: Path) -> str:
    names = ", ".join(c.facts.name for c in result.clusters)
    files = stats.written + stats.unchanged
    return (
        f"compiled {len(result.clusters)} cluster(s) ({names}): {result.object_count} objects, "
        f"{files} files ({stats.written} written, {stats.unchanged} unchanged, "
        f"{stats.removed} removed) in {elapsed:.2f} s -> {out}"
    )


def summary_record(
    result: CompileResult, stats: EmitStats, elapsed: float, out: Path
) -> dict[str, object]:
    """The summary for machines (`--format json`)."""
    return {
        "clusters": [c.facts.name for c in result.clusters],
        "objects": result.object_count,
        "files": {"written": stats.written, "unchanged": stats.unchanged, "removed": stats.removed},
        "out": str(out),
        "seconds": round(elapsed, 3),
        "violations": [],
    }


def validate_command(
    *,
    source: SourceOptions,
    selection: Selection,
    fmt: str,
    cue: str | None,
    changed: Sequence[Path] = (),
) -> int:
    result = run_compile_stage(
        source, selection, cue=cue, changed=changed, show_progress=fmt == "text"
    )
    report_violations(result.violations, fmt, sys.stdout)
    if not result.violations and fmt == "text":
        if changed and not result.clusters:
            print(f"{len(changed)} file(s) checked: no cluster reads them")
        else:
            print(f"{len(result.clusters)} cluster(s) valid: {result.object_count} objects")
    return EXIT_FINDINGS if result.violations else EXIT_OK
