"""The Calico API group per cluster: a fact or the project's setting; objects and checks follow."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from compiler.cli import main
from compiler.model import ClusterFacts
from compiler.policy.kind_schemas import CRD_FILES
from compiler.policy.objects import ObjectSchemas
from compiler.render import Rendered, render_cluster
from compiler.render.calico import CALICO_V1, CALICO_V3

ROOT = Path(__file__).resolve().parents[2]
CONFIG = {
    "namespaces": {"dev": {"calicoPolicies": {"allow": {"selector": "all()"}}}},
    "calico": {
        "ipPools": {"pool": {"cidr": "10.0.0.0/16"}},
        "globalNetworkPolicies": {"deny": {"selector": "all()"}},
        "bgpConfiguration": {"asNumber": 64512},
        "felixConfiguration": {"logSeverityScreen": "Info"},
    },
}


def calico_apis(facts: ClusterFacts) -> set[str]:
    objects = render_cluster(facts, CONFIG).objects
    return {str(r.obj["apiVersion"]) for r in objects if r.obj["kind"] != "Namespace"}


def test_every_calico_object_follows_the_cluster_fact() -> None:
    facts = ClusterFacts("c", "dev", "https://c:6443")
    assert calico_apis(facts) == {CALICO_V3}
    assert calico_apis(ClusterFacts("c", "dev", "https://c:6443", calico_api=CALICO_V1)) == {
        CALICO_V1
    }


def test_v1_objects_are_checked_against_the_vendored_v1_crds() -> None:
    for (api, _kind), file in CRD_FILES.items():
        assert (ROOT / "policies/schemas" / file).is_file(), file
        if api == CALICO_V1:
            # Vendored byte for byte from ../shared/schemas (policies/schemas/README.md).
            shared = ROOT.parent / "shared/schemas" / file
            if shared.is_file():
                assert shared.read_bytes() == (ROOT / "policies/schemas" / file).read_bytes()
    schemas = ObjectSchemas(ROOT / "policies", "1.31")
    facts = ClusterFacts("c", "dev", "https://c:6443", calico_api=CALICO_V1)
    objects = render_cluster(facts, CONFIG).objects
    assert schemas.check("c", objects) == []
    pool = next(r for r in objects if r.obj["kind"] == "IPPool")
    unknown = {**pool.obj, "spec": {**pool.obj["spec"], "cidrr": "x"}}
    findings = schemas.check("c", [Rendered(pool.path, unknown, pool.source)])
    assert [f.rule for f in findings] == ["crd-schema"]
    unmasked = {**pool.obj, "spec": {"cidr": "10.0.0.1/16"}}  # the CEL rules hold for v1 too
    assert schemas.check("c", [Rendered(pool.path, unmasked, pool.source)])


def test_the_project_setting_applies_where_the_cluster_says_nothing(
    project_dir: Path, tmp_path: Path
) -> None:
    project = project_dir / "gitops-compiler.yaml"
    project.write_text(project.read_text() + f"calicoAPI: {CALICO_V1}\n")
    out = tmp_path / "out"
    source = ["--project", str(project_dir), "--source", "snapshot:examples"]
    assert main(["compile", "--all", "--out", str(out), *source]) == 0
    for cluster in ("dev-k3s", "test-k3s"):
        pools = list((out / "clusters" / cluster / "calico").glob("ippool-*.yaml"))
        assert pools
        assert {yaml.safe_load(p.read_text())["apiVersion"] for p in pools} == {CALICO_V1}


def test_an_unknown_group_in_a_cluster_fact_is_bad_input(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = project_dir / "examples/cluster/test-k3s.yaml"
    record.write_text(record.read_text().replace(CALICO_V1, "projectcalico.org/v1"))
    source = ["--project", str(project_dir), "--source", "snapshot:examples"]
    assert main(["compile", "--cluster", "test-k3s", "--out", str(tmp_path / "o"), *source]) == 2
    err = capsys.readouterr().err
    assert "cluster.calicoAPI" in err and "test-k3s" in err
