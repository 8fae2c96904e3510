"""`deploy/kubernetes`: valid for the compiler's own Kubernetes schema validation (strict),
built by kubectl kustomize, and shaped as issue 21 asks (2 replicas, probes, IRSA, PDB)."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler.policy.objects import ObjectSchemas
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy" / "kubernetes"


def manifests() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            found[path.name] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return found


@pytest.fixture(scope="module")
def schemas() -> ObjectSchemas:
    return ObjectSchemas(ROOT / "policies", "1.31")


def test_every_manifest_passes_the_compilers_schema_validation(schemas: ObjectSchemas) -> None:
    found = manifests()
    assert set(found) == {
        "deployment.yaml", "service.yaml", "serviceaccount.yaml", "poddisruptionbudget.yaml",
    }  # fmt: skip
    for name, obj in found.items():
        assert schemas.check_document("deploy", name, obj) == [], name


def test_the_validation_would_catch_a_mistake(schemas: ObjectSchemas) -> None:
    broken = copy.deepcopy(manifests()["deployment.yaml"])
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/"
    assert schemas.check_document("deploy", "deployment.yaml", broken)


def test_the_deployment_is_what_the_issue_asks_for() -> None:
    found = manifests()
    deployment = found["deployment.yaml"]["spec"]
    container = deployment["template"]["spec"]["containers"][0]
    assert deployment["replicas"] == 2
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    account = found["serviceaccount.yaml"]["metadata"]["annotations"]
    assert account["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    assert found["poddisruptionbudget.yaml"]["spec"]["minAvailable"] == 1


def test_kubectl_kustomize_builds_it() -> None:
    kubectl = shutil.which("kubectl") or str(Path(ROOT / ".venv/bin/kubectl"))
    built = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=120
    )
    assert built.returncode == 0, built.stderr
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(built.stdout))
    assert kinds == ["Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"]


def test_the_dockerfile_uses_the_projects_install_steps() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert "make .venv/.installed tools/cue-wasm/node_modules/.installed" in text
    assert "GITOPS_CUE=/app/tools/cue-wasm/cue" in text
    assert 'ENTRYPOINT ["gitops-compiler", "serve"]' in text
