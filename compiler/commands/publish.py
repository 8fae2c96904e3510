"""`publish` and `diff`: the compiled tree against the Argo CD repository (or any tree)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from compiler.commands.common import Selection, SourceOptions
from compiler.commands.compile import run_compile_stage
from compiler.emit import check_relative_path, walk_tree
from compiler.errors import EXIT_FINDINGS, EXIT_OK, UsageError
from compiler.layout import SHARED_DIR, TREE_ROOTS, cluster_dir
from compiler.operations import steps
from compiler.operations.audit import content_hash
from compiler.operations.trace import Run
from compiler.publishing.blame import ConfigBlame
from compiler.publishing.forge import Forge
from compiler.publishing.gitrepo import Workspace, check_branch
from compiler.publishing.prbody import ReviewContext, render_body
from compiler.publishing.publisher import (
    BRANCH_PREFIX,
    Publication,
    PublishOutcome,
    Target,
    publish,
    scope_branch,
)
from compiler.publishing.treediff import NoBlame, diff_trees, format_text
from compiler.report import report_violations
from compiler.secrets import register_url


def build_publication(
    source: SourceOptions, selection: Selection, *, from_dir: Path | None, cue: str | None
) -> Publication | None:
    """The tree to publish or compare: compiled now, or read from `--from DIR`.

    None when the compile found violations (they are reported here): nothing
    is published from a config that breaks a rule.
    """
    if from_dir is not None:
        with steps.step("emit", source=str(from_dir)) as read:
            publication = _read_publication(from_dir, selection)
            read["tree"] = content_hash(publication.files)
        return publication
    result = run_compile_stage(source, selection, cue=cue)
    if result.violations:
        report_violations(result.violations, "text", sys.stderr)
        return None
    with steps.step("emit", clusters=len(result.clusters)) as built:
        built["tree"] = content_hash(result.files)  # the tree is written in git, not on disk
    policies = sorted(p.name for p in (source.project_dir / "policies").glob("*.cue"))
    checks = [
        "JSON Schema of the DSL (`policies/cluster-config.schema.json`)",
        f"CUE policies ({', '.join(policies)}): one `cue` run for all clusters",
        "Kubernetes OpenAPI schemas (strict) and the vendored Calico and Argo CD CRDs",
    ]
    return Publication(
        files=result.files,
        owned=list(TREE_ROOTS) if selection.whole_fleet else result.owned,
        clusters=[c.facts.name for c in result.clusters],
        blame=ConfigBlame(result.clusters),
        checks=checks,
        objects=result.object_count,
    )


def _read_publication(root: Path, selection: Selection) -> Publication:
    if not (root / "clusters").is_dir():
        raise UsageError(f"--from {root}: not a compiled tree (no clusters/ directory)")
    present = sorted(
        p.name for p in (root / "clusters").iterdir() if p.is_dir() and not p.is_symlink()
    )
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
            raise UsageError(f"--from {root}: no clusters/{missing[0]}/ in the tree")
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
    )


def publish_command(
    *,
    source: SourceOptions,
    selection: Selection,
    repo: str,
    base: str,
    branch: str | None,
    forge_kind: str,
    forge_repo: str | None,
    from_dir: Path | None,
    dry_run: bool,
    cue: str | None,
    run_id: str | None,
    labels: list[str],
    fmt: str,
    rollback: bool = False,
) -> int:
    run = steps.current().run if run_id in (None, steps.current().run.id) else Run(run_id)
    register_url(repo)  # masked from the start, not only once git runs
    check_branch(base, "base branch")
    if repo.startswith("-"):
        raise UsageError(f"--repo {repo!r} is not a repository URL or path")
    forge = None if dry_run else _forge(forge_kind, forge_repo, repo)
    publication = build_publication(source, selection, from_dir=from_dir, cue=cue)
    if publication is None:
        print("nothing published: fix the violations first", file=sys.stderr)
        return EXIT_FINDINGS
    if branch is None and rollback:
        branch = (
            f"{BRANCH_PREFIX}/{base.replace('/', '-')}/rollback-{'-'.join(publication.clusters)}"
        )
    branch = check_branch(
        branch
        or scope_branch(
            base, publication.clusters, all_clusters=selection.all_clusters, shard=selection.shard
        )
    )
    target = Target(repo, base, branch, run.trace("git"), tuple(labels), rollback=rollback)
    scope = " ".join(f"--cluster {c}" for c in publication.clusters)
    outcome = publish(
        publication,
        target,
        forge=forge,
        dry_run=dry_run,
        environ=os.environ,
        diff_command=f"gitops-compiler diff {'--all' if selection.whole_fleet else scope} "
        f"--against <clone of the Argo CD repository at {base}>",
    )
    _report(outcome, target, run, fmt)
    operations = steps.current().outcome
    operations["status"] = (
        "no-change" if outcome.status in ("no-change", "up-to-date") else "success"
    )
    operations["trace_id"] = target.trace_id
    if outcome.pull is not None:
        operations["pull_request"] = outcome.pull.pull.url
    return EXIT_OK


def _forge(kind: str, forge_repo: str | None, repo_url: str) -> Forge | None:
    if kind == "none":
        return None
    from compiler.publishing.forge.github import github_forge_from_env, parse_repo

    name = forge_repo or parse_repo(repo_url)
    if name is None:
        raise UsageError(
            f"cannot tell the GitHub repository from {repo_url!r}: "
            "pass --forge-repo OWNER/NAME, or --forge none to push the branch only"
        )
    return github_forge_from_env(name, os.environ)


def _report(outcome: PublishOutcome, target: Target, run: Run, fmt: str) -> None:
    for note in outcome.notes:
        print(f"warning: {note}", file=sys.stderr)
    if fmt == "json":
        pull = outcome.pull
        record = {
            "status": outcome.status,
            "branch": outcome.branch,
            "commit": outcome.commit,
            "run_id": run.id,
            "trace_id": target.trace_id,
            "clusters": [c.cluster for c in outcome.diff.clusters] if outcome.diff else [],
            "pull_request": (
                {"number": pull.pull.number, "url": pull.pull.url, "action": pull.action}
                if pull
                else None
            ),
        }
        json.dump(record, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return
    if outcome.status == "no-change":
        print(f"nothing to publish: the compiled tree equals {target.base} of {target.url}")
        return
    if outcome.status == "dry-run":
        print(f"branch: {outcome.branch}\n\ncommit message:\n{outcome.message}")
        print(f"pull request title: {outcome.title}\n\npull request body:\n{outcome.body}")
        return
    moved = (
        f"pushed {outcome.branch} ({outcome.commit[:12]})"
        if outcome.status == "pushed"
        else f"{outcome.branch} already holds this tree ({outcome.commit[:12]}); not pushed"
    )
    if outcome.pull is None:
        print(f"{moved}; no forge: open the pull request from {outcome.branch} yourself")
    else:
        pull = outcome.pull
        print(f"{moved}; pull request #{pull.pull.number} {pull.action}: {pull.pull.url}")
    print(f"trace id {target.trace_id}")


def diff_command(
    *,
    source: SourceOptions,
    selection: Selection,
    against: str,
    from_dir: Path | None,
    exit_code: bool,
    fmt: str,
    cue: str | None,
) -> int:
    publication = build_publication(source, selection, from_dir=from_dir, cue=cue)
    if publication is None:
        return EXIT_FINDINGS
    old = _read_against(against, publication.owned)
    diff = diff_trees(old, publication.files, publication.blame)
    if fmt == "markdown":
        context = ReviewContext(
            title="Cluster config diff",
            trace_id=Run().trace("git"),
            base=against,
            checks=publication.checks,
            objects=publication.objects,
            diff_command="gitops-compiler diff",
        )
        sys.stdout.write(render_body(diff, context))
    else:
        sys.stdout.write(format_text(diff))
    return EXIT_FINDINGS if exit_code and not diff.empty else EXIT_OK


def _read_against(against: str, prefixes: Sequence[str]) -> dict[str, bytes]:
    """The old side: a directory holding a tree, or `REF[:PATH]` of the git repository here."""
    path = Path(against)
    if path.is_dir():
        return {
            rel: (path / rel).read_bytes()
            for rel, kind in walk_tree(path)
            if kind == "file" and any(rel.startswith(f"{p}/") for p in prefixes)
        }
    ref, _, sub = against.partition(":")
    sub = sub.strip("/")
    repo = Workspace.existing(Path.cwd(), environ=os.environ)
    commit = repo.resolve(ref)
    inner = [f"{sub}/{p}" if sub else p for p in prefixes]
    files = repo.read_files(commit, inner)
    return {rel[len(sub) + 1 :] if sub else rel: data for rel, data in files.items()}
