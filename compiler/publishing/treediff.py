"""The semantic diff of two trees, as a reviewer reads it.

Per cluster: objects added, changed and removed; for a changed object, each
changed field old -> new and the layer that set the new value. Pure: trees are
`path -> bytes` (from a compile, a directory or a git revision), and who set a
value comes from a `Blame` (see `compiler.publishing.blame`), so the same diff serves the
PR body and the terminal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from compiler.argocd.applications import AppChange, application_changes
from compiler.argocd.immutable import ImmutableChange, immutable_changes
from compiler.errors import InputError
from compiler.layout import LOCK_FILE, TreePath, read_path
from compiler.model import DocPath, format_path, path_order
from compiler.policy.guards.secrets_in_config import names_credential
from compiler.render.argocd import APPSET_API
from compiler.secrets import credential_like
from compiler.yamlio import load_layer_yaml

FLEET = "(fleet)"  # the applicationsets/ every cluster shares


class _Missing:
    def __repr__(self) -> str:
        return "(none)"


MISSING: Any = _Missing()  # a field one side does not have

# What a reviewer must look at first: RBAC, network policy, Calico, quotas, IP pools.
_SECURITY_KINDS = frozenset(
    {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "NetworkPolicy", "ResourceQuota"}
)
# Said by the object's identity already.
_IDENTITY_FIELDS = frozenset(
    {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}
)


class Blame(Protocol):
    """Who set what, on the new side of a diff."""

    def field(self, file: str, obj: Mapping[str, Any], path: DocPath) -> str: ...

    def entry(self, file: str, obj: Mapping[str, Any], *, removed: bool) -> str: ...


class NoBlame:
    """For trees compiled elsewhere (`--from DIR`): no provenance to quote."""

    def field(self, file: str, obj: Mapping[str, Any], path: DocPath) -> str:
        return ""

    def entry(self, file: str, obj: Mapping[str, Any], *, removed: bool) -> str:
        return ""


@dataclass(frozen=True)
class FieldChange:
    path: str  # in the object, e.g. spec.hard.cpu
    old: Any  # MISSING when the field is new
    new: Any  # MISSING when the field is gone
    set_by: str = ""


@dataclass(frozen=True)
class ObjectChange:
    cluster: str
    file: str  # from the tree's root
    kind: str
    name: str  # namespace/name for namespaced objects
    action: str  # "added", "changed" or "removed"
    fields: tuple[FieldChange, ...] = ()  # changed fields; an added object's content
    set_by: str = ""  # for an added or removed object: the layer(s) that added or removed it
    security: bool = False

    @property
    def identity(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class ClusterDiff:
    cluster: str
    status: str  # "added", "changed" or "removed" (the whole cluster directory)
    objects: tuple[ObjectChange, ...]
    old_versions: tuple[str, ...]  # "env/prod@2", "overlays/prod/10-quotas.yaml#1e0b346ecb09"
    new_versions: tuple[str, ...]

    def count(self, action: str) -> int:
        return sum(1 for o in self.objects if o.action == action)


@dataclass(frozen=True)
class TreeDiff:
    clusters: tuple[ClusterDiff, ...]
    fleet: tuple[ObjectChange, ...]  # ApplicationSets: they act on every cluster
    # What the ApplicationSet controller will do: Applications created, deleted, moved.
    applications: tuple[AppChange, ...] = ()
    # Changes the API server will not make in place (Argo CD's sync fails on them).
    immutable: tuple[ImmutableChange, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.clusters and not self.fleet

    def security(self) -> list[ObjectChange]:
        found = [o for c in self.clusters for o in c.objects if o.security]
        return found + [o for o in self.fleet if o.security]


def diff_trees(
    old: Mapping[str, bytes], new: Mapping[str, bytes], blame: Blame | None = None
) -> TreeDiff:
    """Compare two trees (paths from the tree's root: clusters/<c>/..., applicationsets/...)."""
    blame = blame or NoBlame()
    changed = sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))
    per_cluster: dict[str, list[TreePath]] = {}
    fleet: list[ObjectChange] = []
    for rel in changed:
        path = read_path(rel)
        if path.cluster:
            per_cluster.setdefault(path.cluster, []).append(path)
        else:
            fleet.append(_object_change(FLEET, path, old.get(rel), new.get(rel), blame))
    clusters = []
    for cluster, paths in sorted(per_cluster.items()):
        directory = paths[0].directory
        prefix = f"{directory}/"
        had = any(p.startswith(prefix) for p in old)
        has = any(p.startswith(prefix) for p in new)
        objects = tuple(
            _object_change(cluster, path, old.get(path.path), new.get(path.path), blame)
            for path in paths
            if path.kind != "bookkeeping"
        )
        lock = f"{directory}/{LOCK_FILE}"
        clusters.append(
            ClusterDiff(
                cluster=cluster,
                status="changed" if had and has else "added" if has else "removed",
                objects=objects,
                old_versions=lock_versions(old.get(lock)),
                new_versions=lock_versions(new.get(lock)),
            )
        )
    apps = tuple(application_changes(old, new)) if changed else ()
    refused = tuple(immutable_changes(old, new)) if changed else ()
    return TreeDiff(tuple(clusters), tuple(fleet), apps, refused)


def lock_versions(data: bytes | None) -> tuple[str, ...]:
    """A config-lock.json as short version names; () when absent or unreadable."""
    if data is None:
        return ()
    try:
        lock = json.loads(data)
        out = []
        for layer in lock["layers"]:
            if "version" in layer:
                out.append(f"{layer['layer']}@{layer['version']}")
            elif "file" in layer:
                out.append(f"{layer['file']}#{str(layer.get('sha256', ''))[:12]}")
            else:
                out.append(str(layer.get("layer")))
        return tuple(out)
    except (ValueError, KeyError, TypeError):
        return ("(unreadable config-lock.json)",)


def _object_change(
    cluster: str, path: TreePath, old: bytes | None, new: bytes | None, blame: Blame
) -> ObjectChange:
    rel = path.path
    old_obj, new_obj = _parse(rel, old), _parse(rel, new)
    shown = new_obj if new_obj is not None else old_obj
    kind, name = _identity(path, shown)
    security = _is_security(shown)
    action = "added" if old is None else "removed" if new is None else "changed"
    base = ObjectChange(cluster, rel, kind, name, action, security=security)
    if action != "changed":
        who = blame.entry(rel, shown or {}, removed=action == "removed")
        # An added object's content, for review (who set each field: `who`, as a whole).
        content = (
            tuple(
                FieldChange(format_path(field), MISSING, _shown(field, value))
                for field, value in sorted(
                    _leaves(new_obj).items(), key=lambda item: path_order(item[0])
                )
                if field not in _IDENTITY_FIELDS
            )
            if new_obj is not None
            else ()
        )
        return ObjectChange(cluster, rel, kind, name, action, content, who, security)
    if old_obj is None or new_obj is None:  # not an object we can read: the bytes differ
        return base
    fields = []
    before, after = _leaves(old_obj), _leaves(new_obj)
    for field in sorted(set(before) | set(after), key=path_order):
        was, now = before.get(field, MISSING), after.get(field, MISSING)
        if was != now or type(was) is not type(now):
            who = blame.field(rel, new_obj, field)
            fields.append(
                FieldChange(format_path(field), _shown(field, was), _shown(field, now), who)
            )
    return ObjectChange(cluster, rel, kind, name, action, tuple(fields), security=security)


def _parse(rel: str, data: bytes | None) -> Mapping[str, Any] | None:
    if data is None:
        return None
    try:
        value = json.loads(data) if rel.endswith(".json") else load_layer_yaml(data, rel).value
    except (InputError, ValueError):
        return None  # shown as a changed file; the base branch may hold anything
    return value if isinstance(value, Mapping) else None


def _identity(path: TreePath, obj: Mapping[str, Any] | None) -> tuple[str, str]:
    if path.kind == "cluster":
        return "Cluster", path.name
    if path.kind == "addon":
        return "Add-on", path.name
    meta = obj.get("metadata") if obj is not None else None
    if obj is None or not isinstance(meta, Mapping) or "kind" not in obj:
        return "File", path.path
    ns = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return str(obj["kind"]), f"{ns}{meta.get('name')}"


def _is_security(obj: Mapping[str, Any] | None) -> bool:
    if obj is None:
        return False
    api = str(obj.get("apiVersion", ""))
    return (
        obj.get("kind") in _SECURITY_KINDS
        or api.startswith(("projectcalico.org/", "crd.projectcalico.org/"))
        or api == APPSET_API  # the ApplicationSets decide what every cluster runs
    )


def _leaves(value: Any, path: DocPath = ()) -> dict[DocPath, Any]:
    """Leaf values by path. A list of scalars is one leaf (`verbs: [get, list]`);
    a list of maps is walked by index (`rules[0].verbs`)."""
    if isinstance(value, Mapping) and value:
        out: dict[DocPath, Any] = {}
        for key in value:
            out.update(_leaves(value[key], (*path, key)))
        return out
    if isinstance(value, list) and any(isinstance(v, (Mapping, list)) for v in value):
        out = {}
        for index, item in enumerate(value):
            out.update(_leaves(item, (*path, index)))
        return out
    return {path: value}


def _shown(field: DocPath, value: Any) -> Any:
    """The value as a review may show it: a credential (a waiver may have let one
    through) is replaced by what it looks like, in the diff, the PR body and logs."""
    if not isinstance(value, str) or not value:
        return value
    looks = credential_like(value)
    if looks is None and field and isinstance(field[-1], str) and names_credential(field[-1]):
        looks = f"a literal under {field[-1]!r}"
    return value if looks is None else f"(masked: {looks})"


def show_value(value: Any, limit: int = 120) -> str:
    """A value on one line, as JSON (strings quoted, so `"8"` and `8` differ visibly)."""
    if value is MISSING:
        return "(none)"
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_text(diff: TreeDiff) -> str:
    """The diff for a terminal: one block per cluster, `+`, `~` and `-` per object."""
    if diff.empty:
        return "no differences\n"
    lines = []
    for cluster in diff.clusters:
        counts = ", ".join(f"{cluster.count(a)} {a}" for a in ("added", "changed", "removed"))
        lines.append(f"{cluster.cluster} ({cluster.status}): {counts}")
        lines += [f"  {line}" for obj in cluster.objects for line in _object_lines(obj)]
        if cluster.old_versions != cluster.new_versions:
            gone = [v for v in cluster.old_versions if v not in cluster.new_versions]
            came = [v for v in cluster.new_versions if v not in cluster.old_versions]
            lines.append(f"  versions: {', '.join(gone) or '(none)'} -> {', '.join(came)}")
    if diff.fleet:
        lines.append(f"{FLEET}: {len(diff.fleet)} changed")
        lines += [f"  {line}" for obj in diff.fleet for line in _object_lines(obj)]
    lines += [change.describe() for change in diff.applications]
    lines += [f"{c.cluster}: in-place change refused: {c.describe()}" for c in diff.immutable]
    return "\n".join(lines) + "\n"


def _object_lines(obj: ObjectChange) -> list[str]:
    mark = {"added": "+", "changed": "~", "removed": "-"}[obj.action]
    verb = "deleted by" if obj.action == "removed" else "set by"
    who = f"  ({verb} {obj.set_by})" if obj.set_by else ""
    lines = [f"{mark} {obj.identity}{who}"]
    if obj.action == "added" and not obj.security:
        return lines  # its content matters for review only where security is at stake
    for change in obj.fields:
        if obj.action == "added":
            lines.append(f"    {change.path}: {show_value(change.new)}")
            continue
        by = f"  (set by {change.set_by})" if change.set_by else ""
        lines.append(f"    {change.path}: {show_value(change.old)} -> {show_value(change.new)}{by}")
    return lines
