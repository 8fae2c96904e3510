"""The benchmark keeps working: a small run (C=5) end to end, no timing assertions.

It runs what `make bench` runs (the local DynamoDB server, the seeding, the child
compile with its stage clock and floor, the incremental recompile, kubectl
kustomize of every cluster) at a size that takes seconds.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
import yaml

from bench.__main__ import parse_size
from bench.report import format_report
from bench.runner import STAGES, available_cues, run_bench
from bench.workload import Workload
from compiler.yamlio import load_layer_yaml
from tests.conftest import ROOT

SMALL = Workload(clusters=5, namespaces=2)


def test_a_small_bench_run_measures_every_stage_and_writes_the_fleet(tmp_path: Path) -> None:
    said: list[str] = []
    cues = available_cues()
    results = run_bench([SMALL], tmp_path, kustomize=True, incremental_runs=2, say=said.append)
    # Each cue the project installed compiled the fleet: native and WebAssembly.
    assert [r.cue for r in results] == cues
    labels = {cue.label.split()[1] for cue in cues}
    assert "WebAssembly" in labels and ("native" in labels or shutil.which("go") is None)
    result = results[-1]
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

    # The one changed cluster carries its last revision after the recompiles (2
    # process runs, then the in-process one, for each cue: its on-call group).
    index = SMALL.clusters // 2
    namespace = out / SMALL.cluster_name(index) / "namespaces/team-00"
    hard = yaml.safe_load((namespace / "resourcequota-compute.yaml").read_text())["spec"]["hard"]
    assert hard["cpu"] == str(4 + index % 8 + 1)
    binding = yaml.safe_load((namespace / "rolebinding-viewers.yaml").read_text())
    last = f"oncall-r{3 * len(cues):04d}"
    assert last in [s["name"] for s in binding["subjects"]]
    assert result.incremental["objects"] < result.full["objects"]
    # Warm: nothing changed, no cluster went to cue again, and it was quicker.
    for each in results:
        assert each.warm["objects"] == each.full["objects"]
        assert each.warm["stages"].get("cue", 0.0) < each.full["stages"]["cue"]

    # Measured, not assumed: each stage ran and took time; the floor too.
    measured = ("fetch", "fingerprint", "merge", "validate config", "guards", "render")
    for stage in (*measured, "validate objects", "applications", "record", "cue"):
        assert result.full["stages"][stage] > 0, stage
    assert result.full["floor"] > 0 and result.full["peak_rss"] > 0
    assert result.full["cue_peak_rss"] > 0  # cue ran as a child process
    assert result.kustomize is not None and result.kustomize[0] == SMALL.clusters
    # The hook recompiled the clusters of the changed cluster's environment, every one.
    env = SMALL.cluster_name(SMALL.clusters // 2).split("-")[0]
    in_env = [n for n in SMALL.cluster_names if n.startswith(f"{env}-")]
    for each in results:
        assert each.hook.clusters == len(in_env) and each.hook.seconds > 0

    report = format_report(results, cores=2)
    for stage in STAGES:
        assert f"| {stage} |" in report
    assert "| **whole compile** |" in report and "| warm recompile, nothing changed" in report
    for each in results:
        assert f"| C=5 N=2 | {each.cue.label} | {result.full['objects']:,} |" in report
    assert "5 dirs in" in report
    assert f"| {result.hook.seconds:.2f} ({len(in_env)}) |" in report
    assert any("full compile" in line for line in said)


# 12x2: the changed cluster (index 6) is a dev one whose team-01 quota starts at the
# top of the range (cpu 11); a change that grew with each revision went over dev's
# ceiling (16) by the sixth one, and the recompile was refused (issue 18).
SIZES = [Workload(1, 1), Workload(12, 2), Workload(4, 3)]


def test_the_bench_runs_at_small_sizes_and_its_change_passes_the_policies(
    tmp_path: Path,
) -> None:
    cues = available_cues()[:1]  # one cue: the policies on both are test_policies' part
    results = run_bench(SIZES, tmp_path, kustomize=False, incremental_runs=6, cues=cues)
    assert [r.workload for r in results] == SIZES
    for result in results:
        assert result.incremental["objects"] > 0 and result.incremental_process > 0
        assert result.hook.clusters > 0 and result.hook.runs == 6
    changed = SIZES[1].cluster_record(6, revision=999)["config"]["namespaces"]["team-01"]
    assert changed["quotas"]["compute"]["cpu"] == "12"


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
