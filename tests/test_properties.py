"""Properties over random inputs (hypothesis): merge obeys RFC 7386 rule by rule, and
random valid layer stacks compile, deterministically, into the tree they describe.

tests/test_merge.py already compares the merge with a transcription of the
RFC's pseudo-code; here each documented rule is checked on its own (a key the
patch leaves out is kept, `null` deletes, a map merges, anything else
replaces), with what follows from them: applying a patch twice changes
nothing more, and a stack merges as the patches applied one by one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.emit import check_relative_path
from compiler.layers import ClusterInput
from compiler.merge import merge_layers
from compiler.model import ClusterFacts, Layer, LayerRef
from compiler.pipeline import Checks, compile_inputs
from compiler.policy.objects import ObjectSchemas
from compiler.policy.schema import ConfigSchema
from compiler.project import load_project
from tests.conftest import ROOT

# --------------------------------------------------------------------------- merge

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-5, max_value=5)
    | st.text(alphabet="ab~.", max_size=2)
)
keys = st.text(alphabet="abc", max_size=2)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=15,
)
documents = st.dictionaries(keys, json_value, max_size=4)


def layer(name: str, doc: Mapping[str, Any], version: int = 1) -> Layer:
    return Layer(
        ref=LayerRef(layer=name, source="dynamodb", key=name, version=version), document=doc
    )


def merged(*docs: Mapping[str, Any]) -> Any:
    return merge_layers([layer(f"env/l{i}", d, i + 1) for i, d in enumerate(docs)]).value


def assert_obeys_rfc7386(target: Any, patch: Any, result: Any) -> None:
    """RFC 7386 section 2, as rules on the result of applying `patch` to `target`."""
    if not isinstance(patch, dict):
        assert result == patch  # a non-object patch replaces the target whole, lists verbatim
        return
    assert isinstance(result, dict)  # an object patch always gives an object
    base = target if isinstance(target, dict) else {}  # a non-object target counts as {}
    for name, value in base.items():
        if name not in patch:
            assert result[name] == value  # what the patch does not name is kept
    for name, value in patch.items():
        if value is None:
            assert name not in result  # null removes
        else:
            assert_obeys_rfc7386(base.get(name), value, result[name])
    assert set(result) == (set(base) | set(patch)) - {k for k, v in patch.items() if v is None}


def nulls_in_maps(value: Any) -> bool:
    """A null a patch should have applied: in a map, outside any list (lists are verbatim)."""
    if isinstance(value, dict):
        return any(v is None or nulls_in_maps(v) for v in value.values())
    return False


@settings(max_examples=250, deadline=None)
@given(documents, documents)
def test_merge_obeys_each_rule_of_rfc7386(target: dict[str, Any], patch: dict[str, Any]) -> None:
    before = copy.deepcopy((target, patch))
    start = merged(target)  # the first layer is itself a patch on {}
    result = merged(target, patch)
    assert_obeys_rfc7386(start, patch, result)
    assert not nulls_in_maps(result)  # nulls stay only inside lists, taken verbatim
    assert (target, patch) == before  # the layers are not changed by merging


@settings(max_examples=150, deadline=None)
@given(documents, documents)
def test_applying_a_patch_again_changes_nothing(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    once = merged(target, patch)
    assert merged(target, patch, patch) == once
    assert merged(once, patch) == once


@settings(max_examples=150, deadline=None)
@given(st.lists(documents, min_size=2, max_size=5))
def test_a_stack_merges_as_its_patches_applied_one_by_one(docs: list[dict[str, Any]]) -> None:
    step = merged(docs[0])
    for patch in docs[1:]:
        after = merged(step, patch)
        assert_obeys_rfc7386(step, patch, after)
        step = after
    assert merged(*docs) == step


# --------------------------------------------------------------------------- compile

PROJECT = load_project(ROOT)
# One set of checks for every example: the object schemas compile once per kind.
CHECKS = Checks(
    schema=ConfigSchema(PROJECT.policies_dir),
    objects=ObjectSchemas(PROJECT.policies_dir, PROJECT.kubernetes_version),
)
FACTS = ClusterFacts(name="prop-1", env="dev", server="https://prop-1:6443", region="eu-west-1")

ns_names = st.sampled_from(["dev-team", "payments", "web", "a", "data-9"])
# Label values YAML 1.1 or 1.2 would read as something else: they must stay strings.
label_values = st.sampled_from(
    [
        "backend",
        "no",
        "on",
        "off",
        "yes",
        "0755",
        "1e3",
        "0x1F",
        "true",
        "null",
        "",
        "v1.2",
        "A_b-c",
    ]
)
label_keys = st.sampled_from(["team", "environment", "tier", "app.kubernetes.io/name"])
quantities = st.sampled_from(["1", "4", "500m", "8Gi", "1.5", "1e3", "0", 2, 0.5])
resources = st.dictionaries(st.sampled_from(["cpu", "memory", "pods", "requests.cpu"]), quantities,
                            min_size=1, max_size=3)  # fmt: skip
free_text = st.text(alphabet=st.sampled_from(list("ab :#{}[]'\"|>-&*!%@`\\é\t")), max_size=12)
groups = st.lists(st.sampled_from(["devs", "auditors", "ops"]), min_size=1, max_size=2, unique=True)
# A binding's kind follows from its name, so layers never mix `role` and `clusterRole`.
bindings = st.fixed_dictionaries(
    {},
    optional={
        "viewers": st.fixed_dictionaries({"clusterRole": st.just("view"), "groups": groups}),
        "readers": st.fixed_dictionaries({"role": st.just("reader"), "groups": groups}),
    },
)
namespace = st.fixed_dictionaries(
    {},
    optional={
        "labels": st.dictionaries(label_keys, label_values, max_size=3),
        "annotations": st.dictionaries(
            st.sampled_from(["purpose", "owner"]), free_text, max_size=2
        ),
        "quotas": st.dictionaries(st.sampled_from(["q1", "compute"]), resources, max_size=2),
        "limits": st.fixed_dictionaries(
            {}, optional={"default": resources, "defaultRequest": resources}
        ),
        "access": bindings,
        "defaultDeny": st.booleans(),
        "networkPolicies": st.dictionaries(
            st.sampled_from(["deny-all", "allow-web"]),
            st.fixed_dictionaries(
                {"podSelector": st.just({}), "policyTypes": st.just(["Ingress"])}
            ),
            max_size=2,
        ),
    },
)
pool = st.fixed_dictionaries(
    {"cidr": st.sampled_from(["10.1.0.0/16", "192.168.0.0/18", "172.16.0.0/20"])},
    optional={"natOutgoing": st.booleans(), "ipipMode": st.sampled_from(["Always", "Never"])},
)
helm_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | free_text,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2),
    max_leaves=6,
)  # fmt: skip
addon = st.fixed_dictionaries(
    {
        "repoURL": st.just("https://charts.example.com/stable"),
        "chart": st.sampled_from(["nginx", "fluent-bit"]),
        "version": st.sampled_from(["1.2.3", "0.47"]),
        "namespace": ns_names,
    },
    optional={"values": st.dictionaries(st.sampled_from(["x", "y"]), helm_values, max_size=2)},
)


def layer_doc(deletions: bool) -> st.SearchStrategy[dict[str, Any]]:
    """One layer: parts of the DSL, and in upper layers `null` removing a namespace,
    a quota or an add-on (never a role template: bindings refer to it)."""
    maybe = (lambda s: s | st.none()) if deletions else (lambda s: s)
    return st.fixed_dictionaries(
        {},
        optional={
            "namespaces": st.dictionaries(ns_names, maybe(namespace), max_size=3),
            "calico": st.fixed_dictionaries(
                {},
                optional={
                    "ipPools": st.dictionaries(st.sampled_from(["pool-a", "pool-b"]), maybe(pool))
                },
            ),
            "addons": st.dictionaries(st.sampled_from(["ingress", "logging"]), maybe(addon)),
            "roles": st.fixed_dictionaries(
                {"reader": st.fixed_dictionaries({"rules": st.just([RULE])})}
            ),
        },
    )


RULE = {"apiGroups": [""], "resources": ["pods", "services"], "verbs": ["get", "list", "watch"]}
BASE = {"roles": {"reader": {"rules": [RULE]}}}

stacks = st.tuples(layer_doc(False), st.lists(layer_doc(True), max_size=3), layer_doc(True))


def stack_input(
    defaults: dict[str, Any], middle: list[dict[str, Any]], own: dict[str, Any]
) -> ClusterInput:
    layers = [layer("defaults", merged(BASE, defaults))]
    for number, doc in enumerate(middle):
        ref = LayerRef(layer="overlays/dev", source="files", file=f"overlays/dev/{number:02d}.yaml")
        layers.append(Layer(ref=ref, document=doc))
    layers.append(layer("cluster/prop-1", own, 7))
    return ClusterInput(FACTS, tuple(layers))


def reordered(value: Any) -> Any:
    """The same document with every map's keys in reverse order."""
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(v) for v in value]
    return value


def compile_stack(cluster: ClusterInput) -> tuple[dict[str, bytes], list[Any]]:
    result = compile_inputs([cluster], PROJECT, CHECKS)
    return result.files, result.violations


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks)
def test_random_valid_stacks_compile_deterministically(stack: Any) -> None:
    cluster = stack_input(*stack)
    files, violations = compile_stack(cluster)
    assert violations == []  # valid by construction: the whole pipeline renders it
    again = compile_stack(copy.deepcopy(cluster))
    shuffled = ClusterInput(
        FACTS, tuple(Layer(ref=x.ref, document=reordered(x.document)) for x in cluster.layers)
    )
    assert again == (files, violations)
    assert compile_stack(shuffled) == (files, violations)  # key order never shows
    root = "clusters/prop-1/"
    objects = [p for p in files if p.startswith(root) and p.endswith(".yaml")]
    assert f"{root}kustomization.yaml" in files and f"{root}cluster.json" in files
    for path, data in files.items():
        check_relative_path(path)
        assert path.startswith((root, "applicationsets/")), path
        assert data.endswith(b"\n") and b"\r" not in data
        if path.endswith(".yaml"):
            assert b"&id" not in data and b"*id" not in data  # no YAML aliases
    value = merged(*(x.document for x in cluster.layers))
    for name, ns in value.get("namespaces", {}).items():
        manifest = yaml.safe_load(files[f"{root}namespaces/{name}/namespace.yaml"])
        labels = manifest["metadata"].get("labels", {})
        for key, label in ns.get("labels", {}).items():
            # A YAML 1.1 reader (PyYAML) gets back the very string: "no" is not False.
            assert labels[key] == label and isinstance(labels[key], str)
    kustomization = yaml.safe_load(files[f"{root}kustomization.yaml"])
    assert sorted(f"{root}{r}" for r in kustomization["resources"]) == sorted(
        p for p in objects if not p.endswith("kustomization.yaml")
    )
