"""The publish service: the tree to publish (compiled now, or read from a directory), and
its branch and pull request on the Argo CD repository. `publish`, `rollback` and each
poll of `watch` call `publish_tree`; `diff` calls `build_publication`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from compiler.emit import check_relative_path, walk_tree
from compiler.errors import UsageError
from compiler.layout import CLUSTERS_DIR, SHARED_DIR, TREE_ROOTS, cluster_dir
from compiler.operations import steps
from compiler.operations.audit import content_hash
from compiler.operations.trace import Run
from compiler.options import Destination, Selection, SourceOptions, open_project
from compiler.policy import Violation
from compiler.policy.cue import find_cue
from compiler.policy.cue_binary import cue_version
from compiler.publishing.blame import ConfigBlame
from compiler.publishing.forge import PULL_REQUEST, Forge, Term
from compiler.publishing.forge.select import Choice, choose_forge, make_forge, term_of
from compiler.publishing.gitrepo import check_branch, split_credentials
from compiler.publishing.markdown import code
from compiler.publishing.publisher import (
    Publication,
    PublishOutcome,
    Target,
    publish,
    rollback_branch,
    rolling_branch,
    scope_branch,
)
from compiler.publishing.treediff import NoBlame
from compiler.report import report_violations
from compiler.run import cluster_names, run_compile_stage
from compiler.secrets import register_url


@dataclass(frozen=True)
class Built:
    """A publication, or None when the compile found violations (reported on stderr)."""

    publication: Publication | None
    compiled: Sequence[str] = ()  # the clusters compiled for it; none for a tree read
    violations: Sequence[Violation] = ()  # why there is no publication (`serve` counts them)


@dataclass(frozen=True)
class Published:
    """What `publish_tree` did; `outcome` and `target` are None when nothing was published
    because the compile found violations."""

    run: Run
    compiled: Sequence[str]
    target: Target | None = None
    outcome: PublishOutcome | None = None
    violations: Sequence[Violation] = ()
    term: Term = PULL_REQUEST  # the forge's words: "merge request !N" on GitLab

    @property
    def status(self) -> str:
        """The final status: `no-change` when the repository already held the tree."""
        if self.outcome is not None and self.outcome.status in ("no-change", "up-to-date"):
            return "no-change"
        return "success"


def build_publication(
    source: SourceOptions, selection: Selection, *, from_dir: Path | None, cue: str | None
) -> Built:
    """The tree to publish or compare: compiled now, or read from `--from DIR`.

    Without a publication when the compile found violations (they are reported
    here): nothing is published from a config that breaks a rule.
    """
    if from_dir is not None:
        with steps.step("emit", source=str(from_dir)) as read:
            publication = _read_publication(from_dir, selection)
            read["tree"] = content_hash(publication.files)
        return Built(publication)
    result = run_compile_stage(source, selection, cue=cue)
    if result.violations:
        report_violations(result.violations, "text", sys.stderr, result.notices)
        return Built(None, cluster_names(result), result.violations)
    with steps.step("emit", clusters=len(result.clusters)) as built:
        built["tree"] = content_hash(result.files)  # the tree is written in git, not on disk
    publication = Publication(
        files=result.files,
        owned=list(TREE_ROOTS) if selection.whole_fleet else result.owned,
        clusters=[c.facts.name for c in result.clusters],
        blame=ConfigBlame(result.clusters),
        checks=_checks(source, cue, result.notices),
        objects=result.object_count,
        shard=selection.shard if selection.all_clusters else None,
    )
    return Built(publication, cluster_names(result))


def _notice_line(notice: Violation) -> str:
    """A waived finding or a warning, for the PR body's policy section (values as code)."""
    head = "**waived**" if notice.severity == "waived" else f"**{notice.severity}**"
    where = f" (waiver {code(notice.waiver)})" if notice.waiver else ""
    return (
        f"{head} {code(notice.rule)} on {code(notice.cluster)} at {code(notice.path)}: "
        f"{code(notice.message)}{where}"
    )


def _checks(source: SourceOptions, cue: str | None, notices: Sequence[Violation] = ()) -> list[str]:
    # The built-in rule sets the project selects and its own (issue 20).
    project = open_project(source)
    policies = [p.name for p in project.cue_files]
    return [
        "JSON Schema of the DSL (`policies/cluster-config.schema.json`)",
        f"CUE policies ({', '.join(policies)}) on cue {_cue_version(cue, project.root)}: "
        "one `cue` run for all clusters",
        "Kubernetes OpenAPI schemas (strict) and the vendored Calico and Argo CD CRDs",
        *(_notice_line(n) for n in notices),
    ]


def _read_publication(root: Path, selection: Selection) -> Publication:
    clusters = root / CLUSTERS_DIR
    if not clusters.is_dir():
        raise UsageError(f"--from {root}: not a compiled tree (no {CLUSTERS_DIR}/ directory)")
    present = sorted(p.name for p in clusters.iterdir() if p.is_dir() and not p.is_symlink())
    if selection.all_clusters:
        names = selection.shard.select(present) if selection.shard else present
        owned = (
            list(TREE_ROOTS)
            if selection.whole_fleet
            else [SHARED_DIR, *(cluster_dir(n) for n in names)]
        )
    else:
        names = sorted(set(selection.clusters))
        if not names:
            raise UsageError("name the clusters with --cluster NAME (repeatable) or use --all")
        missing = [n for n in names if n not in present]
        if missing:
            close = difflib.get_close_matches(missing[0], present, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(f"--from {root}: no {CLUSTERS_DIR}/{missing[0]}/ in the tree{hint}")
        owned = [SHARED_DIR, *(cluster_dir(n) for n in names)]
    if not names:
        raise UsageError(f"--from {root}: the tree has no clusters; refusing to publish none")
    files: dict[str, bytes] = {}
    for rel, kind in walk_tree(root):
        if kind == "link":
            raise UsageError(f"--from {root}: {rel} is a symbolic link; refusing to publish it")
        if kind == "file" and any(rel.startswith(f"{o}/") for o in owned):
            check_relative_path(rel)
            files[rel] = (root / rel).read_bytes()
    objects = sum(1 for rel in files if rel.endswith(".yaml") and "kustomization" not in rel)
    return Publication(
        files=files,
        owned=owned,
        clusters=names,
        blame=NoBlame(),
        checks=[f"compiled elsewhere (`--from {root}`): the checks of that compile apply"],
        objects=objects,
        shard=selection.shard if selection.all_clusters else None,
    )


def publish_tree(
    source: SourceOptions,
    selection: Selection,
    destination: Destination,
    *,
    run: Run,
    from_dir: Path | None = None,
    cue: str | None = None,
) -> Published:
    """Build the publication, then push its branch and open or update its pull request."""
    repo, base = destination.repo, destination.base
    register_url(repo)  # masked from the start, not only once git runs
    check_branch(base, "base branch")
    if repo.startswith("-"):
        raise UsageError(f"--repo {repo!r} is not a repository URL or path")
    choice, forge = _forge_of(destination)
    built = build_publication(source, selection, from_dir=from_dir, cue=cue)
    publication = built.publication
    if publication is None:
        return Published(run, built.compiled, violations=built.violations, term=term_of(choice))
    branch = destination.branch
    if branch is None and destination.rollback:
        branch = rollback_branch(base, publication.clusters)
    branch = check_branch(
        branch
        or scope_branch(
            base, publication.clusters, all_clusters=selection.all_clusters, shard=selection.shard
        )
    )
    labels = tuple(destination.labels)
    target = Target(
        repo,
        base,
        branch,
        run.trace("git"),
        labels,
        rollback=destination.rollback,
        reverts=tuple(destination.reverts),
    )
    scope = " ".join(f"--cluster {c}" for c in publication.clusters)
    outcome = publish(
        publication,
        target,
        forge=forge,
        dry_run=destination.dry_run,
        environ=os.environ,
        diff_command=f"gitops-compiler diff {'--all' if selection.whole_fleet else scope} "
        f"--against <clone of the Argo CD repository at {base}>",
    )
    if not destination.dry_run and choice is not None and choice.kind == "none" and choice.note:
        outcome = dataclasses.replace(outcome, notes=(choice.note, *outcome.notes))
    return Published(run, built.compiled, target, outcome, term=term_of(choice))


@dataclass(frozen=True)
class Rolled:
    """One poll's publish: what was published, and the clusters held for violations."""

    published: Published
    held: Sequence[str]


def publish_rolling(
    source: SourceOptions,
    selection: Selection,
    destination: Destination,
    *,
    run: Run,
    cue: str | None = None,
) -> Rolled:
    """`watch`'s publish: the clusters that pass go on the base's rolling branch; one with
    violations is reported (alert, status, audit) and left out, so the branch keeps its
    last published state (the base's) for it. `publish` stays all-or-nothing."""
    result = run_compile_stage(source, selection, cue=cue, show_progress=False)
    held = sorted({v.cluster for v in result.violations})
    if held:
        report_violations(result.violations, "text", sys.stderr, result.notices)
        _report_held(held, run)
    good = [c for c in result.clusters if c.facts.name not in held]
    if not good:
        return Rolled(Published(run, cluster_names(result)), held)
    files = dict(result.shared)
    for cluster in good:
        files.update(cluster.files)
    publication = Publication(
        files=files,
        owned=[SHARED_DIR, *(cluster_dir(c.facts.name) for c in good)],
        clusters=[c.facts.name for c in good],
        blame=ConfigBlame(good),
        checks=_checks(source, cue, result.notices),
        objects=sum(len(c.objects) for c in good) + len(result.shared),
    )
    target = Target(
        destination.repo,
        destination.base,
        rolling_branch(destination.base),
        run.trace("git"),
        tuple(destination.labels),
    )
    choice, forge = _forge_of(destination)
    outcome = publish(
        publication,
        target,
        forge=forge,
        dry_run=destination.dry_run,
        environ=os.environ,
        diff_command="gitops-compiler diff --all --against <clone of the Argo CD repository>",
    )
    published = Published(run, cluster_names(result), target, outcome, term=term_of(choice))
    return Rolled(published, held)


def _forge_of(destination: Destination) -> tuple[Choice | None, Forge | None]:
    """The forge chosen for the destination. A dry run makes no client (it needs no
    token), and its choice only words the output: one that cannot be made is no error."""
    args = (destination.forge, destination.repo, destination.forge_repo, os.environ)
    if destination.dry_run:
        try:
            return choose_forge(*args), None
        except UsageError:
            return None, None
    choice = choose_forge(*args)
    return choice, make_forge(choice, destination.repo, destination.forge_repo, os.environ)


def _report_held(held: Sequence[str], run: Run) -> None:
    """Alert, status and an audit line for the clusters a poll holds back."""
    with steps.step("policy", clusters=len(held)) as holding:
        holding["held"] = list(held)  # the audit line names them
    record = {
        "command": "watch",
        "run_id": run.id,
        "status": "held",
        "clusters": list(held),
        "error": "violations found: left at their last published state until their inputs change",
    }
    notifier = steps.current().notifier
    notifier.alert(record)
    notifier.status(record)


def report_published(published: Published, fmt: str) -> None:
    """What a publish did, for people (`text`) or machines (`json`)."""
    outcome, target, noun = published.outcome, published.target, published.term.noun
    if outcome is None or target is None:
        print("nothing published: fix the violations first", file=sys.stderr)
        return
    for note in outcome.notes:
        print(f"warning: {note}", file=sys.stderr)
    if fmt == "json":
        json.dump(_record(outcome, target, published.run), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return
    if outcome.status == "no-change":
        shown = split_credentials(target.url)[0]  # user:password@ never reaches stdout
        print(f"nothing to publish: the compiled tree equals {target.base} of {shown}")
        return
    if outcome.status == "dry-run":
        print(f"branch: {outcome.branch}\n\ncommit message:\n{outcome.message}")
        print(f"{noun} title: {outcome.title}\n\n{noun} body:\n{outcome.body}")
        return
    moved = (
        f"pushed {outcome.branch} ({outcome.commit[:12]})"
        if outcome.status == "pushed"
        else f"{outcome.branch} already holds this tree ({outcome.commit[:12]}); not pushed"
    )
    if outcome.pull is None:
        print(f"{moved}; no forge: open the {noun} from {outcome.branch} yourself")
        # Its title and body too (issue 17, item 8): no second --dry-run run to get them.
        print(f"\n{noun} title: {outcome.title}\n\n{noun} body:\n{outcome.body}")
    else:
        pull = outcome.pull
        print(f"{moved}; {pull.name} {pull.action}: {pull.pull.url}")
    print(f"trace id {target.trace_id}")


def _record(outcome: PublishOutcome, target: Target, run: Run) -> dict[str, object]:
    pull = outcome.pull
    return {
        "status": outcome.status,
        "branch": outcome.branch,
        "commit": outcome.commit,
        "run_id": run.id,
        "trace_id": target.trace_id,
        "clusters": [c.cluster for c in outcome.diff.clusters] if outcome.diff else [],
        # The pull request as written (or to write by hand with --forge none); none when
        # nothing changed.
        "title": outcome.title or None,
        "body": outcome.body or None,
        # `pull_request` on every forge; `kind` and `reference` in the forge's own words
        # (GitLab: "merge request", "!12").
        "pull_request": (
            {
                "number": pull.pull.number,
                "url": pull.pull.url,
                "action": pull.action,
                "kind": pull.term.noun,
                "reference": pull.term.reference(pull.pull.number),
            }
            if pull
            else None
        ),
    }


def _cue_version(flag: str | None, project: Path) -> str:
    """The version the compile just checked (read once a binary, compiler/policy/cue_binary.py)."""
    return cue_version(find_cue(flag, os.environ, project=project))
