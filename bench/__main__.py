"""`python -m bench [--size CxN ...] [--cue PATH ...] [--no-kustomize] [--workdir DIR]`
(or `make bench`)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from bench.report import format_report
from bench.runner import bench_cue, run_bench
from bench.workload import Workload
from compiler.errors import CompilerError

DEFAULT_SIZES = ("100x10", "1000x10")


def parse_size(text: str) -> Workload:
    clusters, sep, namespaces = text.partition("x")
    try:
        workload = Workload(int(clusters), int(namespaces))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a size is CLUSTERSxNAMESPACES, e.g. 100x10"
        ) from None
    if not sep or workload.clusters < 1 or workload.namespaces < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a size is CLUSTERSxNAMESPACES, e.g. 100x10")
    return workload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--size",
        type=parse_size,
        action="append",
        dest="sizes",
        help="CLUSTERSxNAMESPACES, repeatable (default: 100x10 and 1000x10)",
    )
    parser.add_argument(
        "--cue",
        type=Path,
        action="append",
        dest="cues",
        help="a cue to compile with, repeatable (default: each one available: the native "
        "one make builds, the WebAssembly launcher, GITOPS_CUE)",
    )
    parser.add_argument(
        "--no-kustomize",
        action="store_true",
        help="skip building every cluster with kubectl kustomize",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where the projects and trees go (default: a temporary directory)",
    )
    args = parser.parse_args(argv)
    sizes = args.sizes or [parse_size(s) for s in DEFAULT_SIZES]

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="gitops-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        try:
            cues = [bench_cue(path) for path in args.cues] if args.cues else None
            results = run_bench(sizes, workdir, kustomize=not args.no_kustomize, cues=cues, say=say)
        except CompilerError as err:  # a cue that is not one, or too old
            say(f"bench: {err}")
            return err.exit_code
    sys.stdout.write(format_report(results, os.cpu_count() or 1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
