"""The merge stage: RFC 7386 JSON Merge Patch over a layer stack, with provenance.

Expected values are written from the RFC and from reading `examples/` and
`overlays/` by hand, never copied from the code's output.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.errors import EXIT_BAD_INPUT, CompilerError, UsageError
from compiler.layers import StackLoader
from compiler.merge import ListStrategies, MergeResult, merge_layers
from compiler.model import DocPath, Layer, LayerRef, Provenance
from compiler.pipeline import merge_cluster
from compiler.project import load_project
from compiler.provenance import deleted_by
from compiler.sources import Pin
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.snapshot import SnapshotStore
from tests.conftest import ROOT

# --------------------------------------------------------------------------- helpers


def db_layer(name: str, doc: Mapping[str, Any], version: int = 1) -> Layer:
    """A layer as it comes from a DynamoDB item."""
    kind, sep, rest = name.partition("/")
    pk = f"{kind}#{rest}" if sep else kind
    ref = LayerRef(layer=name, source="dynamodb", key=f"{pk}/v#{version:010d}", version=version)
    return Layer(ref=ref, document=doc)


def file_layer(
    rel: str, doc: Mapping[str, Any], lines: Mapping[DocPath, int] | None = None
) -> Layer:
    """A layer as it comes from an overlay file."""
    ref = LayerRef(layer=rel.rsplit("/", 1)[0], source="files", file=rel)
    return Layer(ref=ref, document=doc, lines=dict(lines or {}))


def merge(*docs: Mapping[str, Any], lists: ListStrategies | None = None) -> MergeResult:
    """Merge plain documents as layers `l0`, `l1`, ... (lowest precedence first)."""
    return merge_layers([db_layer(f"env/l{i}", d) for i, d in enumerate(docs)], lists)


def who(result: MergeResult, *path: str | int) -> str | None:
    """The stack name of the layer that set a path, or None."""
    prov = result.provenance.get(tuple(path))
    return prov.ref.layer if prov is not None else None


def leaf_paths(value: Any, path: DocPath = ()) -> Iterator[DocPath]:
    """Leaves as MergeResult documents them: scalars, lists and their items, empty maps.

    The document root is not a leaf (no layer "sets" the root).
    """
    if isinstance(value, dict):
        if not value and path:
            yield path
        for k, v in value.items():
            yield from leaf_paths(v, (*path, k))
    elif isinstance(value, list):
        yield path
        for i, v in enumerate(value):
            yield from leaf_paths(v, (*path, i))
    else:
        yield path


def reference_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 section 2, transcribed (without mutating its arguments)."""
    if isinstance(patch, dict):
        if not isinstance(target, dict):
            target = {}  # ignore the contents and set it to an empty object
        target = dict(target)
        for name, value in patch.items():
            if value is None:
                target.pop(name, None)
            else:
                target[name] = reference_merge_patch(target.get(name), value)
        return target
    return copy.deepcopy(patch)


def example_merged(cluster: str, pin: Pin | None = None) -> MergeResult:
    project = load_project(ROOT)
    loaded = StackLoader(SnapshotStore(ROOT / "examples"), project, pin or Pin()).load(cluster)
    return merge_cluster(loaded, project)


# --------------------------------------------------------------------------- RFC 7386 Appendix A

# (original, patch, result), verbatim from RFC 7386 Appendix A.
RFC_APPENDIX_A = [
    ('{"a":"b"}', '{"a":"c"}', '{"a":"c"}'),
    ('{"a":"b"}', '{"b":"c"}', '{"a":"b","b":"c"}'),
    ('{"a":"b"}', '{"a":null}', "{}"),
    ('{"a":"b","b":"c"}', '{"a":null}', '{"b":"c"}'),
    ('{"a":["b"]}', '{"a":"c"}', '{"a":"c"}'),
    ('{"a":"c"}', '{"a":["b"]}', '{"a":["b"]}'),
    ('{"a":{"b":"c"}}', '{"a":{"b":"d","c":null}}', '{"a":{"b":"d"}}'),
    ('{"a":[{"b":"c"}]}', '{"a":[1]}', '{"a":[1]}'),
    ('["a","b"]', '["c","d"]', '["c","d"]'),
    ('{"a":"b"}', '["c"]', '["c"]'),
    ('{"a":"foo"}', "null", "null"),
    ('{"a":"foo"}', '"bar"', '"bar"'),
    ('{"e":null}', '{"a":1}', '{"e":null,"a":1}'),
    ("[1,2]", '{"a":"b","c":null}', '{"a":"b"}'),
    ("{}", '{"a":{"bb":{"ccc":null}}}', '{"a":{"bb":{}}}'),
]


def test_the_rfc_table_is_complete() -> None:
    assert len(RFC_APPENDIX_A) == 15
    for row in RFC_APPENDIX_A:
        for text in row:
            json.loads(text)


@pytest.mark.parametrize(("original", "patch", "result"), RFC_APPENDIX_A)
def test_rfc7386_appendix_a_under_a_key(original: str, patch: str, result: str) -> None:
    """Layers are maps, so each example sits under a key `doc`: this covers the
    non-object originals and patches of the table too. A `null` patch of `doc`
    removes the member (RFC: null result -> the member is gone)."""
    orig, pat, res = json.loads(original), json.loads(patch), json.loads(result)
    expected = {} if res is None else {"doc": res}
    if orig == {"e": None}:
        # The original is itself a layer applied onto nothing, so its `null` is a
        # deletion of an absent key: "e" cannot survive into the merged config.
        expected = {"doc": {"a": 1}}
    assert merge({"doc": orig}, {"doc": pat}).value == expected


@pytest.mark.parametrize(
    ("original", "patch", "result"),
    [
        row
        for row in RFC_APPENDIX_A
        if row[0].startswith("{") and row[1].startswith("{") and "null" not in row[0]
    ],
)
def test_rfc7386_appendix_a_as_whole_layers(original: str, patch: str, result: str) -> None:
    assert merge(json.loads(original), json.loads(patch)).value == json.loads(result)


# --------------------------------------------------------------------------- semantics


def test_null_deletes_a_key_and_keeps_its_siblings() -> None:
    merged = merge({"a": {"x": 1, "y": 2}}, {"a": {"x": None}})
    assert merged.value == {"a": {"y": 2}}
    assert ("a", "x") not in merged.provenance
    assert who(merged, "a", "y") == "env/l0"


def test_null_deletes_a_whole_namespace() -> None:
    defaults = {
        "namespaces": {
            "sandbox": {"labels": {"team": "platform"}, "quotas": {"q": {"cpu": "1"}}},
            "keep": {"defaultDeny": True},
        }
    }
    merged = merge(defaults, {"namespaces": {"sandbox": None}})
    assert merged.value == {"namespaces": {"keep": {"defaultDeny": True}}}
    assert not [p for p in merged.provenance if p[:2] == ("namespaces", "sandbox")]
    # Every leaf that was removed has the deletion as its last write.
    for path in [("namespaces", "sandbox", "labels", "team"), ("namespaces", "sandbox")]:
        last = merged.history[path][-1]
        assert last.deleted and last.provenance.ref.layer == "env/l1"


def test_null_for_an_absent_key_is_a_no_op() -> None:
    merged = merge({"a": {"x": 1}}, {"a": {"nope": None}, "gone": None})
    assert merged.value == {"a": {"x": 1}}
    assert ("a", "nope") not in merged.history and ("gone",) not in merged.history
    # A null in a new subtree is stripped, never stored (RFC: MergePatch({}, ...)).
    merged = merge({}, {"n": {"a": None, "b": {"c": None}}})
    assert merged.value == {"n": {"b": {}}}
    assert who(merged, "n", "b") == "env/l1"  # an empty map is a leaf with a setter


def test_a_later_layer_re_adds_a_deleted_key() -> None:
    merged = merge(
        {"ns": {"sandbox": {"team": "a"}}},
        {"ns": {"sandbox": None}},
        {"ns": {"sandbox": {"team": "b"}}},
    )
    assert merged.value == {"ns": {"sandbox": {"team": "b"}}}
    assert who(merged, "ns", "sandbox", "team") == "env/l2"
    history = merged.history[("ns", "sandbox", "team")]
    assert [(s.value, s.deleted, s.provenance.ref.layer) for s in history] == [
        ("a", False, "env/l0"),
        (None, True, "env/l1"),
        ("b", False, "env/l2"),
    ]


def test_maps_merge_recursively() -> None:
    merged = merge(
        {"a": {"b": {"c": 1, "d": 2}, "e": 3}},
        {"a": {"b": {"d": 20, "f": 4}}},
        {"a": {"g": {"h": 5}}},
    )
    assert merged.value == {"a": {"b": {"c": 1, "d": 20, "f": 4}, "e": 3, "g": {"h": 5}}}
    assert who(merged, "a", "b", "c") == "env/l0"
    assert who(merged, "a", "b", "d") == "env/l1"
    assert who(merged, "a", "b", "f") == "env/l1"
    assert who(merged, "a", "e") == "env/l0"
    assert who(merged, "a", "g", "h") == "env/l2"


def test_lists_replace_whole_and_scalars_replace() -> None:
    merged = merge({"l": [1, 2, 3], "s": "x", "n": 1}, {"l": [9], "s": "y"})
    assert merged.value == {"l": [9], "s": "y", "n": 1}
    assert who(merged, "l") == who(merged, "l", 0) == "env/l1"
    assert ("l", 1) not in merged.provenance and ("l", 2) not in merged.provenance
    # An empty list replaces too (it is a value, not "nothing").
    assert merge({"l": [1]}, {"l": []}).value == {"l": []}


def test_an_empty_map_patch_is_a_no_op_on_a_map_but_replaces_a_scalar() -> None:
    assert merge({"a": {"x": 1}}, {"a": {}}).value == {"a": {"x": 1}}
    merged = merge({"a": 1}, {"a": {}})
    assert merged.value == {"a": {}}
    assert who(merged, "a") == "env/l1"


def test_type_changes_map_to_scalar_and_back() -> None:
    to_scalar = merge({"a": {"x": 1, "y": {"z": 2}}}, {"a": "flat"})
    assert to_scalar.value == {"a": "flat"}
    assert set(to_scalar.provenance) == {("a",)}
    back = merge({"a": {"x": 1, "y": {"z": 2}}}, {"a": "flat"}, {"a": {"y": {"w": 3}}})
    # The old map's keys do not come back: the scalar had replaced it.
    assert back.value == {"a": {"y": {"w": 3}}}
    assert set(back.provenance) == {("a", "y", "w")}
    assert who(back, "a", "y", "w") == "env/l2"
    # list <-> map
    assert merge({"a": [1]}, {"a": {"k": [2]}}).value == {"a": {"k": [2]}}
    assert merge({"a": {"k": 1}}, {"a": [{"k": 2}]}).value == {"a": [{"k": 2}]}


def test_nulls_inside_a_list_are_kept_as_the_rfc_takes_arrays_verbatim() -> None:
    merged = merge({}, {"a": [None, {"b": None, "c": 1}, [None]]})
    assert merged.value == {"a": [None, {"b": None, "c": 1}, [None]]}


def test_a_map_emptied_by_deletions_is_a_leaf_set_by_the_deleting_layer() -> None:
    merged = merge({"ns": {"q": {"cpu": "1"}}}, {"ns": {"q": {"cpu": None}}})
    assert merged.value == {"ns": {"q": {}}}
    assert who(merged, "ns", "q") == "env/l1"


def test_no_layers_and_empty_layers_give_an_empty_document() -> None:
    assert merge().value == {}
    assert merge({}, {}).value == {}
    assert merge().provenance == {}


# --------------------------------------------------------------------------- provenance


def test_every_leaf_has_the_provenance_of_the_layer_that_set_it() -> None:
    defaults = db_layer("defaults", {"a": {"x": 1, "y": [1, 2]}, "b": "keep", "e": {}}, version=7)
    overlay = file_layer(
        "overlays/prod/10-a.yaml",
        {"a": {"x": 2, "z": {"w": True}}},
        {("a",): 2, ("a", "x"): 3, ("a", "z"): 4, ("a", "z", "w"): 5},
    )
    cluster = db_layer("cluster/c1", {"a": {"y": ["q"]}}, version=3)
    merged = merge_layers([defaults, overlay, cluster])
    assert merged.value == {"a": {"x": 2, "y": ["q"], "z": {"w": True}}, "b": "keep", "e": {}}
    assert set(merged.provenance) == set(leaf_paths(merged.value))
    assert merged.provenance == {
        ("a", "x"): Provenance(overlay.ref, 3),
        ("a", "z", "w"): Provenance(overlay.ref, 5),
        ("a", "y"): Provenance(cluster.ref, None),
        ("a", "y", 0): Provenance(cluster.ref, None),
        ("b",): Provenance(defaults.ref, None),
        ("e",): Provenance(defaults.ref, None),
    }
    assert cluster.ref.key == "cluster#c1/v#0000000003" and cluster.ref.version == 3
    assert merged.provenance[("a", "x")].describe() == "overlays/prod/10-a.yaml:3"
    assert merged.provenance[("b",)].describe() == "dynamodb:defaults/v#0000000007@7"
    # provenance_of falls back to the nearest ancestor, and not past a deletion.
    assert merged.provenance_of(("a", "y", 0, "deeper")) == Provenance(cluster.ref, None)
    assert merged.provenance_of(("nowhere",)) is None
    # The layers that set what is left under `a`, in stack order (defaults' a.y was
    # replaced, so defaults set nothing left there).
    assert merged.layers_under(("a",)) == [
        Provenance(overlay.ref, 3),
        Provenance(overlay.ref, 5),
        Provenance(cluster.ref, None),
    ]
    assert merged.layers_under(()) == [
        Provenance(defaults.ref, None),
        Provenance(overlay.ref, 3),
        Provenance(overlay.ref, 5),
        Provenance(cluster.ref, None),
    ]


def test_overridden_values_are_in_the_history_oldest_first() -> None:
    d1 = db_layer("defaults", {"q": {"cpu": "2"}}, version=2)
    f1 = file_layer("overlays/prod/10-q.yaml", {"q": {"cpu": "8"}}, {("q", "cpu"): 6})
    c1 = db_layer("cluster/c", {"q": {"cpu": "16"}})
    merged = merge_layers([d1, f1, c1])
    history = merged.history[("q", "cpu")]
    assert [(s.value, s.provenance) for s in history] == [
        ("2", Provenance(d1.ref, None)),
        ("8", Provenance(f1.ref, 6)),
        ("16", Provenance(c1.ref, None)),
    ]
    assert merged.provenance[("q", "cpu")] == history[-1].provenance


def test_a_deletion_is_recorded_on_the_line_of_the_null() -> None:
    d = db_layer("defaults", {"namespaces": {"sandbox": {"labels": {"team": "p"}}}}, version=2)
    f = file_layer(
        "overlays/prod/20-no-sandbox.yaml",
        {"namespaces": {"sandbox": None}},
        {(): 2, ("namespaces",): 2, ("namespaces", "sandbox"): 3},
    )
    merged = merge_layers([d, f])
    assert merged.value == {"namespaces": {}}
    gone = merged.history[("namespaces", "sandbox", "labels", "team")]
    assert [(s.deleted, s.provenance) for s in gone] == [
        (False, Provenance(d.ref, None)),
        (True, Provenance(f.ref, 3)),
    ]
    # The emptied `namespaces` map is now a leaf, set by the overlay (line 2).
    assert merged.provenance == {("namespaces",): Provenance(f.ref, 2)}


# --------------------------------------------------------------------------- the example clusters


def test_prod_eks_1_provenance_from_the_example_files() -> None:
    merged = example_merged("prod-eks-1")
    quota = ("namespaces", "monitoring", "quotas", "monitoring-quota")
    # overlays/prod/10-quotas.yaml: line 6 `cpu: "8"`, line 7 `memory: 16Gi`.
    assert merged.value["namespaces"]["monitoring"]["quotas"]["monitoring-quota"] == {
        "cpu": "8",
        "memory": "16Gi",
    }
    cpu = merged.provenance[(*quota, "cpu")]
    assert (cpu.ref.source, cpu.ref.file, cpu.line) == ("files", "overlays/prod/10-quotas.yaml", 6)
    assert merged.provenance[(*quota, "memory")].line == 7
    assert [(s.value, s.provenance.describe()) for s in merged.history[(*quota, "cpu")]] == [
        ("2", "dynamodb:defaults/v#0000000002@2"),
        ("8", "overlays/prod/10-quotas.yaml:6"),
    ]
    # limits exist only in defaults version 2.
    limit = merged.provenance[("namespaces", "monitoring", "limits", "default", "cpu")]
    assert limit.ref == LayerRef(
        layer="defaults", source="dynamodb", key="defaults/v#0000000002", version=2
    )
    env = merged.provenance[("namespaces", "payments", "quotas", "payments-quota", "cpu")]
    assert merged.value["namespaces"]["payments"]["quotas"]["payments-quota"]["cpu"] == "24"
    assert (env.ref.layer, env.ref.key, env.ref.version) == ("env/prod", "env#prod/v#0000000002", 2)
    labels = merged.value["namespaces"]["monitoring"]["labels"]
    assert labels == {"team": "platform", "environment": "prod"}
    assert who(merged, "namespaces", "monitoring", "labels", "team") == "defaults"
    assert who(merged, "namespaces", "monitoring", "labels", "environment") == "env/prod"
    bgp = merged.provenance[("calico", "bgpConfiguration", "asNumber")]
    assert merged.value["calico"]["bgpConfiguration"]["asNumber"] == 64512
    assert bgp.ref.key == "cluster#prod-eks-1/v#0000000001" and bgp.ref.version == 1
    # 20-no-sandbox.yaml line 6: replicaCount 3 over the defaults' 2.
    replicas = ("addons", "ingress-nginx", "values", "controller", "replicaCount")
    assert merged.value["addons"]["ingress-nginx"]["values"] == {"controller": {"replicaCount": 3}}
    assert merged.provenance[replicas].describe() == "overlays/prod/20-no-sandbox.yaml:6"
    # The sandbox namespace of the defaults is deleted, and has no provenance left.
    assert "sandbox" not in merged.value["namespaces"]
    assert not [p for p in merged.provenance if p[:2] == ("namespaces", "sandbox")]
    deletion = merged.history[("namespaces", "sandbox")][-1]
    assert deletion.deleted
    assert deletion.provenance.describe() == "overlays/prod/20-no-sandbox.yaml:9"
    assert set(merged.provenance) == set(leaf_paths(merged.value))


def test_a_pinned_older_version_is_what_provenance_names() -> None:
    merged = example_merged("prod-eks-1", Pin(versions={"defaults": 1}))
    assert "limits" not in merged.value["namespaces"]["monitoring"]
    quota = ("namespaces", "monitoring", "quotas", "monitoring-quota", "cpu")
    assert merged.history[quota][0].provenance.describe() == "dynamodb:defaults/v#0000000001@1"


def test_dev_and_test_clusters_merge_as_the_files_say() -> None:
    dev = example_merged("dev-k3s")
    ns = dev.value["namespaces"]
    assert set(ns) == {"monitoring", "sandbox", "dev-team"}
    assert ns["dev-team"]["quotas"] == {"dev-quota": {"cpu": "4", "memory": "8Gi"}}
    assert ns["dev-team"]["networkPolicies"]["restrict-traffic"]["policyTypes"] == ["Ingress"]
    rc = ("addons", "ingress-nginx", "values", "controller", "replicaCount")
    assert dev.value["addons"]["ingress-nginx"]["values"]["controller"]["replicaCount"] == 1
    assert dev.provenance[rc].ref.key == "cluster#dev-k3s/v#0000000002"
    # dev-k3s v2 restates only `values`: the chart and version stay the defaults'.
    assert dev.value["addons"]["ingress-nginx"]["chart"] == "ingress-nginx"
    assert who(dev, "addons", "ingress-nginx", "chart") == "defaults"
    test = example_merged("test-k3s")
    access = test.value["namespaces"]["monitoring"]["access"]
    assert access == {
        "viewers": {"clusterRole": "view", "groups": ["auditors"]},
        "qa-viewers": {"clusterRole": "view", "groups": ["qa-engineers"]},
    }
    qa = test.provenance[("namespaces", "monitoring", "access", "qa-viewers", "groups", 0)]
    assert qa.describe() == "overlays/test/10-access.yaml:8"


def test_dynamodb_backends_give_the_same_merge_as_the_snapshot(
    seeded_store: DynamoDBStore,
) -> None:
    project = load_project(ROOT)
    from_table = merge_cluster(
        StackLoader(seeded_store, project, Pin()).load("prod-eks-1"), project
    )
    from_files = example_merged("prod-eks-1")
    assert from_table.value == from_files.value
    assert {p: v.describe() for p, v in from_table.provenance.items()} == {
        p: v.describe() for p, v in from_files.provenance.items()
    }


# --------------------------------------------------------------------------- list strategies


def test_list_strategies_parse_patterns_and_strategies() -> None:
    rules = ListStrategies.from_mapping(
        {"namespaces.*.access.*.groups": "append", "roles.*.rules": "by-key:name", "x": "replace"}
    )
    assert rules.rules == (
        (("namespaces", "*", "access", "*", "groups"), "append"),
        (("roles", "*", "rules"), "by-key:name"),
        (("x",), "replace"),
    )
    assert rules.for_path(("namespaces", "dev", "access", "viewers", "groups")) == "append"
    # `*` is one path part: it matches neither zero parts nor several.
    assert rules.for_path(("namespaces", "access", "viewers", "groups")) == "replace"
    assert rules.for_path(("namespaces", "a", "b", "access", "v", "groups")) == "replace"
    assert rules.for_path(("namespaces", "dev", "access", "viewers", "users")) == "replace"
    assert rules.for_path(("roles", "r", "rules")) == "by-key:name"
    # A pattern matches a path of its own length only: not its items, not its parents.
    assert rules.for_path(("roles", "r", "rules", 0)) == "replace"
    assert rules.for_path(("roles", "r")) == "replace"
    assert rules.for_path(("elsewhere",)) == "replace"
    # List indexes match as text.
    assert ListStrategies.from_mapping({"l.*.m": "append"}).for_path(("l", 0, "m")) == "append"
    # The first matching pattern wins.
    first = ListStrategies.from_mapping({"a.b": "append", "a.*": "by-key:id"})
    assert first.for_path(("a", "b")) == "append" and first.for_path(("a", "c")) == "by-key:id"


def test_by_key_may_be_spelled_with_a_space_as_in_the_design() -> None:
    rules = ListStrategies.from_mapping({"l": "by-key: name"})
    assert rules.for_path(("l",)) == "by-key:name"


@pytest.mark.parametrize("bad", ["merge", "Append", "by-key:", "by-key:  ", "bykey:name", ""])
def test_an_unknown_list_strategy_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError) as caught:
        ListStrategies.from_mapping({"roles.*.rules": bad})
    assert isinstance(caught.value, CompilerError)
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert "roles.*.rules" in str(caught.value)


def test_the_project_file_declares_append_for_access_groups() -> None:
    lists = load_project(ROOT).lists
    assert lists.for_path(("namespaces", "monitoring", "access", "viewers", "groups")) == "append"
    assert lists.for_path(("namespaces", "monitoring", "access", "viewers", "users")) == "replace"


def test_append_dedupes_and_keeps_order() -> None:
    lists = ListStrategies.from_mapping({"namespaces.*.access.*.groups": "append"})
    base = {"namespaces": {"ns": {"access": {"v": {"groups": ["a", "b"], "users": ["u1"]}}}}}
    top = {
        "namespaces": {
            "ns": {"access": {"v": {"groups": ["c", "b", "a", "d", "c"], "users": ["u2"]}}}
        }
    }
    merged = merge(base, top, lists=lists)
    v = merged.value["namespaces"]["ns"]["access"]["v"]
    assert v["groups"] == ["a", "b", "c", "d"]
    assert v["users"] == ["u2"]  # not matched by the pattern: replaced
    groups = ("namespaces", "ns", "access", "v", "groups")
    assert [who(merged, *groups, i) for i in range(4)] == ["env/l0", "env/l0", "env/l1", "env/l1"]
    assert set(merged.provenance) == set(leaf_paths(merged.value))


def test_append_compares_json_values() -> None:
    lists = ListStrategies.from_mapping({"l": "append"})
    merged = merge({"l": [1, {"k": "v"}, "1"]}, {"l": [True, {"k": "v"}, 1, "1", 2]}, lists=lists)
    # true is not 1 in JSON; equal maps are one entry.
    assert merged.value == {"l": [1, {"k": "v"}, "1", True, 2]}


def test_append_through_the_example_project_stack() -> None:
    project = load_project(ROOT)
    base = db_layer(
        "defaults",
        {"namespaces": {"m": {"access": {"v": {"clusterRole": "view", "groups": ["auditors"]}}}}},
    )
    top = file_layer(
        "overlays/prod/30-g.yaml",
        {"namespaces": {"m": {"access": {"v": {"groups": ["sre", "auditors"]}}}}},
        {
            ("namespaces", "m", "access", "v", "groups", 0): 4,
            ("namespaces", "m", "access", "v", "groups", 1): 5,
        },
    )
    merged = merge_layers([base, top], project.lists)
    groups = ("namespaces", "m", "access", "v", "groups")
    assert merged.value["namespaces"]["m"]["access"]["v"]["groups"] == ["auditors", "sre"]
    assert merged.provenance[(*groups, 1)] == Provenance(top.ref, 4)
    assert merged.provenance[(*groups, 0)] == Provenance(base.ref, None)


def test_by_key_merges_entries_sharing_the_key_and_appends_new_ones() -> None:
    lists = ListStrategies.from_mapping({"namespaces.*.things": "by-key:name"})
    base = {
        "namespaces": {
            "ns": {
                "things": [
                    {"name": "a", "x": 1, "meta": {"p": 1, "q": 2}},
                    {"name": "b", "x": 1, "y": 1},
                ],
                "other": [{"name": "a", "x": 1}],
            }
        }
    }
    top = {
        "namespaces": {
            "ns": {
                "things": [
                    {"name": "b", "x": 2, "y": None},
                    {"name": "c", "x": 3, "z": None},
                    {"name": "a", "meta": {"q": 20}},
                    {"x": "no key"},
                ],
                "other": [{"name": "a", "x": 2}],
            }
        }
    }
    merged = merge(base, top, lists=lists)
    ns = merged.value["namespaces"]["ns"]
    assert ns["things"] == [
        {"name": "a", "x": 1, "meta": {"p": 1, "q": 20}},
        {"name": "b", "x": 2},
        {"name": "c", "x": 3},
        {"x": "no key"},
    ]
    assert ns["other"] == [{"name": "a", "x": 2}]  # replace elsewhere
    things = ("namespaces", "ns", "things")
    assert who(merged, *things, 0, "x") == "env/l0"
    assert who(merged, *things, 0, "meta", "p") == "env/l0"
    assert who(merged, *things, 0, "meta", "q") == "env/l1"
    assert who(merged, *things, 1, "x") == "env/l1"
    assert who(merged, *things, 2, "name") == "env/l1"
    assert (*things, 1, "y") not in merged.provenance
    assert merged.history[(*things, 1, "y")][-1].deleted
    assert [s.value for s in merged.history[(*things, 1, "x")]] == [1, 2]
    assert set(merged.provenance) == set(leaf_paths(merged.value))


def test_by_key_names_the_line_of_the_entry_in_the_layer_not_in_the_result() -> None:
    lists = ListStrategies.from_mapping({"l": "by-key:name"})
    base = file_layer(
        "overlays/x/10.yaml",
        {"l": [{"name": "a", "x": 1}, {"name": "b", "x": 1}]},
        {("l",): 1, ("l", 0): 2, ("l", 0, "x"): 3, ("l", 1): 4, ("l", 1, "x"): 5},
    )
    # "b" is the layer's item 0 (lines 2-3), but lands on the result's item 1.
    top = file_layer(
        "overlays/x/20.yaml",
        {"l": [{"name": "b", "x": 2}, {"name": "a", "x": 9}]},
        {("l",): 1, ("l", 0): 2, ("l", 0, "x"): 3, ("l", 1): 4, ("l", 1, "x"): 5},
    )
    merged = merge_layers([base, top], lists)
    assert merged.value == {"l": [{"name": "a", "x": 9}, {"name": "b", "x": 2}]}
    assert merged.provenance[("l", 1, "x")] == Provenance(top.ref, 3)
    assert merged.provenance[("l", 0, "x")] == Provenance(top.ref, 5)


# --------------------------------------------------------------------------- inputs stay as they were


def test_merging_does_not_mutate_layers_shared_by_two_stacks() -> None:
    lists = ListStrategies.from_mapping({"g": "append", "k": "by-key:id"})
    shared = db_layer(
        "defaults",
        {
            "ns": {"a": {"x": 1}, "gone": {"y": 2}},
            "g": ["a"],
            "k": [{"id": 1, "v": 1}],
            "l": [{"m": 1}],
        },
    )
    before = copy.deepcopy(dict(shared.document))
    one = merge_layers(
        [
            shared,
            db_layer(
                "cluster/one",
                {"ns": {"a": {"x": 2}, "gone": None}, "g": ["b"], "k": [{"id": 1, "v": 2}]},
            ),
        ],
        lists,
    )
    two = merge_layers([db_layer("env/two", {"ns": {"b": {}}}), shared], lists)
    assert dict(shared.document) == before
    assert one.value == {
        "ns": {"a": {"x": 2}},
        "g": ["a", "b"],
        "k": [{"id": 1, "v": 2}],
        "l": [{"m": 1}],
    }
    assert two.value == {
        "ns": {"a": {"x": 1}, "gone": {"y": 2}, "b": {}},
        **{k: before[k] for k in ("g", "k", "l")},
    }
    # The results share no structure with the layer or with each other.
    one.value["l"][0]["m"] = 99
    one.value["g"].append("zzz")
    two.value["ns"]["a"]["x"] = 42
    assert dict(shared.document) == before
    assert two.value["l"] == [{"m": 1}] and two.value["g"] == ["a"]
    again = merge_layers([shared], lists)
    assert again.value == before


def test_the_example_layers_are_unchanged_by_merging_two_clusters() -> None:
    project = load_project(ROOT)
    loader = StackLoader(SnapshotStore(ROOT / "examples"), project, Pin())
    prod = loader.load("prod-eks-1")
    before = [copy.deepcopy(dict(layer.document)) for layer in prod.layers]
    first = merge_cluster(prod, project)
    first.value["namespaces"]["monitoring"]["quotas"]["monitoring-quota"]["cpu"] = "999"
    second = merge_cluster(prod, project)
    assert [dict(layer.document) for layer in prod.layers] == before
    assert second.value["namespaces"]["monitoring"]["quotas"]["monitoring-quota"]["cpu"] == "8"


# --------------------------------------------------------------------------- property


json_leaf = st.none() | st.integers(min_value=-3, max_value=3) | st.text(alphabet="ab", max_size=2)
keys = st.text(alphabet="abc.", max_size=2)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)
documents = st.dictionaries(keys, json_value, max_size=4)


def writes(patch: Any, path: DocPath) -> bool:
    """Whether applying `patch` sets the (non-map) value at `path`."""
    node = patch
    for part in path:
        if isinstance(node, list):
            return True  # an array is replaced whole, with everything in it
        if not isinstance(node, dict) or node.get(part) is None:
            return False
        node = node[part]
    return not isinstance(node, dict)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(documents, min_size=1, max_size=4))
def test_merge_equals_reference_rfc7386(docs: list[dict[str, Any]]) -> None:
    before = copy.deepcopy(docs)
    layers = [db_layer(f"env/l{i}", d, version=i + 1) for i, d in enumerate(docs)]
    merged = merge_layers(layers)
    expected: Any = {}
    for doc in docs:
        expected = reference_merge_patch(expected, doc)
    assert merged.value == expected
    assert docs == before
    # Provenance covers exactly the leaves, and names the last layer that wrote them.
    assert set(merged.provenance) == set(leaf_paths(merged.value))
    for path, prov in merged.provenance.items():
        value: Any = merged.value
        for part in path:
            value = value[part]
        if isinstance(value, dict):
            continue  # an empty map: who "set" it is a matter of taste
        writers = [i for i, d in enumerate(docs) if writes(d, path)]
        assert writers, path
        assert prov.ref == layers[writers[-1]].ref, path


@settings(max_examples=200, deadline=None)
@given(documents, documents)
def test_two_layers_equal_merge_patch_of_the_rfc(
    original: dict[str, Any], patch: dict[str, Any]
) -> None:
    assert merge(original, patch).value == reference_merge_patch(
        reference_merge_patch({}, original), patch
    )


list_rules = st.dictionaries(
    st.lists(st.sampled_from(["a", "b", "*"]), min_size=1, max_size=3).map(".".join),
    st.sampled_from(["replace", "append", "by-key:a", "by-key:b"]),
    max_size=3,
)
small_keys = st.sampled_from(["a", "b", "c"])
small_value = st.recursive(
    json_leaf | st.booleans() | st.sampled_from([0.0, 1.0, 1.5]),  # by-key: true is not 1
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(small_keys, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(small_keys, small_value, max_size=3), max_size=5), list_rules)
def test_provenance_is_kept_to_the_live_leaves_under_every_list_strategy(
    docs: list[dict[str, Any]], rules: dict[str, str]
) -> None:
    """The merge drops the provenance of what a layer replaces or deletes as it goes
    (no walk of the result at the end): whatever the strategies, what is left names
    exactly the leaves of the result."""
    merged = merge(*docs, lists=ListStrategies.from_mapping(rules))
    assert set(merged.provenance) == set(leaf_paths(merged.value))


def test_by_key_entries_whose_key_is_a_list_or_a_map_are_appended_not_a_crash() -> None:
    """Found by the property test above: an unhashable key value raised TypeError (an
    internal error, exit 4) before the schema could name the field."""
    lists = ListStrategies.from_mapping({"rules": "by-key:name"})
    merged = merge(
        {"rules": [{"name": ["x"], "v": 1}, {"name": "a", "v": 1}]},
        {"rules": [{"name": ["x"], "v": 2}, {"name": {"m": 1}}, {"name": "a", "v": 2}]},
        lists=lists,
    )
    assert merged.value["rules"] == [
        {"name": ["x"], "v": 1},
        {"name": "a", "v": 2},
        {"name": ["x"], "v": 2},
        {"name": {"m": 1}},
    ]
    # JSON types, not Python's: `true` and `1` are two keys.
    assert merge({"rules": [{"name": True}]}, {"rules": [{"name": 1}]}, lists=lists).value == {
        "rules": [{"name": True}, {"name": 1}]
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(small_keys, small_value, max_size=3), max_size=5), list_rules)
def test_a_compile_keeps_each_paths_history_from_its_first_deletion_on(
    docs: list[dict[str, Any]], rules: dict[str, str]
) -> None:
    """A compile's merge (no `full_history`) keeps only what blaming a deletion reads:
    so every blame of a deletion (`deleted_by`) and every deleted path is the same as
    with the whole history."""
    layers = [db_layer(f"env/l{i}", d, version=i + 1) for i, d in enumerate(docs)]
    lists = ListStrategies.from_mapping(rules)
    full = merge_layers(layers, lists)
    short = merge_layers(layers, lists, full_history=False)
    assert short.value == full.value and short.provenance == full.provenance
    expected = {}
    for path, settings_ in full.history.items():
        first = next((i for i, s in enumerate(settings_) if s.deleted), None)
        if first is not None:
            expected[path] = settings_[first:]
    assert short.history == expected
    for path in full.history:
        assert deleted_by(short, path) == deleted_by(full, path)
