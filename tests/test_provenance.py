"""`explain`: resolving a dotted path, and who set the value there and what it overrode.

Facts about the example clusters are read by hand from `examples/` and
`overlays/` (file and line given next to each).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from compiler.cli import main
from compiler.errors import EXIT_BAD_INPUT, CompilerError
from compiler.explanation import LeafExplanation, explain, format_explanation
from compiler.layers import StackLoader
from compiler.merge import MergeResult, merge_layers
from compiler.model import Layer, LayerRef, format_path
from compiler.pipeline import merge_cluster
from compiler.project import load_project
from compiler.provenance import resolve_path
from compiler.sources import Pin
from compiler.sources.snapshot import SnapshotStore
from tests.conftest import ROOT

DEFAULTS_V2 = "dynamodb:defaults/v#0000000002@2"
QUOTAS_FILE = "overlays/prod/10-quotas.yaml"
NO_SANDBOX_FILE = "overlays/prod/20-no-sandbox.yaml"
CPU = "namespaces.monitoring.quotas.monitoring-quota.cpu"


def example_merged(cluster: str) -> MergeResult:
    project = load_project(ROOT)
    loaded = StackLoader(SnapshotStore(ROOT / "examples"), project, Pin()).load(cluster)
    return merge_cluster(loaded, project)


@pytest.fixture(scope="module")
def prod() -> MergeResult:
    return example_merged("prod-eks-1")


def layer(name: str, doc: Mapping[str, Any], version: int = 1) -> Layer:
    ref = LayerRef(layer=name, source="dynamodb", key=f"{name}/v#{version:010d}", version=version)
    return Layer(ref=ref, document=doc)


def facts(entries: list[LeafExplanation]) -> list[tuple[str, Any, str, list[tuple[Any, str]]]]:
    """The entries as plain data, deleted values as the text "(deleted)"."""

    def show(value: Any) -> Any:
        return "(deleted)" if type(value) is object else value  # the module's marker

    return [
        (
            format_path(e.path),
            "(deleted)" if e.deleted else e.value,
            e.set_by,
            [(show(v), who) for v, who in e.overrode],
        )
        for e in entries
    ]


# --------------------------------------------------------------------------- resolve_path


def test_resolve_a_plain_dotted_path(prod: MergeResult) -> None:
    assert resolve_path(prod.value, CPU) == (
        "namespaces",
        "monitoring",
        "quotas",
        "monitoring-quota",
        "cpu",
    )
    assert resolve_path(prod.value, "") == ()


def test_resolve_keys_containing_dots_and_list_indexes(prod: MergeResult) -> None:
    # examples/env/prod.yaml lines 21-27: a label key with dots, under two lists.
    text = (
        "namespaces.payments.networkPolicies.allow-ingress-controller.ingress[0].from[0]"
        ".namespaceSelector.matchLabels.kubernetes.io/metadata.name"
    )
    path = resolve_path(prod.value, text)
    assert path == (
        "namespaces",
        "payments",
        "networkPolicies",
        "allow-ingress-controller",
        "ingress",
        0,
        "from",
        0,
        "namespaceSelector",
        "matchLabels",
        "kubernetes.io/metadata.name",
    )
    [entry] = explain(prod, path)
    assert entry.value == "ingress-nginx"
    assert entry.set_by == "dynamodb:env#prod/v#0000000002@2"
    ports = resolve_path(prod.value, text.split(".from")[0] + ".ports[0].port")
    assert ports[-3:] == ("ports", 0, "port")


def test_resolve_prefers_the_longest_key_and_handles_nested_indexes() -> None:
    config = {"a": {"b": 1}, "a.b": {"c": [[10, 11], [12]]}}
    assert resolve_path(config, "a.b") == ("a.b",)
    assert resolve_path(config, "a.b.c[0][1]") == ("a.b", "c", 0, 1)
    assert resolve_path(config, "a.b.c[1][0]") == ("a.b", "c", 1, 0)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("namespaces.nowhere", ["nowhere", "namespaces"]),
        ("namespaces.monitoring.quotas.nope.cpu", ["nope", "namespaces.monitoring.quotas"]),
        ("nonsense", ["nonsense"]),
        ("namespaces.monitoring.defaultDeny.x", ["namespaces.monitoring.defaultDeny"]),
        ("namespaces.monitoring.access.viewers.groups[3]", ["groups", "[3]"]),
        ("namespaces.monitoring.labels[0]", ["labels", "[0]"]),
    ],
)
def test_an_unknown_path_is_a_bad_input_error_naming_it(
    prod: MergeResult, text: str, names: list[str]
) -> None:
    for config in (prod.value, prod):  # the plain config, and the merge result
        with pytest.raises(CompilerError) as caught:
            resolve_path(config, text)
        assert caught.value.exit_code == EXIT_BAD_INPUT == 2
        assert text in str(caught.value)  # the path asked for, whole
        for name in names:
            assert name in str(caught.value)


def test_the_cli_reports_an_unknown_path_with_exit_code_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["explain", "--cluster", "prod-eks-1", "namespaces.monitoring.nope"]
    assert main([*argv, "--project", str(ROOT), "--source", "snapshot:examples"]) == 2
    err = capsys.readouterr().err
    assert "prod-eks-1" in err and "nope" in err and "Traceback" not in err


# --------------------------------------------------------------------------- explain on prod-eks-1


def test_explain_the_prod_monitoring_cpu(prod: MergeResult) -> None:
    # defaults.yaml v2 line 64: cpu "2"; overlays/prod/10-quotas.yaml line 6: cpu "8".
    [entry] = explain(prod, resolve_path(prod.value, CPU))
    assert entry.path == tuple(CPU.split("."))
    assert entry.value == "8"
    assert not entry.deleted
    assert entry.set_by == f"{QUOTAS_FILE}:6"
    assert entry.overrode == (("2", DEFAULTS_V2),)
    text = format_explanation([entry], as_json=False).splitlines()
    assert text[0] == f'{CPU} = "8"'
    assert "set by" in text[1] and text[1].endswith(f"{QUOTAS_FILE}:6")
    assert "overrode" in text[2] and '"2"' in text[2] and DEFAULTS_V2 in text[2]
    assert len(text) == 3


def test_explain_a_map_lists_its_leaves_in_order(prod: MergeResult) -> None:
    path = resolve_path(prod.value, "namespaces.monitoring.quotas")
    assert facts(explain(prod, path)) == [
        (f"{CPU}", "8", f"{QUOTAS_FILE}:6", [("2", DEFAULTS_V2)]),
        (
            "namespaces.monitoring.quotas.monitoring-quota.memory",
            "16Gi",
            f"{QUOTAS_FILE}:7",
            [("4Gi", DEFAULTS_V2)],
        ),
    ]


def test_explain_labels_from_two_layers(prod: MergeResult) -> None:
    # defaults: team platform; env/prod v2 line 48: environment prod.
    path = resolve_path(prod.value, "namespaces.monitoring.labels")
    assert facts(explain(prod, path)) == [
        (
            "namespaces.monitoring.labels.environment",
            "prod",
            "dynamodb:env#prod/v#0000000002@2",
            [],
        ),
        ("namespaces.monitoring.labels.team", "platform", DEFAULTS_V2, []),
    ]


def test_explain_a_list_and_its_items(prod: MergeResult) -> None:
    groups = resolve_path(prod.value, "namespaces.monitoring.access.viewers.groups")
    assert facts(explain(prod, groups)) == [
        ("namespaces.monitoring.access.viewers.groups", ["auditors"], DEFAULTS_V2, []),
        ("namespaces.monitoring.access.viewers.groups[0]", "auditors", DEFAULTS_V2, []),
    ]
    # Above the list, its items speak for it.
    viewers = resolve_path(prod.value, "namespaces.monitoring.access.viewers")
    assert [f[0] for f in facts(explain(prod, viewers))] == [
        "namespaces.monitoring.access.viewers.clusterRole",
        "namespaces.monitoring.access.viewers.groups[0]",
    ]


def test_explain_the_replica_count_set_by_the_no_sandbox_overlay(prod: MergeResult) -> None:
    path = resolve_path(prod.value, "addons.ingress-nginx.values.controller.replicaCount")
    [entry] = explain(prod, path)
    assert (entry.value, entry.set_by) == (3, f"{NO_SANDBOX_FILE}:6")
    assert entry.overrode == ((2, DEFAULTS_V2),)


# --------------------------------------------------------------------------- deleted paths


def test_a_deleted_namespace_is_explained_as_deleted_by_the_overlay(prod: MergeResult) -> None:
    assert "sandbox" not in prod.value["namespaces"]
    path = resolve_path(prod, "namespaces.sandbox")
    assert path == ("namespaces", "sandbox")
    entries = explain(prod, path)
    assert entries and all(e.deleted for e in entries)
    assert {e.set_by for e in entries} == {f"{NO_SANDBOX_FILE}:9"}
    # defaults.yaml v2 lines 71-74: what the sandbox namespace had.
    assert {(e.path[2:], e.overrode) for e in entries if e.overrode} == {
        (("labels", "team"), (("platform", DEFAULTS_V2),)),
        (("annotations", "purpose"), (("experiments", DEFAULTS_V2),)),
        (("defaultDeny",), ((True, DEFAULTS_V2),)),
    }
    text = format_explanation(entries, as_json=False)
    assert "namespaces.sandbox = (deleted)" in text
    assert "namespaces.sandbox.labels.team = (deleted)" in text
    assert f"deleted by  {NO_SANDBOX_FILE}:9" in text
    assert f'"platform"  ({DEFAULTS_V2})' in text


def test_a_leaf_of_a_deleted_namespace_is_explained_too(prod: MergeResult) -> None:
    path = resolve_path(prod, "namespaces.sandbox.annotations.purpose")
    assert facts(explain(prod, path)) == [
        (
            "namespaces.sandbox.annotations.purpose",
            "(deleted)",
            f"{NO_SANDBOX_FILE}:9",
            [("experiments", DEFAULTS_V2)],
        )
    ]
    # Never set by anyone: still unknown.
    with pytest.raises(CompilerError, match="nothere"):
        resolve_path(prod, "namespaces.sandbox.nothere")


def test_the_sandbox_is_live_on_dev_and_not_deleted_there() -> None:
    dev = example_merged("dev-k3s")
    path = resolve_path(dev, "namespaces.sandbox.labels")
    assert facts(explain(dev, path)) == [
        ("namespaces.sandbox.labels.environment", "dev", "dynamodb:env#dev/v#0000000001@1", []),
        ("namespaces.sandbox.labels.team", "platform", DEFAULTS_V2, []),
    ]


def test_a_re_added_key_shows_the_deletion_it_overrode() -> None:
    merged = merge_layers(
        [
            layer("defaults", {"ns": {"x": {"cpu": "1"}}}, version=4),
            layer("env/prod", {"ns": {"x": None}}, version=2),
            layer("cluster/c", {"ns": {"x": {"cpu": "3"}}}, version=9),
        ]
    )
    [entry] = explain(merged, resolve_path(merged.value, "ns.x.cpu"))
    assert entry.value == "3"
    assert entry.set_by == "dynamodb:cluster/c/v#0000000009@9"
    assert len(entry.overrode) == 2
    (_, by_env), (old, by_defaults) = entry.overrode
    assert by_env == "dynamodb:env/prod/v#0000000002@2"
    assert (old, by_defaults) == ("1", "dynamodb:defaults/v#0000000004@4")
    text = format_explanation([entry], as_json=False)
    assert f"overrode    (deleted)  ({by_env})" in text
    data = json.loads(format_explanation([entry], as_json=True))
    assert data[0]["overrode"] == [
        {"value": None, "deleted": True, "set_by": by_env},
        {"value": "1", "deleted": False, "set_by": by_defaults},
    ]


def test_overrode_is_newest_first() -> None:
    merged = merge_layers(
        [layer("defaults", {"a": 1}), layer("env/e", {"a": 2}), layer("cluster/c", {"a": 3})]
    )
    [entry] = explain(merged, ("a",))
    assert entry.value == 3
    assert [v for v, _ in entry.overrode] == [2, 1]
    assert [who.split("/v#")[0] for _, who in entry.overrode] == [
        "dynamodb:env/e",
        "dynamodb:defaults",
    ]


# --------------------------------------------------------------------------- JSON output


def test_json_output_has_the_same_facts_as_text(prod: MergeResult) -> None:
    entries = explain(prod, resolve_path(prod.value, "namespaces.monitoring.quotas"))
    data = json.loads(format_explanation(entries, as_json=True))
    assert data == [
        {
            "path": CPU,
            "value": "8",
            "deleted": False,
            "set_by": f"{QUOTAS_FILE}:6",
            "overrode": [{"value": "2", "deleted": False, "set_by": DEFAULTS_V2}],
        },
        {
            "path": "namespaces.monitoring.quotas.monitoring-quota.memory",
            "value": "16Gi",
            "deleted": False,
            "set_by": f"{QUOTAS_FILE}:7",
            "overrode": [{"value": "4Gi", "deleted": False, "set_by": DEFAULTS_V2}],
        },
    ]
    text = format_explanation(entries, as_json=False)
    for item in data:
        assert f"{item['path']} = {json.dumps(item['value'])}" in text
        assert item["set_by"] in text
        for old in item["overrode"]:
            assert f"{json.dumps(old['value'])}  ({old['set_by']})" in text


def test_json_output_of_a_deleted_path_parses(prod: MergeResult) -> None:
    entries = explain(prod, resolve_path(prod, "namespaces.sandbox"))
    data = json.loads(format_explanation(entries, as_json=True))
    assert len(data) == len(entries) >= 4
    assert all(d["deleted"] is True and d["value"] is None for d in data)
    assert {d["set_by"] for d in data} == {f"{NO_SANDBOX_FILE}:9"}
    team = next(d for d in data if d["path"] == "namespaces.sandbox.labels.team")
    assert team["overrode"] == [{"value": "platform", "deleted": False, "set_by": DEFAULTS_V2}]


def test_the_cli_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["explain", "--cluster", "prod-eks-1", CPU, "--format", "json"]
    assert main([*argv, "--project", str(ROOT), "--source", "snapshot:examples"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(d["path"], d["value"], d["set_by"]) for d in data] == [(CPU, "8", f"{QUOTAS_FILE}:6")]
    assert data[0]["overrode"] == [{"value": "2", "deleted": False, "set_by": DEFAULTS_V2}]
