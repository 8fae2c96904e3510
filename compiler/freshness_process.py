"""A hook's freshness check (`compiler.freshness`) as a process of its own, started
first thing (`compiler.entry`), beside the compile.

Asked in a thread of the hook's own process, the check cost a one-cluster hook ~0.2 s
of its ~0.55: importing boto3, building its client and reading the snapshot again are
Python work, and the compile's thread waits for it (one interpreter lock). As a
process it runs on another core while the compile runs on its own.

The process reads the command line as the CLI does and answers, on stdout, with the
`SourceOptions` it read and the warning. The hook takes the answer only for its own
options; when there is none (no process, one that failed or read other options), it
asks in its own process, as before: the warning, and any error the check raises, are
the same either way. Nothing starts for a command line this cannot read simply, or
without a snapshot source (a hook from the table has nothing to check).
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from compiler.options import SourceOptions

_STARTED: list[subprocess.Popen[bytes]] = []


def prestart(argv: Sequence[str], environ: Mapping[str, str]) -> None:
    """Start the check for `gitops-compiler validate --hook --source snapshot...`."""
    words = [a for a in argv if not a.startswith("-")]
    if not words or words[0] != "validate" or "--hook" not in argv or _STARTED:
        return
    source = option_value(argv, "--source")
    if source is None or not (source == "snapshot" or source.startswith("snapshot:")):
        return
    # The same compiler as this process, wherever it was imported from (-P: not one
    # that the working directory, the user's repository, happens to hold).
    package_parent = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [package_parent, environ.get("PYTHONPATH")]))
    argv0 = [sys.executable, "-P", "-m", "compiler.freshness_process", *argv]
    try:
        started = subprocess.Popen(
            argv0,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**environ, "PYTHONPATH": path},
        )
    except OSError:
        return  # the hook asks in its own process
    atexit.register(_stop_all)
    _STARTED.append(started)


def claim() -> subprocess.Popen[bytes] | None:
    """The check this process started, for the command to wait for; None: none."""
    return _STARTED.pop() if _STARTED else None


def answer(
    started: subprocess.Popen[bytes],
    source: SourceOptions,
    ask: Callable[[SourceOptions], str | None],
) -> str | None:
    """The started check's warning for `source`; `ask(source)` here when it has none."""
    out, _ = started.communicate()
    try:
        reply = json.loads(out) if started.returncode == 0 else None
    except ValueError:
        reply = None
    if not isinstance(reply, dict) or reply.get("source") != repr(source):
        return ask(source)
    warning = reply.get("warning")
    return warning if isinstance(warning, str) else None


def stop(started: subprocess.Popen[bytes]) -> None:
    """End a check no one waits for any more (a no-op once it answered)."""
    if started.returncode is None:
        started.kill()
        started.wait()
    if started.stdout is not None:
        started.stdout.close()


def _stop_all() -> None:
    while _STARTED:
        stop(_STARTED.pop())


def option_value(argv: Sequence[str], name: str) -> str | None:
    """The value of `--name VALUE` or `--name=VALUE` in a command line read simply
    (`compiler.entry` reads its own options so too)."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.partition("=")[2]
    return None


def main(argv: Sequence[str]) -> int:
    """The process: read the source options as `compiler.cli` does, ask, print the
    answer. Only those options are parsed (the CLI's whole parser costs ~50 ms to
    import and build); a command line read otherwise than the CLI reads it makes
    other options, and an answer the hook does not use."""
    import argparse

    from compiler import cachedir
    from compiler.freshness import stale_snapshot_warning
    from compiler.options import SourceOptions
    from compiler.project import project_root

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--project", type=Path, default=None)
    parser.add_argument("--source", default=None)
    parser.add_argument("--endpoint-url")
    parser.add_argument("--table")
    parser.add_argument("--no-cache", action="store_true")
    args, _ = parser.parse_known_args(argv)
    # As `cli._source` builds them.
    source = SourceOptions(
        project_dir=project_root(args.project, os.environ, Path.cwd()),
        source=args.source or "dynamodb",
        endpoint_url=args.endpoint_url,
        table=args.table,
        cache=not getattr(args, "no_cache", False),
    )
    with cachedir.turned_off(args.no_cache):  # `--no-cach` too, as argparse reads it
        warning = stale_snapshot_warning(source)
    sys.stdout.write(json.dumps({"source": repr(source), "warning": warning}))
    return 0


if __name__ == "__main__":
    answered = main(sys.argv[1:])
    import gc

    gc.freeze()  # as `compiler.entry`: no full collection as the process exits
    raise SystemExit(answered)
