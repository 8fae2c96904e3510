"""The tables the runner prints: per stage, then the whole against the floor."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from typing import Any

from bench.runner import BESIDE, STAGES, SizeResult

MIB = 1024 * 1024


def format_report(results: Sequence[SizeResult], cores: int) -> str:
    lines = [
        f"machine: {cores} cores, Python {platform.python_version()}, {platform.machine()}",
        "",
    ]
    for result in results:
        lines += _size_table(result)
        lines.append("")
    lines += _summary_table(results)
    return "\n".join(lines) + "\n"


def _size_table(result: SizeResult) -> list[str]:
    w, full = result.workload, result.full
    objects, wall, stages = full["objects"], full["wall"], full["stages"]
    lines = [
        f"C={w.clusters}, N={w.namespaces}, cue {result.cue.label}: {objects:,} objects, "
        f"{full['files']['written']:,} files written (seeding the server took "
        f"{result.seed_seconds:.1f} s, not counted); cold: an empty cache dir",
        "",
        "| stage | seconds | objects/s | share of the compile |",
        "|---|--:|--:|--:|",
    ]
    for stage in STAGES:
        seconds = stages.get(stage, 0.0)
        rate = f"{objects / seconds:,.0f}" if seconds >= 0.01 else "-"
        lines.append(f"| {stage} | {seconds:.2f} | {rate} | {seconds / wall:.0%} |")
    other = wall - sum(stages.get(s, 0.0) for s in STAGES)
    lines.append(f"| other | {other:.2f} | | {other / wall:.0%} |")
    lines.append(f"| **whole compile** | **{wall:.2f}** | {objects / wall:,.0f} | 100% |")
    for stage in BESIDE:
        seconds = stages.get(stage, 0.0)
        lines.append(f"| ({stage}, beside the stages above) | {seconds:.2f} | | |")
    warm = result.warm
    lines.append(
        f"| warm recompile, nothing changed (cue's verdicts kept; cue wait "
        f"{warm['stages'].get('cue wait', 0.0):.2f}) | {warm['wall']:.2f} | "
        f"{objects / warm['wall']:,.0f} | {warm['wall'] / wall:.0%} |"
    )
    return lines


def _summary_table(results: Sequence[SizeResult]) -> list[str]:
    lines = [
        "| size | cue | objects | compile s (cold) | floor s | compile / floor "
        "| warm recompile s (/ floor) | peak RSS MiB: compiler, cue (largest process), together "
        "| one cluster changed, recompiled: process s (median) "
        "| pre-commit hook, one overlay changed: process s (median; clusters) "
        "| kubectl kustomize, every cluster |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in results:
        full = r.full
        built = (
            f"{r.kustomize[0]:,} dirs in {r.kustomize[1]:.1f} s "
            f"({r.kustomize[1] / r.kustomize[0] * 1000:.0f} ms each)"
            if r.kustomize
            else "skipped"
        )
        lines.append(
            f"| C={r.workload.clusters} N={r.workload.namespaces} | {r.cue.label} "
            f"| {full['objects']:,} "
            f"| {full['wall']:.2f} | {full['floor']:.2f} | {full['wall'] / full['floor']:.2f}x "
            f"| {r.warm['wall']:.2f} ({r.warm['wall'] / full['floor']:.2f}x) "
            f"| {_peaks(full)} "
            f"| {r.incremental_process:.2f} (in-process {r.incremental['wall']:.2f}) "
            f"| {r.hook.seconds:.2f} ({r.hook.clusters:,}) | {built} |"
        )
    first_cue = [r for r in results if r.cue == results[0].cue]
    if len(first_cue) >= 2:
        small, large = first_cue[0], first_cue[-1]
        extra = large.workload.clusters - small.workload.clusters
        if extra > 0:
            per = (large.full["peak_rss"] - small.full["peak_rss"]) / extra
            cue = (large.full["cue_peak_rss"] - small.full["cue_peak_rss"]) / extra
            both = (_together(large.full) - _together(small.full)) / extra
            lines += [
                "",
                f"memory: {per / 1024:.0f} KiB more peak RSS per cluster between "
                f"C={small.workload.clusters} and C={large.workload.clusters} "
                f"(cue {small.cue.label}: {cue / 1024:.0f} KiB per cluster in its largest "
                f"process; compiler and cue together: {both / 1024:.0f} KiB per cluster)",
            ]
    lines += [
        "",
        "peak RSS: the compiler's own and the largest single cue process's (VmHWM, "
        "the peak of each process image: ru_maxrss would count a parent's size at the "
        "fork), and together: the compiler plus every cue process alive at the same "
        "moment, their VmRSS summed every 30 ms (bench/memory.py). "
        "floor: PyYAML (libyaml) dumping each emitted object and writing it to its own file, "
        "measured in the same process right after the compile. Cold: the compile with an "
        "empty cache dir (GITOPS_CACHE_DIR of the bench's own), every cluster sent to cue; "
        "warm: the same compile again, nothing changed, cue's verdicts reused. Hook: "
        "`validate --hook --source snapshot:snapshot` after one overlay of the changed "
        "cluster's environment was staged in git (its clusters recompiled from the "
        "snapshot; the table asked whether the snapshot is current). Whole processes run "
        "from compiled bytecode, as an installed wheel does.",
    ]
    return lines


def _together(record: dict[str, Any]) -> int:
    return int(record["together_peak_rss"])


def _peaks(record: dict[str, Any]) -> str:
    return ", ".join(
        f"{value / MIB:,.0f}"
        for value in (record["peak_rss"], record["cue_peak_rss"], _together(record))
    )
