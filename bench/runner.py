"""The benchmark: seed the local DynamoDB server with a workload, compile it, report.

For each size the compile runs in a child process (`bench.child`), so that its
peak memory is the compiler's alone; the server and the seeding stay here.
After the full compile: one cluster's record gets a new version and that one
cluster is compiled again into the same tree (the incremental case), timed as
a whole `gitops-compiler` process; then `kubectl kustomize` builds every
emitted cluster directory, as Argo CD would.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.workload import Workload
from compiler.localdb import local_dynamodb
from compiler.model import cluster_pk
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.snapshot import SnapshotStore, seed

REPO = Path(__file__).resolve().parent.parent
# The compiling thread's stages in pipeline order, as compiler/stageclock.py names them;
# `cue` runs beside them (other processes, one started before the fetch) and is shown
# apart, `cue wait` being the part of it the compile waited for. `stage` writes the new
# tree beside the output while cue runs; `write` swaps it in once cue found nothing.
STAGES = (
    "setup",
    "fetch",
    "merge",
    "validate config",
    "cue input",
    "render",
    "validate objects",
    "serialise",
    "stage",
    "cue wait",
    "write",
)
BESIDE = ("cue",)
INCREMENTAL_RUNS = 5  # whole-process one-cluster recompiles, for their median


@dataclass(frozen=True)
class SizeResult:
    workload: Workload
    seed_seconds: float
    full: dict[str, Any]
    incremental: dict[str, Any]
    incremental_process: float  # median wall of a whole `gitops-compiler compile --cluster C`
    kustomize: tuple[int, float] | None  # (directories built, seconds)


def run_bench(
    workloads: Sequence[Workload],
    workdir: Path,
    *,
    kustomize: bool = True,
    incremental_runs: int = INCREMENTAL_RUNS,
    say: Callable[[str], None] = print,
) -> list[SizeResult]:
    results = []
    with local_dynamodb() as endpoint:
        for workload in workloads:
            say(f"bench C={workload.clusters} N={workload.namespaces}: seeding {endpoint}")
            results.append(_run_size(workload, workdir, endpoint, kustomize, incremental_runs, say))
    return results


def _run_size(
    workload: Workload,
    workdir: Path,
    endpoint: str,
    kustomize: bool,
    incremental_runs: int,
    say: Callable[[str], None],
) -> SizeResult:
    root = workdir / workload.table
    shutil.rmtree(root, ignore_errors=True)
    snapshot = workload.write(root, REPO / "policies")
    store = DynamoDBStore(workload.table, region="us-east-1", endpoint_url=endpoint)
    started = time.perf_counter()
    store.create_table()
    seed(store, SnapshotStore(snapshot))
    seeded = time.perf_counter() - started

    say(f"bench C={workload.clusters} N={workload.namespaces}: full compile")
    out = root / "out"
    full = _child(root, endpoint, out)

    say(f"bench C={workload.clusters} N={workload.namespaces}: one cluster changed, recompiled")
    index = workload.clusters // 2
    changed = workload.cluster_name(index)
    # Each after a new version of the record: as a whole `gitops-compiler` process
    # (what a hook or a CI step costs), several times for their median (one run on
    # this shared machine varies by a third), then in-process with the stage clock.
    processes = []
    for revision in range(1, incremental_runs + 1):
        _put_revision(store, workload, index, revision)
        os.sync()
        started = time.perf_counter()
        _gitops_compiler(root, endpoint, out, changed)
        processes.append(time.perf_counter() - started)
    _put_revision(store, workload, index, incremental_runs + 1)
    incremental = _child(root, endpoint, out, cluster=changed)
    process = statistics.median(processes)

    built = None
    if kustomize:
        say(f"bench C={workload.clusters} N={workload.namespaces}: kubectl kustomize every cluster")
        built = kustomize_all(out / "clusters")
    shutil.rmtree(root / "floor", ignore_errors=True)  # the floor's files, now that all is timed
    return SizeResult(workload, seeded, full, incremental, process, built)


def _put_revision(store: DynamoDBStore, workload: Workload, index: int, revision: int) -> None:
    record = workload.cluster_record(index, revision=revision)
    store.put(
        cluster_pk(workload.cluster_name(index)),
        record["config"],
        cluster=record["cluster"],
        author="bench",
        comment=f"quota bump {revision}",
    )


def _child(root: Path, endpoint: str, out: Path, cluster: str | None = None) -> dict[str, Any]:
    os.sync()  # the writes before (seeding, earlier trees) must not throttle this run's
    argv = [sys.executable, "-m", "bench.child", "--project", str(root), "--endpoint", endpoint]
    argv += ["--out", str(out), "--scratch", str(root / "floor")]
    argv += ["--cluster", cluster] if cluster else []
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=_env(), check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed:\n{done.stderr}")
    record: dict[str, Any] = json.loads(done.stdout)
    return record


def _gitops_compiler(root: Path, endpoint: str, out: Path, cluster: str) -> None:
    argv = [sys.executable, "-m", "compiler", "compile", "--project", str(root)]
    argv += ["--endpoint-url", endpoint, "--out", str(out), "--cluster", cluster]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=_env(), check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed:\n{done.stdout}{done.stderr}")


def kustomize_all(clusters: Path) -> tuple[int, float]:
    """`kubectl kustomize` of every cluster directory, as many at once as there are cores."""
    kubectl = shutil.which(
        "kubectl", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    if kubectl is None:
        raise SystemExit("bench: kubectl not found (it comes with the dev extra: make test)")
    directories = sorted(p for p in clusters.iterdir() if p.is_dir())

    def build(directory: Path) -> None:
        done = subprocess.run(
            [kubectl, "kustomize", str(directory)], capture_output=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(
                f"bench: kubectl kustomize {directory} failed:\n{done.stderr.decode()}"
            )

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(build, directories))
    return len(directories), time.perf_counter() - started


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("AWS_ACCESS_KEY_ID", "bench")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    launcher = REPO / "tools" / "cue-wasm" / "cue"  # as the Makefile sets it
    if launcher.exists():
        env.setdefault("GITOPS_CUE", str(launcher))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env
