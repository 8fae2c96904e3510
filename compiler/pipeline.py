"""The compile pipeline for many clusters: layers -> merge -> validate -> render -> tree.

Pure but for the store it reads from; writing is the caller's (see `emit`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from compiler.errors import CompilerError, InputError
from compiler.layers import ClusterInput, StackLoader
from compiler.layout import cluster_dir, cluster_files, shared_files
from compiler.merge import MergeResult, merge_layers
from compiler.model import ClusterFacts, format_path
from compiler.policy import Violation
from compiler.policy.schema import ConfigSchema
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
    store: ConfigStore, project: Project, names: Iterable[str], pin: Pin
) -> CompileResult:
    loader = StackLoader(store, project, pin)
    schema = ConfigSchema(project.policies_dir)
    result = CompileResult(shared=shared_files(project.argocd))
    for name in names:
        try:
            compiled, violations = compile_one(loader.load(name), project, schema)
        except CompilerError as err:
            raise err.with_cluster(name) from None
        result.violations.extend(violations)
        if compiled is not None:
            result.clusters.append(compiled)
    result.violations.sort()
    return result


def merge_cluster(cluster: ClusterInput, project: Project) -> MergeResult:
    return merge_layers(cluster.layers, project.lists)


def compile_one(
    cluster: ClusterInput, project: Project, schema: ConfigSchema
) -> tuple[CompiledCluster | None, list[Violation]]:
    merged = merge_cluster(cluster, project)
    violations = schema.check(cluster.facts.name, merged)
    if violations:
        return None, violations  # rendering assumes a config of the schema's shape
    rendered = render_cluster(cluster.facts, merged.value)
    if rendered.problems:
        return None, [_violation(cluster.facts.name, p, merged) for p in rendered.problems]
    files = cluster_files(cluster.facts, merged.value, rendered.objects, cluster.layers)
    compiled = CompiledCluster(
        facts=cluster.facts,
        input=cluster,
        merged=merged,
        objects=tuple(rendered.objects),
        files=files,
    )
    return compiled, []


def _violation(cluster: str, problem: Problem, merged: MergeResult) -> Violation:
    found = merged.provenance_of(problem.path)
    where = found.describe() if found else ""
    return Violation(cluster, format_path(problem.path), problem.rule, problem.message, where)
