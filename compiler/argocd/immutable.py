"""Changes the API server refuses in place, and the config's acceptance of a replacement.

Argo CD syncs with `kubectl apply` (a patch): a change to an immutable field fails the
sync with "field is immutable" and the Application stays OutOfSync/Degraded. Only
`argocd.argoproj.io/sync-options: Force=true,Replace=true` on the object makes Argo CD
delete and recreate it (docs/user-guide/sync-options.md, "Force Sync"; `Replace=true`
alone is a PUT, which the same validation refuses).

`IMMUTABLE` is the one table (DESIGN.md "Second wave": the immutable fields are data).
Checked against the kinds the tree holds today: Namespace, ResourceQuota, LimitRange,
NetworkPolicy (networking.k8s.io), Role, RoleBinding, and Calico's IPPool,
NetworkPolicy, GlobalNetworkPolicy, BGPConfiguration, FelixConfiguration. Of these,
RoleBinding `roleRef` (k8s rbac validation `ValidateRoleBindingUpdate`), ResourceQuota
`scopes`/`scopeSelector` (`ValidateResourceQuotaUpdate`; the DSL does not render them
yet) and IPPool `cidr`/`blockSize` (the CRD's CEL `self == oldSelf`, in both the v3 and
the crd.projectcalico.org/v1 CRDs) are immutable; the Calico policies and the BGP/Felix
singletons carry no `oldSelf` rule, and Namespace, LimitRange, NetworkPolicy and Role
have no immutable spec field. Rows for kinds the tree does not render (Service, PVC,
Job, workloads) are kept so that an add-on rendered later is covered.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, MutableSequence
from dataclasses import dataclass
from typing import Any

from compiler.errors import InputError
from compiler.layout import read_path
from compiler.render import Problem, Rendered
from compiler.yamlio import load_layer_yaml

SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
RECREATE = "Force=true,Replace=true"
DSL_KEY = "replaceOnSync"  # the config's acceptance: "Kind/[namespace/]name" -> reason
RULE = "immutable.field-change"
RULE_UNKNOWN = "render.replace-unknown"

_RENAME = "or give the object a new name (the old one is pruned)"
_IPPOOL = (
    "add a new IP pool under a new name and disable the old one (Calico's IP pool "
    "migration guide); recreating a pool in use breaks its allocations"
)


def _pool_block(obj: Mapping[str, Any]) -> Any:
    """Calico's default blockSize: 26 for an IPv4 pool, 122 for IPv6."""
    cidr = str(obj.get("spec", {}).get("cidr", "0.0.0.0/0"))
    try:
        return 122 if ipaddress.ip_network(cidr, strict=False).version == 6 else 26
    except ValueError:
        return 26


@dataclass(frozen=True)
class Immutable:
    kinds: tuple[str, ...]  # "group/Kind", the group "" for the core group
    field: tuple[str, ...]
    reference: str
    fix: str = _RENAME
    default: Callable[[Mapping[str, Any]], Any] | None = None  # the server's value when absent


_CALICO = ("projectcalico.org", "crd.projectcalico.org")
IMMUTABLE: tuple[Immutable, ...] = (
    Immutable(
        ("rbac.authorization.k8s.io/RoleBinding", "rbac.authorization.k8s.io/ClusterRoleBinding"),
        ("roleRef",),
        "https://kubernetes.io/docs/reference/access-authn-authz/rbac/#clusterrolebinding-example",
    ),
    Immutable(tuple(f"{g}/IPPool" for g in _CALICO), ("spec", "cidr"), "IPPool CRD CEL", _IPPOOL),
    Immutable(
        tuple(f"{g}/IPPool" for g in _CALICO),
        ("spec", "blockSize"),
        "IPPool CRD CEL",
        _IPPOOL,
        _pool_block,
    ),
    Immutable(("/ResourceQuota",), ("spec", "scopes"), "ValidateResourceQuotaUpdate"),
    Immutable(("/ResourceQuota",), ("spec", "scopeSelector"), "ValidateResourceQuotaUpdate"),
    Immutable(("/Service",), ("spec", "clusterIP"), "ValidateServiceUpdate"),
    Immutable(("/PersistentVolumeClaim",), ("spec", "storageClassName"), "ValidatePVCUpdate"),
    Immutable(("batch/Job",), ("spec", "selector"), "ValidateJobUpdate"),
    Immutable(("batch/Job",), ("spec", "template"), "ValidateJobUpdate"),
    Immutable(("apps/Deployment",), ("spec", "selector"), "ValidateDeploymentUpdate"),
    Immutable(("apps/StatefulSet",), ("spec", "selector"), "ValidateStatefulSetUpdate"),
    Immutable(("apps/DaemonSet",), ("spec", "selector"), "ValidateDaemonSetUpdate"),
)
_MISSING = object()


@dataclass(frozen=True)
class ImmutableChange:
    cluster: str
    file: str
    kind: str
    name: str  # namespace/name for namespaced objects
    field: str
    old: Any
    new: Any
    accepted: bool  # the new object carries Force=true,Replace=true: Argo CD recreates it
    fix: str

    @property
    def key(self) -> str:
        """How `replaceOnSync` names the object."""
        return f"{self.kind}/{self.name}"

    def describe(self) -> str:
        head = f"{self.kind} {self.name}: {self.field} {_show(self.old)} → {_show(self.new)}"
        if self.accepted:
            return f"{head}: Argo CD will delete and recreate it ({SYNC_OPTIONS}: {RECREATE})"
        return (
            f"{head}: the API server will not update {self.field} in place; Argo CD's sync "
            f'fails with "field is immutable". Fix: accept the replacement with '
            f"{DSL_KEY}: {{{self.key}: <reason>}} (renders {RECREATE}), {self.fix}"
        )


def _show(value: Any) -> str:
    return "(none)" if value is _MISSING else repr(value) if isinstance(value, str) else str(value)


def _group_kind(obj: Mapping[str, Any]) -> str:
    api = str(obj.get("apiVersion", ""))
    group = api.rpartition("/")[0] if "/" in api else ""
    return f"{group}/{obj.get('kind', '')}"


def _identity(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{ns}{meta.get('name', '')}"


def _get(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = obj
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return _MISSING
        value = value[key]
    return value


def accepts_recreate(obj: Mapping[str, Any]) -> bool:
    options = str((obj.get("metadata") or {}).get("annotations", {}).get(SYNC_OPTIONS, ""))
    parts = {p.strip() for p in options.split(",")}
    return {"Force=true", "Replace=true"} <= parts


def _objects(tree: Mapping[str, bytes]) -> dict[tuple[str, str, str], tuple[str, Any]]:
    """(cluster, group/Kind, namespace/name) -> (file, object) for the YAML objects of a tree."""
    out: dict[tuple[str, str, str], tuple[str, Any]] = {}
    for path, data in tree.items():
        where = read_path(path)
        if where.kind != "object" or not path.endswith(".yaml"):
            continue
        try:
            obj = load_layer_yaml(data, path).value
        except InputError:  # the base branch may hold anything; an unreadable file is no object
            continue
        if isinstance(obj, Mapping) and "kind" in obj:
            out[(where.cluster, _group_kind(obj), _identity(obj))] = (path, obj)
    return out


def immutable_changes(old: Mapping[str, bytes], new: Mapping[str, bytes]) -> list[ImmutableChange]:
    """Every change, between two trees, to a field of `IMMUTABLE` of an object kept by name."""
    # File names come from the object's identity: a kept object keeps its path, and only
    # files whose bytes differ can hold a change (the trees hold thousands of objects).
    changed = {p for p in old.keys() & new.keys() if old[p] != new[p]}
    before = _objects({p: old[p] for p in changed})
    after = _objects({p: new[p] for p in changed})
    found = []
    for key in sorted(set(before) & set(after)):
        cluster, group_kind, name = key
        (_, was), (file, now) = before[key], after[key]
        for row in IMMUTABLE:
            if group_kind not in row.kinds:
                continue
            old_value, new_value = _get(was, row.field), _get(now, row.field)
            if row.default is not None:
                old_value = row.default(was) if old_value is _MISSING else old_value
                new_value = row.default(now) if new_value is _MISSING else new_value
            if old_value != new_value:
                found.append(
                    ImmutableChange(
                        cluster,
                        file,
                        group_kind.partition("/")[2],
                        name,
                        ".".join(row.field),
                        old_value,
                        new_value,
                        accepts_recreate(now),
                        row.fix,
                    )
                )
    return found


def mark_replacements(
    objects: MutableSequence[Rendered], config: Mapping[str, Any]
) -> list[Problem]:
    """Put `Force=true,Replace=true` on each object the config's `replaceOnSync` names;
    a key naming no rendered object is a problem (a stale acceptance must not linger)."""
    accepted = dict(config.get(DSL_KEY) or {})
    if not accepted:
        return []
    for index, rendered in enumerate(objects):
        key = f"{rendered.obj.get('kind')}/{_identity(rendered.obj)}"
        if accepted.pop(key, None) is None:
            continue
        obj = dict(rendered.obj)
        meta = dict(obj.get("metadata") or {})
        meta["annotations"] = {**(meta.get("annotations") or {}), SYNC_OPTIONS: RECREATE}
        obj["metadata"] = meta
        objects[index] = Rendered(rendered.path, obj, rendered.source)
    return [
        Problem(
            (DSL_KEY, key),
            RULE_UNKNOWN,
            f"{key} names no object this cluster renders; remove it once its replacement merged",
        )
        for key in sorted(accepted)
    ]
