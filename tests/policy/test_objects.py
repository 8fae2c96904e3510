"""Every emitted object against its schema: Kubernetes OpenAPI or the vendored CRDs, strict.

The example output (`golden/`) must pass whole; each rule then gets a golden
object broken in one place, placed at the DSL entry it was rendered from, and
the test asserts the rule id and the path of the finding.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from compiler.errors import UsageError
from compiler.model import DocPath
from compiler.policy.finding import Finding
from compiler.policy.kind_schemas import CRD_FILES, structural
from compiler.policy.objects import ObjectSchemas, _KindSchema, _schema_findings
from compiler.policy.validator import TwoStageValidator
from compiler.render import Rendered

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "golden"
DEV = "clusters/dev-k3s"

# golden file -> the DSL entry the object was rendered from (compiler/render/).
QUOTA = (
    f"{DEV}/namespaces/dev-team/resourcequota-dev-quota.yaml",
    "namespaces.dev-team.quotas.dev-quota",
)
NAMESPACE = (f"{DEV}/namespaces/dev-team/namespace.yaml", "namespaces.dev-team")
NETPOL = (
    f"{DEV}/namespaces/dev-team/networkpolicy-restrict-traffic.yaml",
    "namespaces.dev-team.networkPolicies.restrict-traffic",
)
CALICO_NP = (
    f"{DEV}/namespaces/dev-team/calico-networkpolicy-allow-dev-traffic.yaml",
    "namespaces.dev-team.calicoPolicies.allow-dev-traffic",
)
IPPOOL = (f"{DEV}/calico/ippool-dev-ippool.yaml", "calico.ipPools.dev-ippool")
ROLE = (f"{DEV}/namespaces/dev-team/role-dev-role.yaml", "roles.dev-role")
BOOTSTRAP = "applicationsets/cluster-bootstrap.yaml"


@pytest.fixture(scope="module")
def schemas() -> ObjectSchemas:
    return ObjectSchemas(ROOT / "policies", "1.31")


def golden(rel: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((GOLDEN / rel).read_text(encoding="utf-8"))
    return obj


def edited(rel: str, change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    obj = copy.deepcopy(golden(rel))
    change(obj)
    return obj


def source_of(dotted: str) -> DocPath:
    return tuple(dotted.split("."))


def found(
    schemas: ObjectSchemas, case: tuple[str, str], obj: dict[str, Any]
) -> list[tuple[str, str]]:
    rendered = Rendered(case[0], obj, source_of(case[1]))
    return [(v.rule, v.path) for v in schemas.check("dev-k3s", [rendered])]


def test_the_example_output_validates_crds_included(schemas: ObjectSchemas) -> None:
    kinds = set()
    files = sorted(GOLDEN.glob("clusters/*/**/*.yaml")) + sorted(
        GOLDEN.glob("applicationsets/*.yaml")
    )
    for file in files:
        obj = yaml.safe_load(file.read_text(encoding="utf-8"))
        if obj["kind"] == "Kustomization":  # kustomize's own file, not an object
            continue
        kinds.add((obj["apiVersion"], obj["kind"]))
        assert schemas.check_document("c", file.name, obj) == [], file
    calico = {kind for api, kind in kinds if api == "projectcalico.org/v3"}
    assert calico == {
        "IPPool",
        "NetworkPolicy",
        "GlobalNetworkPolicy",
        "BGPConfiguration",
        "FelixConfiguration",
    }
    assert ("argoproj.io/v1alpha1", "ApplicationSet") in kinds
    assert {"Namespace", "ResourceQuota", "LimitRange", "Role", "RoleBinding"} <= {
        k for _, k in kinds
    }


def test_the_fleet_files_validate(schemas: ObjectSchemas) -> None:
    files = {
        f"applicationsets/{p.name}": p.read_bytes() for p in (GOLDEN / "applicationsets").iterdir()
    }
    assert len(files) == 2
    assert schemas.check_shared(files) == []


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = obj
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value

    return change


BROKEN = {
    # name: (case, change, rule, the finding's path)
    "quota-unknown-spec-field": (QUOTA, _set("spec.surprise", 1), "k8s-schema", QUOTA[1]),
    "quota-wrong-type": (QUOTA, _set("spec.hard.cpu", True), "k8s-schema", f"{QUOTA[1]}.cpu"),
    "quota-scopes-not-a-list": (QUOTA, _set("spec.scopes", "BestEffort"), "k8s-schema", QUOTA[1]),
    "netpol-wrong-type": (
        NETPOL,
        _set("spec.policyTypes", "Ingress"),
        "k8s-schema",
        f"{NETPOL[1]}.policyTypes",
    ),
    "role-verbs-not-a-list": (
        ROLE,
        _set("rules.0.verbs", "get"),
        "k8s-schema",
        f"{ROLE[1]}.rules[0].verbs",
    ),
    "ippool-host-bits": (
        IPPOOL,
        _set("spec.cidr", "192.168.1.0/16"),
        "calico-ippool-cidr",
        f"{IPPOOL[1]}.cidr",
    ),
    "ippool-not-a-cidr": (
        IPPOOL,
        _set("spec.cidr", "192.168.0.0"),
        "calico-ippool-cidr",
        f"{IPPOOL[1]}.cidr",
    ),
    "ippool-link-local": (
        IPPOOL,
        _set("spec.cidr", "169.254.0.0/16"),
        "calico-ippool-cidr",
        f"{IPPOOL[1]}.cidr",
    ),
    "ippool-holds-link-local": (
        IPPOOL,
        _set("spec.cidr", "128.0.0.0/1"),
        "calico-ippool-cidr",
        f"{IPPOOL[1]}.cidr",
    ),
    "ippool-link-local-v6": (
        IPPOOL,
        lambda o: o["spec"].update(cidr="fe80::/64", ipipMode="Never"),
        "calico-ippool-cidr",
        f"{IPPOOL[1]}.cidr",
    ),
    "ippool-blocksize-19": (
        IPPOOL,
        _set("spec.blockSize", 19),
        "calico-ippool-blocksize",
        f"{IPPOOL[1]}.blockSize",
    ),
    "ippool-v6-blocksize-32": (
        IPPOOL,
        lambda o: o["spec"].update(cidr="fd00::/48", ipipMode="Never", blockSize=32),
        "calico-ippool-blocksize",
        f"{IPPOOL[1]}.blockSize",
    ),
    "ippool-smaller-than-block": (
        IPPOOL,
        _set("spec.cidr", "10.0.0.0/28"),
        "calico-ippool-blocksize",
        f"{IPPOOL[1]}.blockSize",
    ),
    "ippool-ipip-and-vxlan": (
        IPPOOL,
        _set("spec.vxlanMode", "Always"),
        "calico-ippool-encapsulation",
        IPPOOL[1],
    ),
    "ippool-ipip-on-v6": (
        IPPOOL,
        _set("spec.cidr", "fd00::/48"),
        "calico-ippool-encapsulation",
        f"{IPPOOL[1]}.ipipMode",
    ),
    "ippool-unknown-mode": (
        IPPOOL,
        _set("spec.ipipMode", "Sometimes"),
        "crd-schema",
        f"{IPPOOL[1]}.ipipMode",
    ),
    "label-value-leading-dash": (
        NAMESPACE,
        _set("metadata.labels.team", "-bad"),
        "label-syntax",
        f"{NAMESPACE[1]}.labels.team",
    ),
    "label-value-too-long": (
        NAMESPACE,
        _set("metadata.labels.team", "a" * 64),
        "label-syntax",
        f"{NAMESPACE[1]}.labels.team",
    ),
    "label-key-bad-prefix": (
        NAMESPACE,
        _set("metadata.labels", {"Example.com/team": "x"}),
        "label-syntax",
        f"{NAMESPACE[1]}.labels.Example.com/team",
    ),
    "annotation-key": (
        NAMESPACE,
        _set("metadata.annotations", {"a b": "x"}),
        "annotation-syntax",
        f"{NAMESPACE[1]}.annotations.a b",
    ),
    "name-upper-case": (
        NAMESPACE,
        _set("metadata.name", "Dev-Team"),
        "metadata-name",
        NAMESPACE[1],
    ),
    "namespace-name-with-dot": (
        NAMESPACE,
        _set("metadata.name", "dev.team"),
        "metadata-name",
        NAMESPACE[1],
    ),
    "quota-name-upper-case": (QUOTA, _set("metadata.name", "Dev-Quota"), "metadata-name", QUOTA[1]),
    "calico-np-unknown-spec-field": (
        CALICO_NP,
        _set("spec.surprise", 1),
        "crd-schema",
        f"{CALICO_NP[1]}.surprise",
    ),
    "calico-np-unknown-rule-field": (
        CALICO_NP,
        _set("spec.ingress.0.source.surprise", 1),
        "crd-schema",
        f"{CALICO_NP[1]}.ingress[0].source.surprise",
    ),
    "calico-np-wrong-type": (
        CALICO_NP,
        _set("spec.order", "first"),
        "crd-schema",
        f"{CALICO_NP[1]}.order",
    ),
}


@pytest.mark.parametrize(("case", "change", "rule", "path"), BROKEN.values(), ids=list(BROKEN))
def test_each_rule_refuses_a_broken_object(
    schemas: ObjectSchemas,
    case: tuple[str, str],
    change: Callable[[dict[str, Any]], None],
    rule: str,
    path: str,
) -> None:
    assert (rule, path) in found(schemas, case, edited(case[0], change))


def test_a_message_names_the_object_and_the_field(schemas: ObjectSchemas) -> None:
    obj = edited(QUOTA[0], _set("spec.surprise", 1))
    [violation] = schemas.check("dev-k3s", [Rendered(QUOTA[0], obj, source_of(QUOTA[1]))])
    assert violation.cluster == "dev-k3s"
    assert violation.message == "ResourceQuota dev-team/dev-quota: spec.surprise: unknown field"
    assert violation.provenance == ""


def test_an_applicationset_without_its_template_is_refused(schemas: ObjectSchemas) -> None:
    obj = edited(BOOTSTRAP, lambda o: o["spec"].pop("template"))
    [violation] = schemas.check_document("", BOOTSTRAP, obj)
    assert (violation.rule, violation.path) == ("crd-schema", f"object:{BOOTSTRAP}:spec.template")
    assert "ApplicationSet argocd/cluster-bootstrap" in violation.message
    broken = {BOOTSTRAP: yaml.safe_dump(obj).encode()}
    assert [v.path for v in schemas.check_shared(broken)] == [violation.path]


UNKNOWN_FIELDS = {
    # Strict, as kubeconform -strict: an unknown field anywhere is refused.
    "k8s-metadata": (QUOTA[0], "metadata", "k8s-schema"),
    "k8s-spec": (QUOTA[0], "spec", "k8s-schema"),
    "k8s-nested": (NETPOL[0], "spec.ingress.0.from.0", "k8s-schema"),
    "k8s-list-item": (ROLE[0], "rules.0", "k8s-schema"),
    "crd-metadata": (IPPOOL[0], "metadata", "crd-schema"),
    "crd-spec": (IPPOOL[0], "spec", "crd-schema"),
    "crd-root": (CALICO_NP[0], "", "crd-schema"),
    "crd-nested": (CALICO_NP[0], "spec.ingress.0.source", "crd-schema"),
    "argocd-template": (BOOTSTRAP, "spec.template.spec", "crd-schema"),
    "argocd-generator": (BOOTSTRAP, "spec.generators.0.git", "crd-schema"),
}


@pytest.mark.parametrize(
    ("rel", "where", "rule"), UNKNOWN_FIELDS.values(), ids=list(UNKNOWN_FIELDS)
)
def test_strict_mode_refuses_unknown_fields(
    schemas: ObjectSchemas, rel: str, where: str, rule: str
) -> None:
    field = f"{where}.surprise" if where else "surprise"
    violations = schemas.check_document("c", rel, edited(rel, _set(field, "x")))
    assert [(v.rule, v.message.rpartition(": ")[2]) for v in violations] == [
        (rule, "unknown field")
    ]


def test_an_unknown_kind_is_a_finding(schemas: ObjectSchemas) -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    [violation] = schemas.check_document("c", "w.yaml", obj)
    assert violation.rule == "crd-schema"
    assert "no schema for example.com/v1 Widget" in violation.message
    built_in = schemas.check_document("c", "w.yaml", {**obj, "apiVersion": "v1"})
    assert [v.rule for v in built_in] == ["k8s-schema"]


def test_go_patterns_keep_their_meaning(schemas: ObjectSchemas) -> None:
    """Calico's `^(?i)(Info|...)?$` is RE2; Python needs `(?i:...)`. Case-insensitive, anchored."""
    felix = f"{DEV}/calico/felixconfiguration.yaml"
    for value, ok in (
        ("info", True),
        ("DEBUG", True),
        ("", True),
        ("Loud", False),
        ("Infox", False),
    ):
        violations = schemas.check_document(
            "c", felix, edited(felix, _set("spec.logSeverityScreen", value))
        )
        assert (violations == []) is ok, value


def test_role_names_are_path_segments(schemas: ObjectSchemas) -> None:
    """Kubernetes allows `:` in RBAC names (system:…); our DSL is stricter, the check is not."""
    assert (
        schemas.check_document("c", "r.yaml", edited(ROLE[0], _set("metadata.name", "ops:reader")))
        == []
    )
    rules = [
        v.rule
        for v in schemas.check_document(
            "c", "r.yaml", edited(ROLE[0], _set("metadata.name", "a/b"))
        )
    ]
    assert rules == ["metadata-name"]


def test_an_identical_object_is_validated_once() -> None:
    schemas = ObjectSchemas(ROOT / "policies", "1.31")
    obj = golden(QUOTA[0])
    copies = [Rendered(f"q{i}.yaml", copy.deepcopy(obj), ()) for i in range(5)]
    assert schemas.check("c", copies) == []
    assert schemas.validated == 1
    # Only the name differs: the content was checked already; the name is checked per object.
    renamed = edited(QUOTA[0], _set("metadata.name", "Other"))
    assert [v.rule for v in schemas.check("c", [Rendered("o.yaml", renamed, ())])] == [
        "metadata-name"
    ]
    assert schemas.validated == 1
    broken = [Rendered(f"b{i}.yaml", edited(QUOTA[0], _set("spec.x", 1)), ()) for i in range(3)]
    assert len(schemas.check("c", broken)) == 3  # each copy is reported, the content checked once
    assert schemas.validated == 2
    # A different type is different content, never a cache hit.
    numbered = edited(QUOTA[0], _set("metadata.name", 7))
    assert [v.rule for v in schemas.check("c", [Rendered("n.yaml", numbered, ())])] == [
        "k8s-schema",
        "metadata-name",
    ]
    assert schemas.validated == 3
    # Python's 1 == True == 1.0: the key keeps them apart (a bool is no quantity).
    one = edited(QUOTA[0], _set("spec.hard.pods", 1))
    assert schemas.check("c", [Rendered("one.yaml", one, ())]) == []
    true = edited(QUOTA[0], _set("spec.hard.pods", True))
    assert [v.rule for v in schemas.check("c", [Rendered("t.yaml", true, ())])] == ["k8s-schema"]
    assert schemas.validated == 5
    assert {len(key) for key in schemas._cache} == {16}  # digests: as small as any object's


def test_validation_does_not_change_the_object(schemas: ObjectSchemas) -> None:
    """fastjsonschema fills in defaults unless told not to (the IPPool CRD has some)."""
    obj = golden(IPPOOL[0])
    before = copy.deepcopy(obj)
    schemas.check_document("c", IPPOOL[0], obj)
    assert obj == before


def test_provenance_comes_from_the_callable(schemas: ObjectSchemas) -> None:
    obj = edited(QUOTA[0], _set("spec.hard.cpu", True))
    rendered = Rendered(QUOTA[0], obj, source_of(QUOTA[1]))
    [violation] = schemas.check(
        "dev-k3s", [rendered], lambda path: f"layer of {'.'.join(map(str, path))}"
    )
    assert violation.provenance == f"layer of {QUOTA[1]}.cpu"


def test_a_default_deny_is_reported_at_its_switch(schemas: ObjectSchemas) -> None:
    """`defaultDeny: true` renders a whole NetworkPolicy: its fields are not in the DSL."""
    obj = edited(NETPOL[0], _set("spec.surprise", 1))
    rendered = Rendered(NETPOL[0], obj, ("namespaces", "dev-team", "defaultDeny"))
    assert [v.path for v in schemas.check("c", [rendered])] == ["namespaces.dev-team.defaultDeny"]


@pytest.mark.parametrize("version", ["1.9", "2.0", "latest"])
def test_a_kubernetes_version_without_schemas_is_a_usage_error(version: str) -> None:
    with pytest.raises(UsageError, match=f"kubernetesVersion '{version}'"):
        ObjectSchemas(ROOT / "policies", version)


def test_a_patch_version_and_a_v_prefix_are_accepted() -> None:
    assert ObjectSchemas(ROOT / "policies", "v1.31.4").kubernetes_version.startswith("1.31.")


def test_the_crd_table_names_the_vendored_files() -> None:
    for (api_version, kind), rel in CRD_FILES.items():
        crd = yaml.load((ROOT / "policies" / "schemas" / rel).read_bytes(), Loader=yaml.CSafeLoader)
        group, _, version = api_version.partition("/")
        assert (crd["spec"]["group"], crd["spec"]["names"]["kind"]) == (group, kind), rel
        assert version in [v["name"] for v in crd["spec"]["versions"] if v["served"]], rel


def test_structural_schemas_become_strict() -> None:
    crd = {
        "type": "object",
        "properties": {
            "closed": {"type": "object", "properties": {"a": {"type": "string"}}},
            "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "map": {"type": "object", "additionalProperties": {"type": "string"}},
            "port": {
                "x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
            },
            "maybe": {"type": "string", "nullable": True},
        },
    }
    strict = structural(crd)
    assert strict["additionalProperties"] is False
    assert strict["properties"]["closed"]["additionalProperties"] is False
    assert "additionalProperties" not in strict["properties"]["open"]
    assert strict["properties"]["map"]["additionalProperties"] == {"type": "string"}
    assert strict["properties"]["maybe"]["type"] == ["string", "null"]


def test_a_finding_of_the_compiled_validator_alone_is_kept() -> None:
    """Should jsonschema see nothing where fastjsonschema failed (regex or draft corners),
    the object still fails, with fastjsonschema's message."""
    strict = {"properties": {"a": {"items": {"type": "string"}}}}
    # Compiled from the first object on; jsonschema, given no rules, sees nothing.
    validator = TwoStageValidator(
        strict, jsonschema.Draft202012Validator({}), compile_after=0, use_default=False
    )
    kind = _KindSchema("k8s-schema", validator)
    assert list(_schema_findings(kind, {"a": ["x", 1]})) == [
        Finding(("a", 1), "k8s-schema", "must be string")
    ]
