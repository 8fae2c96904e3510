"""What Argo CD reads: the two ApplicationSets and the generator files per cluster.

The tree is the git files generator's source, so (DESIGN.md pitfalls) the
ApplicationSets hard-code the project, use Go templates with
`missingkey=error`, and preserve resources when a cluster.json disappears:
deleting a cluster record must never prune a live cluster's namespaces.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compiler.errors import UsageError
from compiler.model import ClusterFacts
from compiler.project import ArgoCDSettings

APPSET_API = "argoproj.io/v1alpha1"
LABEL_PREFIX = "gitops-compiler.io"


def cluster_parameters(facts: ClusterFacts) -> dict[str, Any]:
    """clusters/<c>/cluster.json: the bootstrap ApplicationSet's generator parameters."""
    return {"env": facts.env, "name": facts.name, "region": facts.region, "server": facts.server}


def addon_parameters(facts: ClusterFacts, name: str, addon: Mapping[str, Any]) -> dict[str, Any]:
    """clusters/<c>/addons/<addon>.json: one Helm release for the addons ApplicationSet."""
    return {
        "addon": name,
        "chart": addon["chart"],
        "cluster": {"env": facts.env, "name": facts.name, "server": facts.server},
        "namespace": addon["namespace"],
        "releaseName": addon.get("releaseName", name),
        "repoURL": addon["repoURL"],
        # Always present: the template reads it and missingkey=error would fail on absence.
        "values": dict(addon.get("values", {})),
        "version": addon["version"],
    }


def _application_set(
    settings: ArgoCDSettings, name: str, files: str, template: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": APPSET_API,
        "kind": "ApplicationSet",
        "metadata": {"name": name, "namespace": settings.namespace},
        "spec": {
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [
                {
                    "git": {
                        "repoURL": settings.repo_url,
                        "revision": settings.target_revision,
                        "files": [{"path": files}],
                    }
                }
            ],
            "syncPolicy": {"preserveResourcesOnDeletion": True},
            "template": template,
        },
    }


def application_sets(settings: ArgoCDSettings) -> dict[str, dict[str, Any]]:
    """applicationsets/<name>.yaml -> object."""
    if settings.project == "default" or "{{" in settings.project:
        # The project file's schema refuses `default`; settings can also come from code.
        raise UsageError(
            f"argocd.project {settings.project!r}: the ApplicationSets need a hard-coded "
            "project other than `default`, never a template"
        )
    sync = {"automated": {"prune": True, "selfHeal": True}}
    bootstrap = _application_set(
        settings,
        "cluster-bootstrap",
        "clusters/*/cluster.json",
        {
            "metadata": {
                "name": "{{.name}}-bootstrap",
                "labels": {
                    f"{LABEL_PREFIX}/cluster": "{{.name}}",
                    f"{LABEL_PREFIX}/env": "{{.env}}",
                },
            },
            "spec": {
                "project": settings.project,
                "source": {
                    "repoURL": settings.repo_url,
                    "targetRevision": settings.target_revision,
                    "path": "{{.path.path}}",
                },
                "destination": {"server": "{{.server}}"},
                "syncPolicy": sync,
            },
        },
    )
    addons = _application_set(
        settings,
        "cluster-addons",
        "clusters/*/addons/*.json",
        {
            "metadata": {
                "name": "{{.cluster.name}}-{{.addon}}",
                "labels": {
                    f"{LABEL_PREFIX}/cluster": "{{.cluster.name}}",
                    f"{LABEL_PREFIX}/addon": "{{.addon}}",
                },
            },
            "spec": {
                "project": settings.project,
                "source": {
                    "repoURL": "{{.repoURL}}",
                    "chart": "{{.chart}}",
                    "targetRevision": "{{.version}}",
                    # JSON is YAML: Helm reads the values as given in the DSL.
                    "helm": {"releaseName": "{{.releaseName}}", "values": "{{ toJson .values }}"},
                },
                "destination": {"server": "{{.cluster.server}}", "namespace": "{{.namespace}}"},
                "syncPolicy": {**sync, "syncOptions": ["CreateNamespace=true"]},
            },
        },
    )
    return {"cluster-bootstrap": bootstrap, "cluster-addons": addons}
