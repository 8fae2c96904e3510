"""The benchmark keeps working: a small run (C=5) end to end, no timing assertions.

It runs what `make bench` runs (the local DynamoDB server, the seeding, the child
compile with its stage clock and floor, the incremental recompile, kubectl
kustomize of every cluster) at a size that takes seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from bench.__main__ import parse_size
from bench.report import format_report
from bench.runner import STAGES, run_bench
from bench.workload import Workload
from compiler.yamlio import load_layer_yaml
from tests.conftest import ROOT

SMALL = Workload(clusters=5, namespaces=2)


def test_a_small_bench_run_measures_every_stage_and_writes_the_fleet(tmp_path: Path) -> None:
    said: list[str] = []
    (result,) = run_bench([SMALL], tmp_path, kustomize=True, incremental_runs=2, say=said.append)
    out = tmp_path / SMALL.table / "out" / "clusters"

    # The tree is the workload: every cluster, every namespace, 9 objects each.
    assert sorted(p.name for p in out.iterdir()) == sorted(SMALL.cluster_names)
    for name in SMALL.cluster_names:
        namespaces = sorted(p.name for p in (out / name / "namespaces").iterdir())
        assert {f"team-{n:02d}" for n in range(SMALL.namespaces)} <= set(namespaces)
    # One object a YAML file, the two ApplicationSets included; kustomization.yaml is none.
    manifests = [p for p in out.parent.rglob("*.yaml") if p.name != "kustomization.yaml"]
    assert result.full["objects"] == len(manifests) >= SMALL.clusters * SMALL.namespaces * 9
    assert result.full["floor_objects"] >= result.full["objects"]

    # The one changed cluster carries its last revision (2 process runs, then the
    # in-process one: +3 cpu) after the recompiles.
    index = SMALL.clusters // 2
    quota = out / SMALL.cluster_name(index) / "namespaces/team-00/resourcequota-compute.yaml"
    hard = yaml.safe_load(quota.read_text())["spec"]["hard"]
    assert hard["cpu"] == str(4 + index % 8 + 3)
    assert result.incremental["objects"] < result.full["objects"]

    # Measured, not assumed: each stage ran and took time; the floor too.
    for stage in ("fetch", "merge", "validate config", "render", "validate objects", "cue"):
        assert result.full["stages"][stage] > 0, stage
    assert result.full["floor"] > 0 and result.full["peak_rss"] > 0
    assert result.full["cue_peak_rss"] > 0  # cue ran as a child process
    assert result.kustomize is not None and result.kustomize[0] == SMALL.clusters

    report = format_report([result], cores=2)
    for stage in STAGES:
        assert f"| {stage} |" in report
    assert "| **whole compile** |" in report
    assert f"| C=5 N=2 | {result.full['objects']:,} |" in report
    assert "5 dirs in" in report
    assert any("full compile" in line for line in said)


def test_the_workload_is_a_pure_function_of_its_size(tmp_path: Path) -> None:
    first = SMALL.write(tmp_path / "a", ROOT / "policies")
    second = SMALL.write(tmp_path / "b", ROOT / "policies")
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes()
        load_layer_yaml((first / rel).read_bytes(), str(rel))  # the strict loader takes it


@pytest.mark.parametrize("text", ["100", "x10", "0x10", "10x0", "ax2", "10x10x2"])
def test_a_bad_size_is_a_usage_error(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="CLUSTERSxNAMESPACES"):
        parse_size(text)
