"""Publish a compiled tree: a branch on the Argo CD repository and a pull request for it.

One branch per scope (the clusters published against one base), so a new
config version updates the open pull request instead of opening a second one
that would revert the first if merged out of order. Idempotent: a branch that
already carries the compiled content is left as it is, and a tree equal to the
base branch publishes nothing at all. Push races (the branch moved between our
fetch and our push) are fetched again, rebuilt and retried, a bounded number
of times.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from compiler.argocd.applications import APPSETS_DIR, generate
from compiler.errors import OutsideError, RefusedError, UsageError
from compiler.layout import CLUSTERS_DIR, LOCK_FILE, cluster_dir, read_path
from compiler.operations import steps
from compiler.publishing.forge import Forge, PullRequestOutcome, open_or_update
from compiler.publishing.gitrepo import PushRace, Workspace, split_credentials
from compiler.publishing.markdown import code, text
from compiler.publishing.prbody import GITHUB_BODY_LIMIT, ReviewContext, render_body
from compiler.publishing.treediff import Blame, ClusterDiff, TreeDiff, diff_trees
from compiler.report import names_in_brief
from compiler.shard import Shard

BRANCH_PREFIX = "gitops-compiler"
TRAILER = "Gitops-Compiler-Branch"  # marks our commits: those we may rebuild
PUSH_ATTEMPTS = 4
_VERSION_LINES = 40


@dataclass(frozen=True)
class Publication:
    """What to publish: the compiled files and the directories they replace."""

    files: Mapping[str, bytes]
    owned: Sequence[str]  # `layout.owned_directories`: applicationsets, clusters/<c>
    clusters: Sequence[str]
    blame: Blame
    checks: Sequence[str]  # what passed, for the body's policy results
    objects: int
    # A sharded publish of the fleet owns every clusters/<c> of its shard, in the
    # repository too: a cluster deleted from the table is removed by its shard (issue 16).
    shard: Shard | None = None


@dataclass(frozen=True)
class Target:
    url: str
    base: str
    branch: str
    trace_id: str  # of the git step; the commit and the body carry it
    labels: Sequence[str] = ("gitops-compiler",)
    rollback: bool = False  # titled and introduced as a return to older versions
    # A rollback's reverts as written in the table ("cluster/x@5 to cluster/x@3 as @6").
    reverts: Sequence[str] = ()


@dataclass(frozen=True)
class PublishOutcome:
    status: str  # "no-change", "up-to-date", "pushed" or "dry-run"
    branch: str
    diff: TreeDiff | None = None
    commit: str = ""
    message: str = ""
    title: str = ""
    body: str = ""
    pull: PullRequestOutcome | None = None
    notes: tuple[str, ...] = ()  # things the user should know (foreign commits kept)


def scope_branch(
    base: str, clusters: Sequence[str], *, all_clusters: bool, shard: Shard | None = None
) -> str:
    """`gitops-compiler/<base>/cluster-<c>`, `.../clusters-<hash>`, `.../all-clusters`
    or `.../shard-<i>-of-<n>`."""
    where = base.replace("/", "-")
    if all_clusters and shard is not None:
        return f"{BRANCH_PREFIX}/{where}/shard-{shard.index}-of-{shard.count}"
    if all_clusters:
        return f"{BRANCH_PREFIX}/{where}/all-clusters"
    if len(clusters) == 1:
        return f"{BRANCH_PREFIX}/{where}/cluster-{clusters[0]}"
    return f"{BRANCH_PREFIX}/{where}/clusters-{_digest(clusters)}"


def rollback_branch(base: str, clusters: Sequence[str]) -> str:
    """`gitops-compiler/<base>/rollback-<c>`, or `.../rollback-clusters-<hash>` for a
    rollback of a shared layer that reaches several clusters (a branch name of every
    cluster's would pass git's limits in a fleet)."""
    where = base.replace("/", "-")
    if len(clusters) == 1:
        return f"{BRANCH_PREFIX}/{where}/rollback-{clusters[0]}"
    return f"{BRANCH_PREFIX}/{where}/rollback-clusters-{_digest(clusters)}"


def _digest(clusters: Sequence[str]) -> str:
    """A set of clusters in a branch name's room: a fleet's names would pass git's limits."""
    return hashlib.sha256(",".join(sorted(clusters)).encode()).hexdigest()[:10]


def rolling_branch(base: str) -> str:
    """`gitops-compiler/<base>/watch`: the one branch `watch` keeps updating for a base.

    One per base, not one per cluster: every publication also rewrites the shared
    `applicationsets/`, so per-cluster pull requests would conflict with each other,
    and a fleet of thousands would open thousands of them (issue 16).
    """
    return f"{BRANCH_PREFIX}/{base.replace('/', '-')}/watch"


def publish(
    publication: Publication,
    target: Target,
    *,
    forge: Forge | None,
    dry_run: bool,
    environ: Mapping[str, str],
    diff_command: str,
    workspace: Callable[[Path], Workspace] | None = None,
) -> PublishOutcome:
    shown_url, _, _ = split_credentials(target.url)  # logs need the host, not the password
    with (
        tempfile.TemporaryDirectory(prefix="gitops-publish-") as scratch,
        steps.step("git", branch=target.branch, base=target.base, url=shown_url) as pushed,
    ):
        make = workspace or (lambda d: Workspace(target.url, d, environ=environ))
        limit = forge.body_limit if forge is not None else GITHUB_BODY_LIMIT
        ws = make(Path(scratch) / "repo.git")
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            outcome, lease = _attempt(
                ws, publication, target, dry_run=dry_run, diff_command=diff_command, limit=limit
            )
            if outcome.status != "pushed":
                break
            try:
                ws.push(outcome.commit, target.branch, expect=lease)
                break
            except PushRace:
                if attempt == PUSH_ATTEMPTS:
                    raise OutsideError(
                        f"push to {target.branch} was rejected {PUSH_ATTEMPTS} times because "
                        "the branch kept moving (another run or a person is pushing to it); "
                        "try again when it is quiet"
                    ) from None
        pushed["status"], pushed["commit"] = outcome.status, outcome.commit
    if forge is None or outcome.status in ("no-change", "dry-run"):
        return outcome
    with steps.step("argocd", branch=target.branch) as opened:
        pull = _open_pull(forge, target, outcome)
        opened["pull_request"], opened["action"] = pull.pull.url, pull.action
        opened["pull_request_name"] = pull.name  # "merge request !12" on GitLab
    return dataclasses.replace(outcome, pull=pull)


def _open_pull(forge: Forge, target: Target, outcome: PublishOutcome) -> PullRequestOutcome:
    return open_or_update(
        forge,
        head=target.branch,
        base=target.base,
        title=outcome.title,
        body=outcome.body,
        labels=target.labels,
        # A branch we did not move keeps the body its reviewers are reading.
        update=outcome.status == "pushed",
    )


def _attempt(
    ws: Workspace,
    publication: Publication,
    target: Target,
    *,
    dry_run: bool,
    diff_command: str,
    limit: int,
) -> tuple[PublishOutcome, str | None]:
    """One fetch-build round; the outcome, and the branch's commit the push must replace."""
    heads = ws.heads(target.base, target.branch)
    if target.base not in heads:
        raise UsageError(f"base branch {target.base!r} does not exist in {ws.url}")
    ws.fetch(*heads)
    base, tip = heads[target.base], heads.get(target.branch)
    owned = _owned(ws, publication, base, tip)
    old = ws.read_files(base, owned)
    diff = diff_trees(old, publication.files, publication.blame)
    wanted = ws.tree_with(base, publication.files, owned)
    if wanted == ws.tree_of(base):
        return PublishOutcome("no-change", target.branch, diff), tip
    if CLUSTERS_DIR not in publication.owned:  # a part of the fleet: the rest is in git
        _check_fleet(ws, wanted, publication)
    title = rollback_title(diff, target.reverts) if target.rollback else pull_title(diff)
    context = ReviewContext(
        title=title,
        intro=rollback_intro(diff, target.reverts) if target.rollback else "",
        trace_id=target.trace_id,
        base=target.base,
        checks=publication.checks,
        objects=publication.objects,
        diff_command=diff_command,
    )
    body = render_body(diff, context, limit)
    message = commit_message(title, diff, target)
    notes: list[str] = []
    parent, tree = base, wanted
    if tip is not None:
        on_tip = ws.tree_with(tip, publication.files, owned)
        if on_tip == ws.tree_of(tip):
            status = "dry-run" if dry_run else "up-to-date"
            return PublishOutcome(status, target.branch, diff, tip, message, title, body), tip
        foreign = [c for c in ws.commits_between(base, tip) if f"\n{TRAILER}: " not in c[2]]
        if foreign:
            # Never drop a commit someone else made: ours goes on top of theirs.
            parent, tree = tip, on_tip
            shown = ", ".join(f"{sha[:10]} by {who}" for sha, who, _ in foreign[:5])
            notes.append(
                f"{target.branch} has commits not made by gitops-compiler ({shown}); "
                "the update is committed on top of them"
            )
    commit = ws.commit(tree, parent, message)
    status = "dry-run" if dry_run else "pushed"
    outcome = PublishOutcome(
        status, target.branch, diff, commit, message, title, body, notes=tuple(notes)
    )
    return outcome, tip


def _check_fleet(ws: Workspace, tree: str, publication: Publication) -> None:
    """A publication of a part of the fleet (a shard, named clusters, a watch's or a
    rollback's) compiled and checked only its own clusters: what spans the fleet (two
    Applications of one name, two clusters on one API server) is checked here, on the
    tree the branch would hold, the other clusters in git included."""
    files = ws.read_files(
        tree,
        [APPSETS_DIR, CLUSTERS_DIR],
        keep=lambda p: read_path(p).kind in ("applicationset", "cluster", "addon"),
    )
    shard, named = publication.shard, set(publication.clusters)

    def mine(cluster: str) -> bool:
        return shard.holds(cluster) if shard is not None else cluster in named

    ours = [
        f
        for f in generate(files).findings
        if any(c and mine(c) for c in (read_path(o).cluster for o in (f.origin, f.also) if o))
    ]
    if ours:
        who = f"shard {shard}" if shard is not None else names_in_brief(sorted(named))
        shown = "\n".join(f"  {f.message} [{f.rule}]" for f in ours[:5])
        more = f"\n  and {len(ours) - 5} more" if len(ours) > 5 else ""
        raise RefusedError(
            f"{who}: with the other clusters in {CLUSTERS_DIR}/, the tree would break "
            f"{len(ours)} fleet check(s):\n{shown}{more}"
        )


def _owned(ws: Workspace, publication: Publication, *commits: str | None) -> list[str]:
    """The directories the publication replaces; a shard's include the clusters of its
    shard that the base or our branch still hold and the compile no longer produced."""
    if publication.shard is None:
        return list(publication.owned)
    found = {n for c in commits if c for n in ws.subdirectories(c, CLUSTERS_DIR)}
    mine = [cluster_dir(n) for n in found if publication.shard.holds(n)]
    return sorted(set(publication.owned).union(mine))


def pull_title(diff: TreeDiff) -> str:
    names = [c.cluster for c in diff.clusters]
    if not names:
        return "Cluster config: ApplicationSets"
    if len(names) <= 3:
        return f"Cluster config: {', '.join(names)}"
    return f"Cluster config: {len(names)} clusters"


def rollback_title(diff: TreeDiff, reverts: Sequence[str] = ()) -> str:
    names = names_in_brief([c.cluster for c in diff.clusters], 3) or "clusters"
    if reverts:
        return f"Rollback {names}: {'; '.join(reverts)}"
    versions = sorted({v for c in diff.clusters for v in c.new_versions if "@" in v})
    # A layer the older versions did not have yet (an optional env layer) goes away: say so.
    versions += sorted({f"{v} → (none)" for c in diff.clusters for v in _dropped_layers(c)})
    shown = ", ".join(versions[:4]) + (" …" if len(versions) > 4 else "")
    return f"Rollback {names} to {shown}" if shown else f"Rollback {names}"


def _dropped_layers(cluster: ClusterDiff) -> list[str]:
    """The layer versions the cluster had that the rollback has no version of at all."""
    kept = {v.split("@")[0] for v in cluster.new_versions if "@" in v}
    return [v for v in cluster.old_versions if "@" in v and v.split("@")[0] not in kept]


def rollback_intro(diff: TreeDiff, reverts: Sequence[str] = ()) -> str:
    """What a rollback reverts, and to which versions, layer by layer."""
    lines = [
        "**Rollback.** Merging this returns the clusters below to the configuration "
        "compiled from older layer versions; Argo CD then syncs them back to it.\n"
    ]
    if reverts:
        lines.append(
            "The config table records the revert as new versions holding the old content, "
            "so later publishes keep it: " + "; ".join(f"`{r}`" for r in reverts) + ".\n"
        )
    for cluster in diff.clusters:
        now = {v.split("@")[0]: v for v in cluster.old_versions if "@" in v}
        back = [v for v in cluster.new_versions if "@" in v and v not in cluster.old_versions]
        moves = [f"{code(now.get(v.split('@')[0], '(none)'))} → {code(v)}" for v in back]
        moves += [f"{code(v)} → (none)" for v in _dropped_layers(cluster)]
        lines.append(
            f"- **{text(cluster.cluster)}**: " + (", ".join(moves) or "no layer version moves")
        )
    lines.append(
        "\nOverlays are as in the config repository now (their hashes are in the versions "
        "table); revert them in git if they are part of the problem.\n"
    )
    return "\n".join(lines)


def commit_message(title: str, diff: TreeDiff, target: Target) -> str:
    added = sum(c.count("added") for c in diff.clusters)
    changed = sum(c.count("changed") for c in diff.clusters)
    removed = sum(c.count("removed") for c in diff.clusters)
    lines = [
        title,
        "",
        f"{len(diff.clusters)} cluster(s): {added} object(s) added, {changed} changed, "
        f"{removed} removed.",
        "",
        "Config versions:",
    ]
    for cluster in diff.clusters[:_VERSION_LINES]:
        lines.append(f"  {cluster.cluster}: {' '.join(cluster.new_versions) or '(removed)'}")
    if len(diff.clusters) > _VERSION_LINES:
        lines.append(f"  …and {len(diff.clusters) - _VERSION_LINES} more ({LOCK_FILE})")
    lines += ["", f"{TRAILER}: {target.branch}", f"Trace-Id: {target.trace_id}", ""]
    return "\n".join(lines)
