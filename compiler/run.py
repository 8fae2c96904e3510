"""The compile service: from the store to a checked `CompileResult`, for every command
that compiles (compile, validate, golden, publish, diff, watch)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from compiler.affected import affected_clusters
from compiler.gctuning import fewer_collections
from compiler.layers import StackLoader
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
from compiler.progress import tracking
from compiler.project import Project
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
        policies = CuePolicies(
            project.policies_dir, find_cue(cue, os.environ), files=project.cue_files
        )
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


def cluster_names(result: CompileResult) -> tuple[str, ...]:
    """The clusters a compile covered, as the final status reports them."""
    return tuple(c.facts.name for c in result.clusters)
