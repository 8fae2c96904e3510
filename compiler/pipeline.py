"""The compile pipeline for many clusters: layers -> merge -> validate -> render -> tree.

Pure but for the store it reads from; writing is the caller's (see `emit`).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from compiler.argocd.applications import Application, blamed_findings, generate
from compiler.argocd.immutable import mark_replacements
from compiler.cachedir import cache_root
from compiler.errors import CompilerError, InputError, UsageError
from compiler.layers import ClusterInput
from compiler.layout import cluster_files, owned_directories, shared_files
from compiler.merge import MergeResult, merge_layers
from compiler.model import ClusterFacts, DocPath, format_path
from compiler.policy import Violation
from compiler.policy.catalog import all_rules
from compiler.policy.cue import CueFinding, CuePolicies
from compiler.policy.cue_input import cue_document
from compiler.policy.cue_stream import CueStream
from compiler.policy.guards.base import GuardContext
from compiler.policy.guards.registry import run_guards
from compiler.policy.objects import ObjectSchemas
from compiler.policy.schema import ConfigSchema
from compiler.policy.waivers import Waiver, apply_waivers, load_waivers
from compiler.progress import Tracker
from compiler.project import Project
from compiler.provenance import resolve_path, where_set
from compiler.render import Problem, Rendered, render_cluster
from compiler.sources import ConfigStore
from compiler.stageclock import timed
from compiler.treerecord import KeptCluster

Moment = datetime.datetime | None


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
    waivers: tuple[Waiver, ...] = ()
    # The day waivers are judged on (UTC); None: today.
    today: datetime.date | None = None


def build_checks(project: Project, *, policies: CuePolicies | None, cache: bool = False) -> Checks:
    """Every check of a compile; `policies=None` skips the CUE policies. With `cache`,
    the schemas' compiled validators are kept in the cache dir between runs."""
    cache_dir = cache_root() if cache else None
    return Checks(
        schema=ConfigSchema(project.definitions_dir, cache_dir=cache_dir),
        objects=ObjectSchemas(
            project.definitions_dir, project.kubernetes_version, cache_dir=cache_dir
        ),
        policies=policies,
        waivers=load_waivers(project.policies_dir, all_rules()),
    )


@dataclass
class CompileResult:
    clusters: list[CompiledCluster] = field(default_factory=list)
    shared: dict[str, bytes] = field(default_factory=dict)  # applicationsets/...
    violations: list[Violation] = field(default_factory=list)  # each fails the run
    # Reported, never failing: warnings, findings a live waiver covers, stale waivers.
    notices: list[Violation] = field(default_factory=list)
    # Clusters left as the last compile into the same output wrote them (treerecord).
    kept: list[KeptCluster] = field(default_factory=list)
    # Each compiled cluster's own findings, before the waivers judged them.
    own_findings: dict[str, list[Violation]] = field(default_factory=dict)
    # The Applications the ApplicationSets generate from the whole tree (kept clusters'
    # included), when the fleet-wide checks ran; none from a file behind a finding, so
    # that a compile keeping its cluster renders that file again (treerecord.py).
    applications: list[Application] = field(default_factory=list)

    @property
    def files(self) -> dict[str, bytes]:
        out = dict(self.shared)
        for cluster in self.clusters:
            out.update(cluster.files)
        return out

    @property
    def owned(self) -> list[str]:
        """The directories this result replaces whole when written."""
        return owned_directories(c.facts.name for c in self.clusters)

    @property
    def object_count(self) -> int:
        compiled = sum(len(c.objects) for c in self.clusters)
        return compiled + sum(k.objects for k in self.kept) + len(self.shared)


def select_clusters(
    store: ConfigStore,
    names: Iterable[str],
    *,
    all_clusters: bool,
    as_of: Moment = None,
    known: Mapping[str, int] | None = None,
) -> list[str]:
    """The clusters of a run (`--all --as-of`: the fleet as it was then, not today's); a
    listing that finds none is an error, never an empty tree. `known`: the clusters of
    the run's output, listed whatever an index says (ConfigStore.list_clusters)."""
    if all_clusters:
        found = store.list_clusters(as_of, known=known)
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


@dataclass
class Merging:
    """The first half of a compile: the clusters as read, merged and schema-checked
    (cue's input), and the result so far (their findings, the kept clusters')."""

    inputs: list[ClusterInput]
    result: CompileResult
    merged: dict[str, tuple[ClusterInput, MergeResult]]


def compile_inputs(
    inputs: Iterable[ClusterInput],
    project: Project,
    checks: Checks | None = None,
    tracker: Tracker | None = None,
    while_policies_run: Callable[[CompileResult], None] | None = None,
    kept: Mapping[str, KeptCluster] | None = None,
    reload: Callable[[str], ClusterInput | None] | None = None,
) -> CompileResult:
    """Merge, check and render loaded clusters; one CUE run for all of them
    (`merge_inputs`, then `finish_compile`)."""
    checks = checks or Checks(ConfigSchema(project.definitions_dir))
    with CueStream(checks.policies) as cue:
        merging = merge_inputs(inputs, project, checks, kept or {}, cue)
        return finish_compile(merging, project, checks, cue, tracker, while_policies_run, reload)


def merge_inputs(
    inputs: Iterable[ClusterInput],
    project: Project,
    checks: Checks,
    kept: Mapping[str, KeptCluster],
    cue: CueStream,
) -> Merging:
    """Merge and schema-check each cluster as `inputs` gives it (a reader may still be
    fetching the rest: `stream_inputs`), and hand it to `cue` then. A cluster's entry in
    `kept` is looked up when it arrives, so the reader may decide it then; kept clusters
    are not compiled, their records give their findings and the files the fleet-wide
    checks read."""
    result = CompileResult(shared=shared_files(project.argocd))
    taken: list[ClusterInput] = []
    merged: dict[str, tuple[ClusterInput, MergeResult]] = {}
    found_here: list[Violation] = []
    try:
        for cluster in inputs:
            taken.append(cluster)
            keeper = kept.get(cluster.facts.name)
            if keeper is not None:
                result.kept.append(keeper)
                continue
            with _naming(cluster):
                found, violations = merge_and_check(cluster, project, checks)
            result.own_findings.setdefault(cluster.facts.name, []).extend(violations)
            found_here.extend(violations)
            if found is not None:
                merged[cluster.facts.name] = (cluster, found)
                if cue.taking:
                    with timed("cue input"):
                        cue.add(cluster.facts.name, cue_document(cluster.facts, found.value))
    finally:
        close = getattr(inputs, "close", None)
        if close is not None:
            close()  # a reader's thread stops when the merge fails
    cue.all_added()  # cue's last shard runs beside the render
    # The kept clusters' findings first, then the merge's, as when all was read first.
    result.violations = [v for keeper in result.kept for v in keeper.findings] + found_here
    return Merging(taken, result, merged)


def finish_compile(
    merging: Merging,
    project: Project,
    checks: Checks,
    cue: CueStream,
    tracker: Tracker | None = None,
    while_policies_run: Callable[[CompileResult], None] | None = None,
    reload: Callable[[str], ClusterInput | None] | None = None,
) -> CompileResult:
    """The second half: this thread renders, validates and serialises while `cue` (fed
    by `merge_inputs`) runs on other cores. `while_policies_run` gets the result, files
    complete, if nothing is wrong yet while cue may still run (the compile stages its
    tree then); only cue's findings can be added after it."""
    result, inputs = merging.result, merging.inputs
    for cluster, found in merging.merged.values():
        if tracker is not None:
            tracker.advance(cluster.facts.name)
        with _naming(cluster):
            compiled, violations = render_and_check(cluster, found, checks)
        _own(result, cluster, violations)
        if compiled is not None:
            result.clusters.append(compiled)
    _fleet_checks(result, inputs, project, checks, reload)
    if while_policies_run is not None and not _failing(result.violations):
        while_policies_run(result)
    with timed("cue wait"):
        for violation in _blamed(cue.findings(), merging.merged):
            result.own_findings.setdefault(violation.cluster, []).append(violation)
            result.violations.append(violation)
    _judge(result, checks, (c.facts.name for c in inputs))
    return result


def _own(result: CompileResult, cluster: ClusterInput, violations: list[Violation]) -> None:
    result.own_findings.setdefault(cluster.facts.name, []).extend(violations)
    result.violations.extend(violations)


def _fleet_checks(
    result: CompileResult,
    inputs: Sequence[ClusterInput],
    project: Project,
    checks: Checks,
    reload: Callable[[str], ClusterInput | None] | None,
) -> None:
    """The checks that span clusters: they read kept clusters' files from their records,
    and merge a kept cluster again only to blame a finding on it (read whole by `reload`
    first, when it was kept from its versions without their content)."""
    if checks.objects is not None:
        with timed("validate objects"):
            result.violations.extend(checks.objects.check_shared(result.shared))
    with timed("applications"):  # what the ApplicationSet controller would refuse or drop
        merged_by_name: dict[str, MergeResult] = {c.facts.name: c.merged for c in result.clusters}
        files = result.files
        known: dict[str, list[Application]] = {}
        if result.kept:
            for keeper in result.kept:
                files.update(keeper.generator_files)
                for app in keeper.applications:
                    known.setdefault(app.origin, []).append(app)
            kept_inputs = {c.facts.name: c for c in inputs if c.facts.name not in merged_by_name}
            merged_by_name = _MergedOnDemand(merged_by_name, kept_inputs, project, reload)
        generated = generate(files, known)
        flagged = {f.origin for f in generated.findings} | {f.also for f in generated.findings}
        result.applications = [a for a in generated.applications if a.origin not in flagged]
        result.violations.extend(blamed_findings(generated, merged_by_name))


class _MergedOnDemand(dict[str, MergeResult]):
    """Merged configs by cluster name; a kept cluster's is merged when first asked for."""

    def __init__(
        self,
        merged: Mapping[str, MergeResult],
        kept: Mapping[str, ClusterInput],
        project: Project,
        reload: Callable[[str], ClusterInput | None] | None,
    ) -> None:
        super().__init__(merged)
        self._kept, self._project, self._reload = kept, project, reload

    def __missing__(self, name: str) -> MergeResult:
        cluster = self._kept[name]  # KeyError: not a cluster
        whole = self._reload(name) if self._reload is not None else None
        found = merge_cluster(whole or cluster, self._project, full_history=False)
        self[name] = found
        return found

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default


def _failing(violations: Iterable[Violation]) -> bool:
    return any(v.severity == "error" for v in violations)


def _judge(result: CompileResult, checks: Checks, clusters: Iterable[str]) -> None:
    """Waivers and severities decide which findings fail the run; the rest are notices."""
    judged = apply_waivers(
        result.violations,
        checks.waivers,
        rules={r.id: r for r in all_rules()},
        clusters=clusters,
        today=checks.today or datetime.datetime.now(datetime.UTC).date(),
    )
    result.violations, result.notices = judged.failing, judged.notices


@contextmanager
def _naming(cluster: ClusterInput) -> Iterator[None]:
    """An error of a stage names the cluster it was compiling."""
    try:
        yield
    except CompilerError as err:
        raise err.with_cluster(cluster.facts.name) from None


def merge_cluster(
    cluster: ClusterInput, project: Project, *, full_history: bool = True
) -> MergeResult:
    """The cluster's merged config; a compile asks for the history that blame needs
    only (merge_layers), `explain` for every override."""
    return merge_layers(cluster.layers, project.lists, full_history=full_history)


def compile_one(
    cluster: ClusterInput, project: Project, checks: Checks
) -> tuple[CompiledCluster | None, list[Violation]]:
    """Merge, check and render one cluster (without the CUE policies, which run once
    for all clusters). A cluster is returned when its config has the schema's shape,
    even with other findings; the caller writes nothing while any violation stands."""
    merged, violations = merge_and_check(cluster, project, checks)
    if merged is None:
        return None, violations
    return render_and_check(cluster, merged, checks)


def merge_and_check(
    cluster: ClusterInput, project: Project, checks: Checks
) -> tuple[MergeResult | None, list[Violation]]:
    """The merged config, or None when it does not have the schema's shape."""
    with timed("merge"):
        merged = merge_cluster(cluster, project, full_history=False)
    with timed("validate config"):
        violations = checks.schema.check(cluster.facts.name, merged)
    if violations:  # rendering, guards and the policies assume the schema's shape
        return None, violations
    with timed("guards"):
        context = GuardContext(cluster.facts, merged.value, project.policy)
        for found in run_guards(context):
            where = where_set(merged, found.path)
            if found.path[:1] == ("cluster",):  # a fact (server, region): its record set it
                own = f"cluster/{cluster.facts.name}"
                where = next((r.describe() for r in merged.stack if r.layer == own), where)
            violations.append(
                Violation(
                    cluster.facts.name,
                    format_path(found.path),
                    found.rule,
                    found.message,
                    where,
                    severity=found.severity,
                )
            )
    return merged, violations


def render_and_check(
    cluster: ClusterInput, merged: MergeResult, checks: Checks
) -> tuple[CompiledCluster | None, list[Violation]]:
    name = cluster.facts.name
    with timed("render"):
        rendered = render_cluster(cluster.facts, merged.value)
        rendered.problems.extend(mark_replacements(rendered.objects, merged.value))
    if rendered.problems:
        return None, [_violation(name, p, merged) for p in rendered.problems]
    violations: list[Violation] = []
    if checks.objects is not None:
        with timed("validate objects"):
            violations = checks.objects.check(
                name, rendered.objects, lambda path: where_set(merged, path)
            )
    with timed("serialise"):
        files = cluster_files(cluster.facts, merged.value, rendered.objects, cluster.layers)
    compiled = CompiledCluster(
        facts=cluster.facts,
        input=cluster,
        merged=merged,
        objects=tuple(rendered.objects),
        files=files,
    )
    return compiled, violations


def _blamed(
    findings: Sequence[CueFinding], merged: Mapping[str, tuple[ClusterInput, MergeResult]]
) -> list[Violation]:
    found = []
    for finding in findings:
        config = merged[finding.cluster][1]
        where = where_set(config, _nearest_path(config, finding.path))
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
