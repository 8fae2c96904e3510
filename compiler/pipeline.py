"""The compile pipeline for many clusters: layers -> merge -> validate -> render -> tree.

Pure but for the store it reads from; writing is the caller's (see `emit`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from compiler.errors import CompilerError, InputError, UsageError
from compiler.explain import resolve_path
from compiler.layers import ClusterInput, StackLoader
from compiler.layout import cluster_dir, cluster_files, shared_files
from compiler.merge import MergeResult, merge_layers
from compiler.model import ClusterFacts, DocPath, format_path
from compiler.policy import Violation, where_set
from compiler.policy.cue import CuePolicies
from compiler.policy.cue_input import cue_document
from compiler.policy.objects import ObjectSchemas
from compiler.policy.schema import ConfigSchema
from compiler.progress import Tracker
from compiler.project import Project
from compiler.render import Problem, Rendered, render_cluster
from compiler.sources import ConfigStore, Pin


@dataclass(frozen=True)
class CompiledCluster:
    facts: ClusterFacts
    input: ClusterInput
    merged: MergeResult
    objects: tuple[Rendered, ...]
    files: Mapping[str, bytes]  # paths from the tree's root: clusters/<name>/...


@dataclass(frozen=True)
class Checks:
    """The validators of a run, each built once and used for every cluster.

    `objects` and `policies` are optional so that a stage can be run alone
    (tests, `explain`); the commands always build all three.
    """

    schema: ConfigSchema
    objects: ObjectSchemas | None = None
    policies: CuePolicies | None = None


def build_checks(project: Project, *, cue: Path | None) -> Checks:
    """Every check of a compile; `cue=None` skips the CUE policies."""
    return Checks(
        schema=ConfigSchema(project.policies_dir),
        objects=ObjectSchemas(project.policies_dir, project.kubernetes_version),
        policies=CuePolicies(project.policies_dir, cue) if cue is not None else None,
    )


@dataclass
class CompileResult:
    clusters: list[CompiledCluster] = field(default_factory=list)
    shared: dict[str, bytes] = field(default_factory=dict)  # applicationsets/...
    violations: list[Violation] = field(default_factory=list)

    @property
    def files(self) -> dict[str, bytes]:
        out = dict(self.shared)
        for cluster in self.clusters:
            out.update(cluster.files)
        return out

    @property
    def owned(self) -> list[str]:
        """The directories this result replaces whole when written."""
        return ["applicationsets", *(cluster_dir(c.facts.name) for c in self.clusters)]

    @property
    def object_count(self) -> int:
        return sum(len(c.objects) for c in self.clusters) + len(self.shared)


def select_clusters(store: ConfigStore, names: Iterable[str], *, all_clusters: bool) -> list[str]:
    """The clusters of a run; a listing that finds none is an error, never an empty tree."""
    if all_clusters:
        found = store.list_clusters()
        if not found:
            raise InputError(
                "the config table lists no cluster records (cluster#<name>); "
                "refusing to compile an empty fleet"
            )
        return found
    chosen = sorted(set(names))
    if not chosen:
        raise InputError("name the clusters with --cluster NAME (repeatable) or use --all")
    return chosen


def compile_clusters(
    store: ConfigStore,
    project: Project,
    names: Iterable[str],
    pin: Pin,
    checks: Checks | None = None,
    tracker: Tracker | None = None,
) -> CompileResult:
    inputs = load_inputs(store, project, names, pin)
    return compile_inputs(inputs, project, checks, tracker)


def load_inputs(
    store: ConfigStore, project: Project, names: Iterable[str], pin: Pin
) -> list[ClusterInput]:
    """Every cluster's layer stack: the reads from the table (each shared layer once)."""
    loader = StackLoader(store, project, pin)
    inputs = []
    for name in names:
        try:
            inputs.append(loader.load(name))
        except CompilerError as err:
            raise err.with_cluster(name) from None
    return inputs


def compile_inputs(
    inputs: Sequence[ClusterInput],
    project: Project,
    checks: Checks | None = None,
    tracker: Tracker | None = None,
) -> CompileResult:
    """Merge, check and render loaded clusters; one CUE run for all of them."""
    checks = checks or Checks(ConfigSchema(project.policies_dir))
    result = CompileResult(shared=shared_files(project.argocd))
    for cluster in inputs:
        name = cluster.facts.name
        if tracker is not None:
            tracker.advance(name)
        try:
            compiled, violations = compile_one(cluster, project, checks)
        except CompilerError as err:
            raise err.with_cluster(name) from None
        result.violations.extend(violations)
        if compiled is not None:
            result.clusters.append(compiled)
    if checks.objects is not None:
        result.violations.extend(checks.objects.check_shared(result.shared))
    if checks.policies is not None and result.clusters:
        # One cue process for the whole run (~0.5 s to start, ~2 ms a cluster).
        result.violations.extend(_policy_violations(checks.policies, result.clusters))
    result.violations.sort()
    return result


def merge_cluster(cluster: ClusterInput, project: Project) -> MergeResult:
    return merge_layers(cluster.layers, project.lists)


def compile_one(
    cluster: ClusterInput, project: Project, checks: Checks
) -> tuple[CompiledCluster | None, list[Violation]]:
    """Merge, check and render one cluster. A cluster is returned when its config
    has the schema's shape, even with other findings, so that the run's one CUE
    call sees it; the caller writes nothing while any violation stands."""
    name = cluster.facts.name
    merged = merge_cluster(cluster, project)
    violations = checks.schema.check(name, merged)
    if violations:
        return None, violations  # rendering and the policies assume the schema's shape
    rendered = render_cluster(cluster.facts, merged.value)
    if rendered.problems:
        return None, [_violation(name, p, merged) for p in rendered.problems]
    if checks.objects is not None:
        violations = checks.objects.check(
            name, rendered.objects, lambda path: where_set(merged, path)
        )
    files = cluster_files(cluster.facts, merged.value, rendered.objects, cluster.layers)
    compiled = CompiledCluster(
        facts=cluster.facts,
        input=cluster,
        merged=merged,
        objects=tuple(rendered.objects),
        files=files,
    )
    return compiled, violations


def _policy_violations(
    policies: CuePolicies, clusters: Sequence[CompiledCluster]
) -> list[Violation]:
    by_name = {c.facts.name: c for c in clusters}
    documents = {name: cue_document(c.facts, c.merged.value) for name, c in by_name.items()}
    found = []
    for finding in policies.check(documents):
        merged = by_name[finding.cluster].merged
        where = where_set(merged, _nearest_path(merged, finding.path))
        found.append(Violation(finding.cluster, finding.path, finding.rule, finding.message, where))
    return found


def _nearest_path(merged: MergeResult, text: str) -> DocPath:
    """The path a policy named, or its nearest ancestor that the config has.

    A policy may name what is missing (`labels.team`) or a default the config
    never set (`defaultDeny`): the layer to blame is the one that set the parent.
    """
    while text:
        try:
            return resolve_path(merged, text)
        except UsageError:
            cut = max(text.rfind("."), text.rfind("["))
            text = text[:cut] if cut > 0 else ""
    return ()


def _violation(cluster: str, problem: Problem, merged: MergeResult) -> Violation:
    where = where_set(merged, problem.path)  # the same blame as schema and policy findings
    return Violation(cluster, format_path(problem.path), problem.rule, problem.message, where)
