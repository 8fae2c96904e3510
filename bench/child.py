"""One measured compile, in a process of its own so that its peak memory is its own.

`python -m bench.child --project P --endpoint URL --out DIR [--cluster C]`
runs the real `compile` command in-process with a stage clock, then measures
the floor on the same objects in the same process, and prints one JSON record.
Peak memory three ways: this process's own, the largest cue process's, and the
two together (this process plus every cue alive at once, sampled).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from bench.memory import PeakSampler
from compiler.cli import main as cli_main
from compiler.stageclock import StageClock, clocked


def floor_seconds(tree: Path, scratch: Path) -> tuple[float, int]:
    """The floor: PyYAML (libyaml) dumps each object of the tree and writes it, one file each.

    The objects are read back from the emitted files first (not timed), so the
    floor serialises exactly what the compile wrote.
    """
    objects = []
    for path in sorted(tree.rglob("*")):
        if path.is_file() and path.suffix in (".yaml", ".json"):
            objects.append(yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader))
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    started = time.perf_counter()
    for index, obj in enumerate(objects):
        data = yaml.dump(obj, Dumper=yaml.CSafeDumper, default_flow_style=False).encode()
        (scratch / f"{index}.yaml").write_bytes(data)
    elapsed = time.perf_counter() - started
    # Left for the runner to remove after the timings that follow: deleting 100k
    # files keeps the disk busy for seconds after, and would slow those down.
    return elapsed, len(objects)


def run(args: argparse.Namespace) -> dict[str, Any]:
    argv = ["compile", "--project", str(args.project), "--out", str(args.out)]
    argv += ["--endpoint-url", args.endpoint, "--format", "json"]
    argv += ["--cluster", args.cluster] if args.cluster else ["--all"]
    clock = StageClock()
    captured = io.StringIO()
    started = time.perf_counter()
    with PeakSampler() as sampled, clocked(clock), contextlib.redirect_stdout(captured):
        code = cli_main(argv)
    wall = time.perf_counter() - started
    if code != 0:
        sys.stderr.write(captured.getvalue())
        raise SystemExit(f"bench: compile exited {code}")
    summary = json.loads(captured.getvalue())
    record: dict[str, Any] = {
        "wall": wall,
        "stages": dict(clock.seconds),
        "objects": summary["objects"],
        "files": summary["files"],
        # Peaks of the process images (VmHWM), not ru_maxrss: Linux keeps that across
        # execve, so this process would report the runner's size at the fork, and
        # each cue the compiler's (bench/memory.py).
        "peak_rss": sampled.own,
        "cue_peak_rss": sampled.largest_child,  # the largest single cue process
        # The compiler and every cue alive at the same moment, sampled.
        "together_peak_rss": sampled.together,
    }
    if not args.cluster and not args.no_floor:
        record["floor"], record["floor_objects"] = floor_seconds(args.out, args.scratch)
    return record


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--cluster")
    parser.add_argument("--no-floor", action="store_true", help="the floor is measured once")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    json.dump(run(args), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
