"""Render a merged config into Kubernetes objects: pure functions, one table.

Each renderer takes the cluster's facts and merged config and returns the
objects it makes, each with its file path in the cluster's directory and the
DSL path it came from (so a finding on the object can name the layer).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from compiler.model import ClusterFacts, DocPath

MAX_FILE_NAME = 255  # bytes, the usual limit of a file name (ext4, xfs, apfs)
_SAFE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class Rendered:
    path: str  # relative to clusters/<cluster>/, e.g. namespaces/dev-team/namespace.yaml
    obj: Mapping[str, Any]
    source: DocPath  # where in the merged config it came from


@dataclass(frozen=True)
class Problem:
    """A config the schema allows but that cannot be rendered (e.g. a missing role template)."""

    path: DocPath
    rule: str
    message: str


@dataclass
class RenderResult:
    objects: list[Rendered] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


Renderer = Callable[[ClusterFacts, Mapping[str, Any], RenderResult], None]


def file_name(prefix: str, name: str, suffix: str = ".yaml") -> str:
    """`<prefix>-<name><suffix>`, shortened with a stable hash when over the file name limit.

    Names are checked by the schema already; this is the second lock on the
    door, because they become paths.
    """
    if not _SAFE_NAME.match(name) or ".." in name:
        raise ValueError(f"unsafe name for a file: {name!r}")
    full = f"{prefix}-{name}{suffix}" if prefix else f"{name}{suffix}"
    if len(full.encode()) <= MAX_FILE_NAME:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    keep = MAX_FILE_NAME - len(prefix) - len(suffix) - len(digest) - 3
    return f"{prefix}-{name[:keep].rstrip('-.')}-{digest}{suffix}"


def namespace_folder(ns: str) -> str:
    return f"namespaces/{file_name('', ns, '')}"


def quantity(value: Any) -> Any:
    """Kubernetes quantities are strings; a number in the DSL becomes its plain decimal form."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, int):
        return str(value)
    return format(Decimal(repr(value)).normalize(), "f")


# Where an object's fields come from in its DSL entry (`Rendered.source`), by kind:
# (object path prefix, DSL path under the entry); the first that matches wins. A field
# under none (metadata.name, a RoleBinding's subjects) is placed at the entry itself.
_FROM_DSL: Mapping[str, tuple[tuple[DocPath, DocPath], ...]] = {
    "Namespace": (
        (("metadata", "labels"), ("labels",)),
        (("metadata", "annotations"), ("annotations",)),
    ),
    "ResourceQuota": ((("spec", "hard"), ()),),
    "LimitRange": ((("spec", "limits", 0), ()),),
    "NetworkPolicy": ((("spec",), ()),),  # networking.k8s.io and projectcalico.org alike
    "GlobalNetworkPolicy": ((("spec",), ()),),
    "IPPool": ((("spec",), ()),),
    "BGPConfiguration": ((("spec",), ()),),
    "FelixConfiguration": ((("spec",), ()),),
    "Role": ((("rules",), ("rules",)),),
}
_SWITCHES = frozenset({"defaultDeny"})  # a DSL flag that renders a whole object: no fields


def dsl_path(kind: str, source: DocPath, field: DocPath) -> DocPath:
    """The DSL path behind `field` of an object rendered from the DSL entry `source`."""
    if source and source[-1] not in _SWITCHES:
        for prefix, under in _FROM_DSL.get(kind, ()):
            if field[: len(prefix)] == prefix:
                return (*source, *under, *field[len(prefix) :])
    return source


def dsl_home(obj: Mapping[str, Any]) -> DocPath:
    """The DSL entry an object is rendered from, from the object alone.

    For objects that are no longer rendered (a deleted namespace), whose
    `Rendered.source` is gone with them; () for what the DSL does not render.
    """
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name, ns = str(meta.get("name", "")), str(meta.get("namespace", ""))
    calico = str(obj.get("apiVersion", "")).partition("/")[0] in (
        "projectcalico.org",
        "crd.projectcalico.org",
    )
    kind = obj.get("kind")
    if kind == "Namespace":
        return ("namespaces", name)
    if kind == "NetworkPolicy" and ns:
        if calico:
            return ("namespaces", ns, "calicoPolicies", name)
        if name == "default-deny":
            return ("namespaces", ns, "defaultDeny")
        return ("namespaces", ns, "networkPolicies", name)
    homes: Mapping[Any, DocPath] = {
        "ResourceQuota": ("namespaces", ns, "quotas", name),
        "LimitRange": ("namespaces", ns, "limits"),
        "RoleBinding": ("namespaces", ns, "access", name),
        "Role": ("roles", name),
        "IPPool": ("calico", "ipPools", name),
        "GlobalNetworkPolicy": ("calico", "globalNetworkPolicies", name),
        "BGPConfiguration": ("calico", "bgpConfiguration"),
        "FelixConfiguration": ("calico", "felixConfiguration"),
    }
    return homes.get(kind, ())


def render_cluster(facts: ClusterFacts, config: Mapping[str, Any]) -> RenderResult:
    # Imported here so that the table below reads as the list of what is rendered.
    from compiler.render import calico, namespaces, rbac

    renderers: tuple[tuple[str, Renderer], ...] = (
        ("namespaces", namespaces.render),  # Namespace, ResourceQuota, LimitRange, NetworkPolicy
        ("rbac", rbac.render),  # Role (from `roles` templates), RoleBinding
        ("calico", calico.render),  # IPPool, (Global)NetworkPolicy, BGP/Felix configuration
    )
    result = RenderResult()
    for _id, renderer in renderers:
        renderer(facts, config, result)
    result.objects.sort(key=lambda r: r.path)
    paths = [r.path for r in result.objects]
    for dup in sorted({p for p in paths if paths.count(p) > 1}):
        sources = [r.source for r in result.objects if r.path == dup]
        message = f"two objects map to the file {dup}"
        result.problems.append(Problem(sources[-1], "render.duplicate-file", message))
    return result
