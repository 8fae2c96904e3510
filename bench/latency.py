"""`python -m bench.latency [--size CxN ...] [--runs N] [--cue PATH]`: the two fixed-cost
targets of issue 18 alone, without the full bench around them.

For each size: seed the local DynamoDB server, compile every cluster once (the cache
dir and the tree as a user has them after a first compile), then time, as whole
`gitops-compiler` processes, `runs` one-cluster recompiles (each after a new version
of that cluster's record) and `runs` pre-commit hooks for one changed overlay
(bench/hook.py). Prints the median and the fastest of each: on a machine shared with
other work the fastest run shows the cost better than the median does.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.__main__ import parse_size
from bench.hook import measure_hook
from bench.runner import _env, _gitops_compiler, _put_revision, _seeded, bench_cue
from bench.workload import ENVS, Workload
from compiler.localdb import local_dynamodb

REPO = Path(__file__).resolve().parent.parent


def measure(workload: Workload, workdir: Path, endpoint: str, cue: Path, runs: int) -> str:
    store, _ = _seeded(workload, workdir, endpoint)
    root = workdir / workload.table
    env = _env(cue, root / "cache")
    out = root / "out"
    index = workload.clusters // 2
    changed = workload.cluster_name(index)
    # The first compile: every cluster, so the recompiles below find a cache and a tree.
    _put_revision(store, workload, index, 1)
    _gitops_compiler_all(root, endpoint, out, env)
    seconds = []
    for revision in range(2, runs + 2):
        _put_revision(store, workload, index, revision)
        started = time.perf_counter()
        _gitops_compiler(root, endpoint, out, changed, env)
        seconds.append(time.perf_counter() - started)
    env_name = ENVS[index % len(ENVS)]
    hook = measure_hook(root, env_name, endpoint, env, runs, root / "hook")
    return (
        f"C={workload.clusters} N={workload.namespaces}: "
        f"one-cluster recompile median {statistics.median(seconds):.3f} s, "
        f"min {min(seconds):.3f} s; "
        f"hook ({hook.clusters} cluster(s)) median {hook.seconds:.3f} s, "
        f"min {hook.fastest:.3f} s ({runs} runs each)"
    )


def _gitops_compiler_all(root: Path, endpoint: str, out: Path, env: dict[str, str]) -> None:
    argv = [sys.executable, "-m", "compiler", "compile", "--project", str(root), "--all"]
    argv += ["--endpoint-url", endpoint, "--out", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed:\n{done.stdout}{done.stderr}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__)
    parser.add_argument("--size", type=parse_size, action="append", dest="sizes")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--cue", type=Path, default=REPO / "tools/cue-native/bin/cue")
    parser.add_argument("--workdir", type=Path, help="kept afterwards (default: a temporary one)")
    args = parser.parse_args(argv)
    sizes = args.sizes or [parse_size("3x10"), parse_size("20x3")]
    cue = bench_cue(args.cue)
    compileall.compile_dir(REPO / "compiler", quiet=1)  # as the full bench does
    print(f"cue {cue.label}, {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory(prefix="gitops-latency-") as scratch, local_dynamodb() as ep:
        for workload in sizes:
            workdir = args.workdir or Path(scratch)
            print(measure(workload, workdir, ep, cue.path, args.runs), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
