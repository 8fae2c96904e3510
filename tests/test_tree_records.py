"""A recompile into the same output keeps the clusters whose inputs and files did not
change (compiler/treerecord.py), and any change to what a cluster's output depends on
compiles it again; the tree always equals a compile without the cache, byte for byte.
Against moto's server, with the real cue (GITOPS_CUE)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compiler.cli import main
from compiler.model import cluster_pk
from compiler.sources import Pin
from compiler.sources.dynamodb import DynamoDBStore
from tests.conftest import ROOT, tree

ALL = ["dev-k3s", "prod-eks-1", "test-k3s"]


@pytest.fixture
def table(server_store: DynamoDBStore) -> DynamoDBStore:
    from compiler.sources.snapshot import SnapshotStore, seed

    seed(server_store, SnapshotStore(ROOT / "examples"))
    return server_store


def run(
    project: Path,
    store: DynamoDBStore,
    out: Path,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
    select: tuple[str, ...] = ("--all",),
) -> dict[str, Any]:
    assert store.endpoint_url is not None
    argv = ["compile", *select, "--out", str(out), "--format", "json", "--project", str(project)]
    argv += ["--endpoint-url", store.endpoint_url, "--table", store.table, *extra]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary: dict[str, Any] = json.loads(captured.out)
    return summary


def full(
    project: Path,
    store: DynamoDBStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
) -> dict[str, bytes]:
    """The tree of a compile without the cache, into a fresh directory."""
    out = tmp_path / f"full-{len(list(tmp_path.iterdir()))}"
    assert run(project, store, out, capsys, "--no-cache", *extra)["kept"] == []
    return tree(out)


def test_an_unchanged_recompile_keeps_every_cluster(
    project_dir: Path, table: DynamoDBStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    first = run(project_dir, table, out, capsys)
    assert first["kept"] == [] and first["clusters"] == ALL
    before = tree(out)
    stats = {p: (out / p).stat().st_mtime_ns for p in before}
    again = run(project_dir, table, out, capsys)
    assert again["kept"] == ALL and again["clusters"] == ALL
    assert again["objects"] == first["objects"]
    assert again["files"] == {"written": 0, "unchanged": len(before), "removed": 0}
    assert tree(out) == before == full(project_dir, table, tmp_path, capsys)
    assert {p: (out / p).stat().st_mtime_ns for p in before} == stats


def _new_version(project: Path, store: DynamoDBStore) -> None:
    latest = store.read(cluster_pk("dev-k3s"), Pin())
    assert latest is not None
    store.put(cluster_pk("dev-k3s"), latest.config, cluster=latest.cluster, author="t", comment="")


def _overlay(project: Path, store: DynamoDBStore) -> None:
    with (project / "overlays" / "prod" / "10-quotas.yaml").open("a") as handle:
        handle.write("# reviewed\n")


def _policy(project: Path, store: DynamoDBStore) -> None:
    with (project / "policies" / "quotas.cue").open("a") as handle:
        handle.write("// reviewed\n")


def _waivers(project: Path, store: DynamoDBStore) -> None:
    (project / "policies" / "waivers.yaml").write_text("[]\n")


def _project_file(project: Path, store: DynamoDBStore) -> None:
    with (project / "gitops-compiler.yaml").open("a") as handle:
        handle.write("# reviewed\n")


CHANGES: dict[str, tuple[Callable[[Path, DynamoDBStore], None], list[str]]] = {
    "a layer version": (_new_version, ["dev-k3s"]),
    "an overlay file": (_overlay, ["prod-eks-1"]),
    "a policy file": (_policy, ALL),
    "the waivers": (_waivers, ALL),
    "the project file": (_project_file, ALL),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_compiles_what_it_touches_again(
    change: str,
    project_dir: Path,
    table: DynamoDBStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    run(project_dir, table, out, capsys)
    apply, touched = CHANGES[change]
    apply(project_dir, table)
    again = run(project_dir, table, out, capsys)
    assert again["kept"] == [c for c in ALL if c not in touched]
    assert tree(out) == full(project_dir, table, tmp_path, capsys)
    assert run(project_dir, table, out, capsys)["kept"] == ALL  # and kept from then on


def test_a_pin_compiles_the_pinned_cluster_again(
    project_dir: Path, table: DynamoDBStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    run(project_dir, table, out, capsys)
    pinned = run(project_dir, table, out, capsys, "--pin", "cluster/dev-k3s=1")
    assert pinned["kept"] == ["prod-eks-1", "test-k3s"]
    assert tree(out) == full(project_dir, table, tmp_path, capsys, "--pin", "cluster/dev-k3s=1")
    assert run(project_dir, table, out, capsys)["kept"] == ["prod-eks-1", "test-k3s"]


def _edited_in_place(path: Path) -> None:
    """The same size and mtime, other bytes: only the content tells."""
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[-2] = ord("x") if data[-2] != ord("x") else ord("y")
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


OUTPUT_CHANGES: dict[str, Callable[[Path], None]] = {
    "edited": lambda d: (d / "kustomization.yaml").write_text("resources: []\n"),
    "edited in place, same size and mtime": lambda d: _edited_in_place(d / "cluster.json"),
    "deleted": lambda d: (d / "config-lock.json").unlink(),
    "a stray file added": lambda d: (d / "namespaces" / "stray.yaml").write_text("{}\n"),
    "a stray directory added": lambda d: (d / "stray").mkdir(),
}


@pytest.mark.parametrize("change", OUTPUT_CHANGES)
def test_an_output_changed_on_disk_is_compiled_again(
    change: str,
    project_dir: Path,
    table: DynamoDBStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    run(project_dir, table, out, capsys)
    OUTPUT_CHANGES[change](out / "clusters" / "test-k3s")
    assert run(project_dir, table, out, capsys)["kept"] == ["dev-k3s", "prod-eks-1"]
    assert tree(out) == full(project_dir, table, tmp_path, capsys)


def test_no_cache_and_a_damaged_record_compile_everything(
    project_dir: Path,
    table: DynamoDBStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out"
    run(project_dir, table, out, capsys)
    assert run(project_dir, table, out, capsys, "--no-cache")["kept"] == []
    monkeypatch.setenv("GITOPS_NO_CACHE", "1")
    assert run(project_dir, table, out, capsys)["kept"] == []
    monkeypatch.delenv("GITOPS_NO_CACHE")
    records = sorted((Path(os.environ["GITOPS_CACHE_DIR"]) / "tree-records").glob("*/*.json"))
    mine = [r for r in records if json.loads(r.read_bytes())["out"] == str(out.absolute())]
    assert len(mine) == 3
    mine[0].write_text("{not json")
    foreign = json.loads(mine[1].read_bytes())
    foreign["cluster"] = "someone-else"
    mine[1].write_text(json.dumps(foreign))
    assert len(run(project_dir, table, out, capsys)["kept"]) == 1
    assert tree(out) == full(project_dir, table, tmp_path, capsys)
    # Another output directory has records of its own.
    assert run(project_dir, table, tmp_path / "other", capsys)["kept"] == []


def test_kept_clusters_are_never_read_whole(
    project_dir: Path,
    table: DynamoDBStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A no-change compile from the table reads no cluster's layer document (heads.py;
    the few shared layers are read whole, so that a malformed one is reported)."""
    out = tmp_path / "out"
    run(project_dir, table, out, capsys)
    from compiler.sources import items

    documents: list[str] = []
    parse = items._config

    def counted(raw: Any, where: str) -> dict[str, Any]:
        documents.append(where)
        return parse(raw, where)

    monkeypatch.setattr(items, "_config", counted)
    assert run(project_dir, table, out, capsys)["kept"] == ALL
    assert documents and not [d for d in documents if "cluster#" in d]
    documents.clear()
    _new_version(project_dir, table)
    assert run(project_dir, table, out, capsys)["kept"] == ["prod-eks-1", "test-k3s"]
    clusters = {d.split("'")[1] for d in documents if "cluster#" in d}
    assert clusters == {"cluster#dev-k3s"}


def test_a_version_written_past_its_head_is_compiled(
    project_dir: Path, table: DynamoDBStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another writer (a provisioner, an older compiler) puts the next version without
    its head: the next compile reads and compiles it, never the head's older version."""
    out = tmp_path / "out"
    run(project_dir, table, out, capsys)
    latest = table.read(cluster_pk("test-k3s"), Pin())
    assert latest is not None
    config = json.loads(json.dumps(latest.config))
    config.setdefault("namespaces", {})["provisioned"] = {
        "labels": {"team": "platform", "environment": "test"}
    }
    table.client.put_item(
        TableName=table.table,
        Item={
            "pk": {"S": latest.pk},
            "sk": {"S": f"v#{latest.version + 1:010d}"},
            "version": {"N": str(latest.version + 1)},
            "config": {"S": json.dumps(config)},
            "cluster": table_cluster(latest.cluster),
            "created_at": {"S": "2030-01-01T00:00:00Z"},
            "author": {"S": "provisioner"},
        },
    )
    assert run(project_dir, table, out, capsys)["kept"] == ["dev-k3s", "prod-eks-1"]
    assert (out / "clusters/test-k3s/namespaces/provisioned/namespace.yaml").is_file()
    assert tree(out) == full(project_dir, table, tmp_path, capsys)


def table_cluster(facts: Any) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    serialized: dict[str, Any] = dict(TypeSerializer().serialize(dict(facts)))
    return serialized


def test_a_finding_on_a_kept_cluster_blames_its_layers(
    project_dir: Path, table: DynamoDBStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fleet-wide finding (two Applications of one name) between a new cluster and a
    kept one blames the kept one's layer as a compile without the cache does: the kept
    cluster is read whole, at the versions it was kept at, only for that."""
    out = tmp_path / "out"
    run(project_dir, table, out, capsys)
    dev = table.read(cluster_pk("dev-k3s"), Pin())
    assert dev is not None and dev.cluster is not None
    addon = {"repoURL": "https://charts.example.com", "chart": "n", "version": "1.0.0"}
    table.put(
        cluster_pk("dev-k3s-ingress"),
        {"addons": {"nginx": {**addon, "namespace": "nginx"}}},
        cluster={**dev.cluster, "name": "dev-k3s-ingress"},
        author="t",
        comment="",
    )
    outputs = []
    for extra in ([], ["--no-cache"]):
        argv = ["compile", "--all", "--out", str(out), "--project", str(project_dir)]
        argv += ["--endpoint-url", str(table.endpoint_url), "--table", table.table, *extra]
        assert main(argv) == 1
        outputs.append(capsys.readouterr().out)
    assert "'dev-k3s-ingress-nginx'" in outputs[0]
    # The kept cluster's own layers, which only its whole documents can name.
    assert "set by dynamodb:cluster#dev-k3s/v#" in outputs[0]
    assert "dynamodb:defaults/v#" in outputs[0]
    assert outputs[0] == outputs[1]


def test_one_cluster_compile_checks_its_own_record(
    project_dir: Path, table: DynamoDBStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--cluster` reads that cluster's record alone (a whole-fleet run checks every
    record in a thread beside the listing): kept when intact, compiled when not."""
    out = tmp_path / "out"
    run(project_dir, table, out, capsys)

    def one() -> list[str]:
        summary = run(project_dir, table, out, capsys, select=("--cluster", "test-k3s"))
        kept: list[str] = summary["kept"]
        return kept

    assert one() == ["test-k3s"]
    OUTPUT_CHANGES["edited in place, same size and mtime"](out / "clusters" / "test-k3s")
    assert one() == []
    assert one() == ["test-k3s"]
    assert tree(out) == full(project_dir, table, tmp_path, capsys)


def test_kept_generator_files_are_not_rendered_again(
    project_dir: Path,
    table: DynamoDBStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Applications a kept cluster's generator files make come from its record (the
    ApplicationSets are part of every fingerprint); a changed cluster's are rendered."""
    from compiler.argocd import applications

    rendered: list[str] = []
    render = applications.render_value

    def counted(template: Any, params: Any) -> Any:
        rendered.append(params["path"]["path"])
        return render(template, params)

    monkeypatch.setattr(applications, "render_value", counted)
    out = tmp_path / "out"
    run(project_dir, table, out, capsys)
    assert {p.split("/")[1] for p in rendered} == set(ALL)
    rendered.clear()
    assert run(project_dir, table, out, capsys)["kept"] == ALL
    assert rendered == []
    _new_version(project_dir, table)
    run(project_dir, table, out, capsys)
    assert rendered and {p.split("/")[1] for p in rendered} == {"dev-k3s"}


def _examples_with(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of examples/ with one replacement in dev-k3s's record."""
    import shutil

    copy = tmp_path / f"examples-{len(list(tmp_path.iterdir()))}"
    shutil.copytree(ROOT / "examples", copy)
    path = copy / "cluster" / "dev-k3s.yaml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    return copy


def test_the_same_versions_in_another_table_are_compiled_again(
    project_dir: Path, table: DynamoDBStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version number names its content in one table only: the same pk and version
    in another table (a staging one, a local server seeded afresh) is compiled again."""
    from compiler.sources.snapshot import SnapshotStore, seed
    from tests.conftest import REGION, _new_table

    other = DynamoDBStore(_new_table(), region=REGION, endpoint_url=table.endpoint_url)
    other.create_table()
    seed(other, SnapshotStore(_examples_with(tmp_path, "replicaCount: 1", "replicaCount: 3")))
    out = tmp_path / "out"
    run(project_dir, table, out, capsys)
    # Identical content in the other table too (prod, test): compiled again all the same.
    assert run(project_dir, other, out, capsys)["kept"] == []
    assert tree(out) == full(project_dir, other, tmp_path, capsys)
    assert run(project_dir, other, out, capsys)["kept"] == ALL


def test_a_malformed_shared_head_is_reported_as_without_the_cache(
    project_dir: Path, table: DynamoDBStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    run(project_dir, table, out, capsys)
    table.client.update_item(
        TableName=table.table,
        Key={"pk": {"S": "defaults"}, "sk": {"S": "head"}},
        UpdateExpression="SET #c = :c",
        ExpressionAttributeNames={"#c": "config"},
        ExpressionAttributeValues={":c": {"S": "{not json"}},
    )
    argv = ["compile", "--all", "--out", str(out), "--project", str(project_dir)]
    argv += ["--endpoint-url", str(table.endpoint_url), "--table", table.table]
    errors = []
    for extra in ([], ["--no-cache"]):
        assert main([*argv, *extra]) == 2
        errors.append(capsys.readouterr().err)
    assert "pk='defaults' sk='head'" in errors[0] and "field config" in errors[0]
    assert errors[0] == errors[1]


def test_a_snapshot_record_edited_in_place_is_compiled_again(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A snapshot's versions are files a person may edit: they count by content (here
    only the cluster's facts change, its server)."""
    snapshot = _examples_with(tmp_path, "dev-k3s.example.internal", "dev-k3s.example.net")
    argv = ["compile", "--all", "--out", str(tmp_path / "out"), "--format", "json"]
    argv += ["--project", str(project_dir), "--source", f"snapshot:{snapshot}"]

    def kept() -> list[str]:
        assert main(argv) == 0
        names: list[str] = json.loads(capsys.readouterr().out)["kept"]
        return names

    assert kept() == [] and kept() == ALL
    path = snapshot / "cluster" / "dev-k3s.yaml"
    path.write_text(path.read_text().replace("example.net", "example.org"))
    assert kept() == ["prod-eks-1", "test-k3s"]
    assert b"example.org" in (tmp_path / "out/clusters/dev-k3s/cluster.json").read_bytes()
