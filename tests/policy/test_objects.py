"""Every emitted object against its schema: Kubernetes OpenAPI (strict) or the vendored CRDs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler.errors import UsageError
from compiler.policy.objects import ObjectSchemas
from compiler.render import Rendered
from tests.conftest import ROOT, tree

GOLDEN = ROOT / "golden"


@pytest.fixture(scope="module")
def schemas() -> ObjectSchemas:
    return ObjectSchemas(ROOT / "policies", "1.31")


def golden_object(rel: str) -> dict[str, Any]:
    return dict(yaml.safe_load((GOLDEN / rel).read_text()))


def findings(schemas: ObjectSchemas, obj: dict[str, Any]) -> list[tuple[str, str]]:
    rendered = Rendered(path="x.yaml", obj=obj, source=("namespaces", "n"))
    return [(v.rule, v.path) for v in schemas.check("c1", [rendered])]


def test_every_golden_object_validates_crds_included(schemas: ObjectSchemas) -> None:
    manifests = {rel: data for rel, data in tree(GOLDEN).items() if rel.endswith(".yaml")}
    kinds = set()
    for rel, data in sorted(manifests.items()):
        obj = yaml.safe_load(data)
        if obj.get("kind") == "Kustomization":
            continue
        kinds.add(obj["kind"])
        rendered = Rendered(path=rel, obj=obj, source=())
        assert schemas.check("c", [rendered]) == [], rel
    assert {"IPPool", "NetworkPolicy", "GlobalNetworkPolicy", "BGPConfiguration"} <= kinds
    assert {"FelixConfiguration", "ApplicationSet", "ResourceQuota", "RoleBinding"} <= kinds


QUOTA = "clusters/dev-k3s/namespaces/dev-team/resourcequota-dev-quota.yaml"
IPPOOL = "clusters/dev-k3s/calico/ippool-dev-ippool.yaml"
CALICO_NP = "clusters/dev-k3s/namespaces/dev-team/calico-networkpolicy-allow-dev-traffic.yaml"
NAMESPACE = "clusters/dev-k3s/namespaces/dev-team/namespace.yaml"


def edited(rel: str, **changes: Any) -> dict[str, Any]:
    """A golden object with dotted-path changes; a value of `...` deletes the key."""
    obj = copy.deepcopy(golden_object(rel))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = obj
        for key in parents:
            node = node.setdefault(key, {})
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return obj


@pytest.mark.parametrize(
    ("rel", "changes", "rule", "field"),
    [
        (QUOTA, {"spec__surprise": 1}, "k8s-schema", "spec"),
        (QUOTA, {"spec__hard": "lots"}, "k8s-schema", "spec.hard"),
        (CALICO_NP, {"spec__surprise": 1}, "crd-schema", "spec"),
        (CALICO_NP, {"spec__order": "first"}, "crd-schema", "spec.order"),
        (IPPOOL, {"spec__cidr": "192.168.1.0/16"}, "calico-ippool-cidr", "spec.cidr"),
        (IPPOOL, {"spec__cidr": "169.254.0.0/16"}, "calico-ippool-cidr", "spec.cidr"),
        (IPPOOL, {"spec__blockSize": 19}, "calico-ippool-blocksize", "spec.blockSize"),
        (
            IPPOOL,
            {"spec__cidr": "10.0.0.0/28", "spec__blockSize": 26},
            "calico-ippool-blocksize",
            "spec.blockSize",
        ),
        (IPPOOL, {"spec__vxlanMode": "Always"}, "calico-ippool-encapsulation", "spec"),
        (
            IPPOOL,
            {"spec__cidr": "fd00::/48", "spec__blockSize": 122},
            "calico-ippool-encapsulation",
            "spec.ipipMode",
        ),
        (NAMESPACE, {"metadata__labels": {"team": "-bad"}}, "label-syntax", "metadata.labels.team"),
        (NAMESPACE, {"metadata__name": "Dev-Team"}, "metadata-name", "metadata.name"),
    ],
)
def test_each_rule_refuses_a_broken_object(
    schemas: ObjectSchemas, rel: str, changes: dict[str, Any], rule: str, field: str
) -> None:
    found = findings(schemas, edited(rel, **changes))
    assert (rule, f"namespaces.n (x.yaml: {field})") in found, found


def test_an_applicationset_without_its_template_is_refused(schemas: ObjectSchemas) -> None:
    files = {rel: data for rel, data in tree(GOLDEN).items() if rel.startswith("applicationsets/")}
    assert schemas.check_shared(files) == []
    broken = yaml.safe_load(files["applicationsets/cluster-bootstrap.yaml"])
    del broken["spec"]["template"]
    violations = schemas.check_shared({"applicationsets/x.yaml": yaml.safe_dump(broken).encode()})
    assert [v.rule for v in violations] == ["crd-schema"]
    assert "template" in violations[0].message


def test_identical_objects_are_validated_once(schemas: ObjectSchemas) -> None:
    fresh = ObjectSchemas(ROOT / "policies", "1.31")
    obj = golden_object(QUOTA)
    same = [Rendered(path=f"q{i}.yaml", obj=copy.deepcopy(obj), source=()) for i in range(5)]
    assert fresh.check("c", same) == []
    assert fresh.validated == 1
    broken = [
        Rendered(path=f"b{i}.yaml", obj=edited(QUOTA, spec__x=1), source=()) for i in range(3)
    ]
    assert len(fresh.check("c", broken)) == 3  # every copy is reported, once validated
    assert fresh.validated == 2


def test_findings_carry_the_layer_that_made_the_object(schemas: ObjectSchemas) -> None:
    rendered = Rendered(path="x.yaml", obj=edited(QUOTA, spec__x=1), source=("namespaces", "n"))
    [violation] = schemas.check("c1", [rendered], lambda path: f"layer of {path}")
    assert violation.provenance == "layer of ('namespaces', 'n')"


def test_a_kubernetes_version_without_schemas_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"1\.9"):
        ObjectSchemas(ROOT / "policies", "1.9")
