"""Table writes pass the same gate as git changes (issue 17): `config put` recompiles the
clusters it affects and refuses on findings unless `--force`; a cluster's env must be one
the project defines; `config retire` writes a tombstone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.sources import Pin
from tests.test_config_commands import Table, seeded, table, write  # noqa: F401  (fixtures)

PROD_LABEL = "namespaces:\n  dev-team:\n    labels: {environment: prod}\n"


def test_put_that_breaks_a_policy_is_refused_with_the_findings(
    seeded: Table,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Before: written, then every `validate --all` failed until another version came.
    file = write(tmp_path / "dev.yaml", PROD_LABEL)
    assert seeded.run("config", "put", "--layer", "cluster/dev-k3s", str(file)) == 1
    err = capsys.readouterr().err
    assert "dev-k3s" in err and "environment" in err
    assert "not written: cluster/dev-k3s would break" in err and "--force" in err
    assert seeded.history("cluster/dev-k3s") == [2, 1]


def test_put_force_writes_anyway_and_the_audit_line_says_so(
    seeded: Table,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    file = write(tmp_path / "dev.yaml", PROD_LABEL)
    audit = tmp_path / "audit.jsonl"
    argv = ["--audit-log", str(audit), "config", "put", "--layer", "cluster/dev-k3s"]
    assert seeded.run(*argv, str(file), "--force") == 0
    assert "warning: --force" in capsys.readouterr().err
    assert seeded.history("cluster/dev-k3s") == [3, 2, 1]
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert any(line.get("outputs", line).get("forced") is True for line in lines), lines


def test_a_defaults_put_is_checked_on_every_cluster(
    seeded: Table,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    file = write(tmp_path / "d.yaml", "roles:\n  dev-role:\n    rules: [{apiGroups: ['*'], "
                 "resources: ['*'], verbs: ['*']}]\n")  # fmt: skip
    assert seeded.run("config", "put", "--layer", "defaults", str(file)) == 1
    assert "not written: defaults would break" in capsys.readouterr().err
    assert seeded.history("defaults") == [2, 1]


def test_a_cluster_env_the_project_does_not_define_is_refused(
    seeded: Table,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    file = write(
        tmp_path / "new.yaml",
        "cluster: {name: new-k3s, env: prd, server: 'https://10.0.0.9:6443', region: x}\n"
        "config: {}\n",
    )
    assert seeded.run("config", "put", "--layer", "cluster/new-k3s", str(file)) == 2
    err = capsys.readouterr().err
    assert "field cluster.env 'prd' is not an environment of this project" in err
    assert "did you mean 'prod'?" in err
    assert seeded.history("cluster/new-k3s") == []


def test_retire_writes_a_tombstone_the_cluster_leaves_the_tree_history_keeps_it(
    seeded: Table,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    assert seeded.run("compile", "--all", "--out", str(out)) == 0
    assert (out / "clusters/test-k3s").is_dir()
    argv = ["config", "retire", "--layer", "cluster/test-k3s", "-m", "decommissioned"]
    assert seeded.run(*argv) == 0
    tomb = seeded.store.read("cluster#test-k3s", Pin())
    assert tomb is not None and tomb.retired and tomb.comment == "decommissioned"
    assert seeded.store.list_clusters() == ["dev-k3s", "prod-eks-1"]
    assert seeded.run("compile", "--all", "--out", str(out)) == 0
    assert not (out / "clusters/test-k3s").exists()
    capsys.readouterr()
    assert seeded.run("compile", "--cluster", "test-k3s", "--out", str(out)) == 2
    assert "cluster test-k3s is retired" in capsys.readouterr().err
    assert seeded.run("config", "history", "--layer", "cluster/test-k3s") == 0
    assert "decommissioned (retired)" in capsys.readouterr().out
    assert seeded.run(*argv) == 2  # twice: it is retired already


def test_only_cluster_layers_retire(
    seeded: Table,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert seeded.run("config", "retire", "--layer", "env/dev") == 2
    assert "only cluster/<name> layers retire" in capsys.readouterr().err
