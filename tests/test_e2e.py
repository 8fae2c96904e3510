"""Acceptance: the example fleet from a real DynamoDB endpoint to a tree kubectl builds.

These run the CLI as a user would (`compiler.cli.main`), against moto's server
over HTTP, and compare with `golden/` byte for byte.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from compiler.cli import main
from compiler.sources import Pin
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.snapshot import SnapshotStore, seed
from tests.conftest import ROOT, tree

KUBECTL = Path(sys.executable).parent / "kubectl"
CLUSTERS = ("dev-k3s", "prod-eks-1", "test-k3s")


def server_args(project: Path, store: DynamoDBStore) -> list[str]:
    assert store.endpoint_url is not None
    return ["--project", str(project), "--endpoint-url", store.endpoint_url, "--table", store.table]


@pytest.fixture
def seeded_server(server_store: DynamoDBStore) -> DynamoDBStore:
    from compiler.sources.snapshot import SnapshotStore, seed

    seed(server_store, SnapshotStore(ROOT / "examples"))
    return server_store


def test_compile_from_dynamodb_server_equals_golden(
    seeded_server: DynamoDBStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(["compile", "--all", "--out", str(out), *server_args(ROOT, seeded_server)])
    assert code == 0, capsys.readouterr().err
    produced = tree(out)
    assert produced == tree(ROOT / "golden")
    assert {p.split("/")[1] for p in produced if p.startswith("clusters/")} == set(CLUSTERS)
    summary = capsys.readouterr().out
    assert "compiled 3 cluster(s)" in summary and "objects" in summary


def test_every_emitted_cluster_builds_with_kubectl_kustomize() -> None:
    for cluster in CLUSTERS:
        directory = ROOT / "golden" / "clusters" / cluster
        built = subprocess.run(
            [str(KUBECTL), "kustomize", str(directory)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert built.returncode == 0, built.stderr
        documents = [d for d in yaml.safe_load_all(built.stdout) if d]
        manifests = [p for p in tree(directory) if p.endswith(".yaml") and "/" in p]
        assert len(documents) == len(manifests)
        for document in documents:
            labels = document["metadata"]["labels"]
            assert labels["gitops-compiler.io/cluster"] == cluster


def test_kustomization_lists_exactly_the_manifests() -> None:
    for cluster in CLUSTERS:
        directory = ROOT / "golden" / "clusters" / cluster
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        manifests = sorted(p for p in tree(directory) if p.endswith(".yaml") and "/" in p)
        assert kustomization["resources"] == manifests


def test_config_lock_names_the_versions_compiled(seeded_server: DynamoDBStore) -> None:
    lock = json.loads((ROOT / "golden/clusters/prod-eks-1/config-lock.json").read_text())
    layers = {entry["layer"]: entry for entry in lock["layers"]}
    for name in ("defaults", "env/prod", "cluster/prod-eks-1"):
        latest = seeded_server.history(name.replace("/", "#"))[0]
        assert layers[name]["version"] == latest.version
        assert layers[name]["sk"] == latest.sk
    overlay_files = sorted(e["file"] for e in lock["layers"] if "file" in e)
    assert overlay_files == sorted(
        p.relative_to(ROOT).as_posix() for p in (ROOT / "overlays/prod").glob("*.yaml")
    )


def _shuffled_copy(source: Path, target: Path, rng: random.Random, *, keys: bool) -> None:
    """The same layers, files created in a shuffled order, with mapping keys shuffled too.

    Overlay files keep their bytes (`keys=False`): the lock records their hashes,
    so other bytes are another input.
    """

    def shuffle(value: object) -> object:
        if isinstance(value, dict):
            items = list(value.items())
            rng.shuffle(items)
            return {k: shuffle(v) for k, v in items}
        if isinstance(value, list):
            return [shuffle(v) for v in value]
        return value

    paths = sorted(p for p in source.rglob("*.yaml"))
    rng.shuffle(paths)  # files created in a different order: a different directory order
    for path in paths:
        rel = path.relative_to(source)
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        if keys:
            data = shuffle(yaml.safe_load(path.read_text()))
            (target / rel).write_text(yaml.safe_dump(data, sort_keys=False))
        else:
            shutil.copyfile(path, target / rel)


def test_deterministic_with_items_files_and_keys_shuffled(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = []
    for seed_value in (1, 2):
        rng = random.Random(seed_value)
        project = tmp_path / f"p{seed_value}"
        shutil.copytree(project_dir, project, ignore=shutil.ignore_patterns("examples", "overlays"))
        _shuffled_copy(project_dir / "examples", project / "examples", rng, keys=True)
        _shuffled_copy(project_dir / "overlays", project / "overlays", rng, keys=False)
        out = tmp_path / f"out{seed_value}"
        argv = ["--project", str(project), "--source", "snapshot:examples"]
        assert main(["compile", "--all", "--out", str(out), *argv]) == 0, capsys.readouterr()
        outputs.append(tree(out))
    assert outputs[0] == outputs[1]
    assert outputs[0] == tree(ROOT / "golden")


def test_deterministic_whatever_order_items_were_written(
    server_store: DynamoDBStore, dynamodb_server: str, tmp_path: Path
) -> None:
    """Items written in a shuffled order (and so returned by Scan in another) change nothing."""
    from compiler.sources.snapshot import SnapshotStore

    items = SnapshotStore(ROOT / "examples").items()
    random.Random(7).shuffle(items)
    for item in items:
        server_store.put(
            item.pk,
            item.config,
            cluster=item.cluster,
            author=item.author,
            comment=item.comment,
            created_at=item.created_at,
            version=item.version,
        )
    out = tmp_path / "out"
    assert main(["compile", "--all", "--out", str(out), *server_args(ROOT, server_store)]) == 0
    assert tree(out) == tree(ROOT / "golden")


def test_golden_check_passes_then_fails_with_a_diff_after_an_overlay_change(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["golden", "check", "--project", str(project_dir)]) == 0
    capsys.readouterr()
    quotas = project_dir / "overlays/prod/10-quotas.yaml"
    quotas.write_text(quotas.read_text().replace('cpu: "8"', 'cpu: "12"'))
    assert main(["golden", "check", "--project", str(project_dir)]) == 1
    captured = capsys.readouterr()
    assert "--- golden/clusters/prod-eks-1/namespaces/monitoring/resourcequota" in captured.out
    assert "-    cpu: '8'" in captured.out and "+    cpu: '12'" in captured.out
    assert "golden update" in captured.err
    assert main(["golden", "update", "--project", str(project_dir)]) == 0
    assert main(["golden", "check", "--project", str(project_dir)]) == 0


def test_golden_check_reports_a_file_the_compile_no_longer_produces(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project_dir / "golden/clusters/dev-k3s/namespaces/extra.yaml").write_text("kind: X\n")
    assert main(["golden", "check", "--project", str(project_dir)]) == 1
    assert "golden/clusters/dev-k3s/namespaces/extra.yaml" in capsys.readouterr().out


def test_compiling_one_cluster_keeps_the_others(
    seeded_server: DynamoDBStore, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = server_args(ROOT, seeded_server)
    assert main(["compile", "--all", "--out", str(out), *args]) == 0
    before = tree(out)
    (out / "clusters/dev-k3s/namespaces/dev-team/stale.yaml").write_text("stale\n")
    assert main(["compile", "--cluster", "dev-k3s", "--out", str(out), *args]) == 0
    assert tree(out) == before  # the stale file went, the other clusters stayed


def test_a_new_cluster_version_changes_only_that_cluster(
    seeded_server: DynamoDBStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = server_args(ROOT, seeded_server)
    out = tmp_path / "out"
    assert main(["compile", "--all", "--out", str(out), *args]) == 0
    before = tree(out)
    # A version is the whole layer document: edit the latest one.
    config = seeded_server.history("cluster#dev-k3s")[0].config
    config.setdefault("namespaces", {}).setdefault("dev-team", {})["quotas"] = {
        "dev-quota": {"cpu": "6"}
    }
    layer = tmp_path / "dev.yaml"
    layer.write_text(yaml.safe_dump(config))
    assert main(["config", "put", "--layer", "cluster/dev-k3s", str(layer), *args]) == 0
    assert main(["compile", "--all", "--out", str(out), *args]) == 0
    after = tree(out)
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert changed == [
        "clusters/dev-k3s/config-lock.json",
        "clusters/dev-k3s/namespaces/dev-team/resourcequota-dev-quota.yaml",
    ]
    quota = yaml.safe_load(after[changed[1]])
    assert quota["spec"]["hard"] == {"cpu": "6", "memory": "8Gi"}
    # --as-of the old version's time compiles the old tree again.
    capsys.readouterr()
    old = tmp_path / "old"
    as_of = ["--as-of", "2026-06-01T00:00:00Z"]
    assert main(["compile", "--all", "--out", str(old), *as_of, *args]) == 0
    assert tree(old) == before


def test_all_as_of_compiles_the_fleet_as_it_was_then(
    server_store: DynamoDBStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cluster provisioned after the time is not in that fleet (it used to fail the
    whole run), and one retired after it still is (it used to be left out)."""
    from datetime import UTC, datetime

    seed(server_store, SnapshotStore(ROOT / "examples"))
    facts = {"name": "new-k3s", "env": "dev", "region": "eu-west-1", "server": "https://n:6443"}
    server_store.put(
        "cluster#new-k3s", {}, cluster=facts, author="provisioner", comment="",
        created_at="2026-04-01T00:00:00Z",
    )  # fmt: skip
    test_k3s = server_store.read("cluster#test-k3s", Pin())
    assert test_k3s is not None
    server_store.put(
        "cluster#test-k3s", {}, cluster=test_k3s.cluster, author="a", comment="retired",
        created_at="2026-04-02T00:00:00Z", retired=True,
    )  # fmt: skip
    then = datetime(2026, 3, 15, tzinfo=UTC)
    assert server_store.list_clusters() == ["dev-k3s", "new-k3s", "prod-eks-1"]
    assert server_store.list_clusters(then) == ["dev-k3s", "prod-eks-1", "test-k3s"]
    snapshot = SnapshotStore(ROOT / "examples")  # prod-eks-1 came on 2026-01-07
    assert snapshot.list_clusters(datetime(2026, 1, 6, 9, tzinfo=UTC)) == ["dev-k3s", "test-k3s"]

    assert server_store.endpoint_url is not None
    args = ["--project", str(ROOT), "--endpoint-url", server_store.endpoint_url]
    args += ["--table", server_store.table, "--out", str(tmp_path / "then")]
    code = main(["compile", "--all", "--as-of", "2026-03-15T00:00:00Z", *args])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "then" / "clusters").iterdir()) == [
        "dev-k3s", "prod-eks-1", "test-k3s",
    ]  # fmt: skip
