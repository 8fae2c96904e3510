"""RoleBindings per namespace, and the Roles they instantiate from the `roles` templates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compiler.model import ClusterFacts
from compiler.render import Problem, Rendered, RenderResult, file_name, namespace_folder

RBAC_GROUP = "rbac.authorization.k8s.io"


def render(facts: ClusterFacts, config: Mapping[str, Any], out: RenderResult) -> None:
    templates = config.get("roles", {})
    for ns, spec in sorted(config.get("namespaces", {}).items()):
        folder = namespace_folder(ns)
        instantiated: set[str] = set()
        for name, binding in sorted(spec.get("access", {}).items()):
            source = ("namespaces", ns, "access", name)
            role = binding.get("role")
            if role is not None:
                if role not in templates:
                    out.problems.append(
                        Problem(
                            (*source, "role"),
                            "render.role-missing",
                            f"role {role!r} is not a template in `roles`",
                        )
                    )
                    continue
                if role not in instantiated:
                    instantiated.add(role)
                    out.objects.append(_role(ns, role, templates[role], folder))
                ref = {"apiGroup": RBAC_GROUP, "kind": "Role", "name": role}
            else:
                ref = {
                    "apiGroup": RBAC_GROUP,
                    "kind": "ClusterRole",
                    "name": binding["clusterRole"],
                }
            obj = {
                "apiVersion": f"{RBAC_GROUP}/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": ns},
                "roleRef": ref,
                "subjects": _subjects(ns, binding),
            }
            out.objects.append(Rendered(f"{folder}/{file_name('rolebinding', name)}", obj, source))


def _role(ns: str, name: str, template: Mapping[str, Any], folder: str) -> Rendered:
    obj = {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": ns},
        "rules": [dict(rule) for rule in template.get("rules", [])],
    }
    return Rendered(f"{folder}/{file_name('role', name)}", obj, ("roles", name))


def _subjects(ns: str, binding: Mapping[str, Any]) -> list[dict[str, str]]:
    subjects = [
        {"apiGroup": RBAC_GROUP, "kind": "User", "name": u} for u in binding.get("users", [])
    ]
    subjects += [
        {"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in binding.get("groups", [])
    ]
    for account in binding.get("serviceAccounts", []):
        sa_ns, _, sa_name = account.rpartition("/")
        subjects.append({"kind": "ServiceAccount", "name": sa_name, "namespace": sa_ns or ns})
    return subjects
