"""The pull request body: what a reviewer needs to approve from the body alone.

Order: security-relevant changes first, then each cluster's objects added,
changed (field, old -> new, who set it) and removed, the policy results, the
config versions and the trace id. GitHub refuses bodies over 65,536
characters: the fixed parts always fit, the per-cluster details are cut
whole, cluster by cluster, with a note saying how to see the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from compiler import __version__
from compiler.argocd.applications import AppChange
from compiler.layout import CLUSTERS_DIR, LOCK_FILE
from compiler.publishing.markdown import code, text
from compiler.publishing.treediff import (
    FLEET,
    ClusterDiff,
    FieldChange,
    ObjectChange,
    TreeDiff,
    show_value,
)

GITHUB_BODY_LIMIT = 65_536
_SECURITY_ROWS = 60  # beyond this, a reviewer needs the terminal diff anyway
_ADDED_FIELDS = 12  # content lines shown for an added security-relevant object
_VERSION_ROWS = 50


@dataclass(frozen=True)
class ReviewContext:
    """What the body says besides the diff."""

    title: str
    trace_id: str
    base: str
    checks: Sequence[str]  # one line per check that passed, e.g. "CUE policies: 12 rules"
    objects: int  # objects compiled
    diff_command: str  # how to see the full diff in a terminal
    intro: str = ""  # Markdown after the summary (a rollback says what it reverts)


def render_body(diff: TreeDiff, context: ReviewContext, limit: int = GITHUB_BODY_LIMIT) -> str:
    intro = f"\n{context.intro}" if context.intro else ""
    head = _header(diff, context) + intro + _security(diff) + _applications(diff)
    tail = _policy(diff, context) + _versions(diff) + _footer(context)
    budget = limit - len(head) - len(tail) - 400  # room for the truncation note
    details: list[str] = []
    left_out: list[str] = []
    for block_name, block in _cluster_blocks(diff):
        if not left_out and len(block) <= budget:
            details.append(block)
            budget -= len(block)
        else:
            left_out.append(block_name)
    if left_out:
        details.append(
            f"\n> **Truncated:** the details of {len(left_out)} of "
            f"{len(diff.clusters) + bool(diff.fleet)} section(s) do not fit in a pull request "
            f"body ({_names([text(n) for n in left_out])}). "
            f"See them with {code(context.diff_command)}.\n"
        )
    body = head + "".join(details) + tail
    if len(body) > limit:  # only when the fixed parts alone are too long: cut hard
        note = f"\n\n> **Truncated** at {limit} characters: see {code(context.diff_command)}.\n"
        # At a line's end: a cut inside a code span would set its value free as markup.
        body = body[: body.rfind("\n", 0, limit - len(note)) + 1] + note
    return body


def _header(diff: TreeDiff, context: ReviewContext) -> str:
    added = sum(c.count("added") for c in diff.clusters)
    changed = sum(c.count("changed") for c in diff.clusters)
    removed = sum(c.count("removed") for c in diff.clusters)
    statuses = [
        f"**{text(c.cluster)}**" + ("" if c.status == "changed" else f" ({c.status})")
        for c in diff.clusters
    ]
    fleet = f"; {len(diff.fleet)} fleet-wide file(s) changed" if diff.fleet else ""
    return (
        f"## {context.title}\n\n"
        f"Against {code(context.base)}: {_names(statuses)}: {added} object(s) added, "
        f"{changed} changed, {removed} removed{fleet}.\n"
    )


def _security(diff: TreeDiff) -> str:
    rows: list[str] = []
    for obj in diff.security():
        if obj.action == "changed":
            rows += [_row(obj, _change(f), f.set_by) for f in obj.fields] or [
                _row(obj, "changed", "")
            ]
        else:
            rows.append(_row(obj, _grant(obj) or obj.action, obj.set_by))
    removed_clusters = [c.cluster for c in diff.clusters if c.status == "removed"]
    deleted = [a for a in diff.applications if a.action != "create"]
    if not rows and not removed_clusters and not deleted and not diff.immutable:
        return "\n### Security-relevant changes\n\nNone: no RBAC, network policy, Calico or quota change.\n"
    out = ["\n### ⚠️ Security-relevant changes\n"]
    for name in removed_clusters:
        out.append(
            f"- **Cluster {code(name)} leaves the tree:** Argo CD deletes its Applications "
            "(resources are preserved on the cluster).\n"
        )
    for change in deleted:  # a deleted or moved Application stops managing what it deployed
        out.append(f"- **{_app_line(change)}**\n")
    for refused in diff.immutable:
        mark = "Replaced" if refused.accepted else "Sync will fail"
        out.append(f"- **{mark}** on {text(refused.cluster)}: {text(refused.describe())}\n")
    if rows:
        out.append("\n| cluster | object | change | set by |\n|---|---|---|---|\n")
        out += rows[:_SECURITY_ROWS]
        if len(rows) > _SECURITY_ROWS:
            out.append(f"\n…and {len(rows) - _SECURITY_ROWS} more rows (see the details below).\n")
    return "".join(out)


def _applications(diff: TreeDiff) -> str:
    """What the ApplicationSet controller will do once this merges."""
    if not diff.applications:
        return ""
    lines = "".join(f"- {_app_line(change)}\n" for change in diff.applications)
    return f"\n### Argo CD Applications\n\n{lines}"


def _app_line(change: AppChange) -> str:
    app = change.app
    if change.action == "move" and change.was is not None:
        return (
            f"Argo CD will move Application {code(app.name)}: {code(change.was.destination)} "
            f"→ {code(app.destination)}"
        )
    where = f", namespace {code(app.namespace)}" if app.namespace else ""
    return f"Argo CD will {change.action} Application {code(app.name)} → {code(app.server)}{where}"


def _row(obj: ObjectChange, change: str, set_by: str) -> str:
    cluster, kind = text(obj.cluster, cell=True), text(obj.kind, cell=True)
    return f"| {cluster} | {kind} {_cell(obj.name)} | {change} | {_cell(set_by)} |\n"


def _grant(obj: ObjectChange) -> str:
    """What an added binding grants to whom, in one line (the question a reviewer asks)."""
    if obj.action != "added" or not obj.kind.endswith("RoleBinding"):
        return ""
    values = {f.path: f.new for f in obj.fields}
    role = f"{text(str(values.get('roleRef.kind')), cell=True)} {_cell(str(values.get('roleRef.name')))}"
    subjects = []
    for i in range(len(values)):
        if f"subjects[{i}].name" not in values:
            break
        subjects.append(
            f"{text(str(values.get(f'subjects[{i}].kind')), cell=True)} "
            f"{_cell(str(values[f'subjects[{i}].name']))}"
        )
    return f"added: grants {role} to {', '.join(subjects) or 'nobody'}"


def _change(field: FieldChange) -> str:
    return f"{_cell(field.path)}: {_cell(show_value(field.old))} → {_cell(show_value(field.new))}"


def _cluster_blocks(diff: TreeDiff) -> list[tuple[str, str]]:
    blocks = [(c.cluster, _cluster_block(text(c.cluster), c.objects, c)) for c in diff.clusters]
    if diff.fleet:
        blocks.append((FLEET, _cluster_block("ApplicationSets (every cluster)", diff.fleet)))
    return blocks


def _cluster_block(
    title: str, objects: Sequence[ObjectChange], cluster: ClusterDiff | None = None
) -> str:
    status = f" ({cluster.status})" if cluster is not None and cluster.status != "changed" else ""
    out = [f"\n### {title}{status}\n"]
    if not objects:
        out.append("\nNo object changed; only the config versions moved.\n")
    for action in ("added", "changed", "removed"):
        chosen = [o for o in objects if o.action == action]
        if not chosen:
            continue
        out.append(f"\n**{action.capitalize()}** ({len(chosen)})\n\n")
        for obj in chosen:
            out.append(_object_item(obj))
    return "".join(out)


def _object_item(obj: ObjectChange) -> str:
    verb = "deleted by" if obj.action == "removed" else "set by"
    who = f" — {verb} {code(obj.set_by)}" if obj.set_by else ""
    line = f"- {text(obj.kind)} {code(obj.name)}{who}\n"
    if obj.action == "added" and obj.security and obj.fields:
        shown = obj.fields[:_ADDED_FIELDS]
        line += "".join(f"  - {code(f.path)}: {code(show_value(f.new))}\n" for f in shown)
        if len(obj.fields) > _ADDED_FIELDS:
            line += f"  - …and {len(obj.fields) - _ADDED_FIELDS} more fields\n"
    elif obj.action == "changed" and obj.fields:
        line += "\n  | field | old | new | set by |\n  |---|---|---|---|\n"
        for f in obj.fields:
            line += (
                f"  | {_cell(f.path)} | {_cell(show_value(f.old))} | "
                f"{_cell(show_value(f.new))} | {_cell(f.set_by)} |\n"
            )
        line += "\n"
    elif obj.action == "changed":
        line += "  - the file changed, but it is not an object the diff can read\n"
    return line


def _policy(diff: TreeDiff, context: ReviewContext) -> str:
    checks = "".join(f"- {check}\n" for check in context.checks)
    return (
        "\n### Policy results\n\n"
        f"✅ No violations in {context.objects} object(s) of "
        f"{len(diff.clusters)} changed cluster(s).\n\n{checks}"
    )


def _versions(diff: TreeDiff) -> str:
    out = ["\n### Config versions\n\n| cluster | compiled from | was |\n|---|---|---|\n"]
    for cluster in diff.clusters[:_VERSION_ROWS]:
        now = "<br>".join(_cell(v) for v in cluster.new_versions) or "(removed)"
        moved = [v for v in cluster.old_versions if v not in cluster.new_versions]
        was = "<br>".join(_cell(v) for v in moved) or ("(new)" if not cluster.old_versions else "")
        out.append(f"| {text(cluster.cluster, cell=True)} | {now} | {was} |\n")
    if len(diff.clusters) > _VERSION_ROWS:
        more = len(diff.clusters) - _VERSION_ROWS
        out.append(f"\n…and {more} more clusters: see `{CLUSTERS_DIR}/*/{LOCK_FILE}`.\n")
    return "".join(out)


def _footer(context: ReviewContext) -> str:
    return (
        f"\n---\nTrace id {code(context.trace_id)} · gitops-compiler {__version__} · "
        f"{code(context.diff_command)} shows this diff in a terminal.\n"
    )


def _names(names: Sequence[str], shown: int = 10) -> str:
    text = ", ".join(names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _cell(value: str) -> str:
    return code(value, cell=True)
