"""The console script (and `python -m compiler`): start cue, then import the compiler.

A one-cluster compile (a pre-commit hook) is short, and the WebAssembly cue takes
~0.3 s to load. Started here, before the ~0.3 s of importing the compiler, it is
ready about when the documents are, instead of being waited for. Best effort: for a
command line that does not run cue, or that this cannot read simply, nothing starts
and the command starts cue itself; a cue started here that no command claims (bad
usage, another policies directory) is stopped at exit.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

_RUNS_CUE = frozenset({"compile", "validate"})


def main() -> int:
    from compiler import freshness_process

    # argparse takes an unambiguous prefix (`--no-cach`) for the option too.
    if any(len(word) >= 6 and "--no-cache".startswith(word) for word in sys.argv[1:]):
        # What starts before the command line is parsed (the cue version read for the
        # cue started here) must not use the cache either; one command a process.
        os.environ["GITOPS_NO_CACHE"] = "1"
    # A hook's check of its snapshot against the table: a process beside the compile.
    freshness_process.prestart(sys.argv[1:], os.environ)
    prestart_cue(sys.argv[1:], os.environ)
    from compiler.cli import main as cli_main

    code = cli_main()
    # The command is done: what it made lives until the process ends, which frees it.
    # Frozen, it is left out of the full collection Python runs as it exits (~0.1 s of a
    # one-cluster compile: the heap holds boto3's models, the schemas, the documents).
    gc.freeze()
    return code


def prestart_cue(argv: Sequence[str], environ: Mapping[str, str]) -> None:
    words = [a for a in argv if not a.startswith("-")]
    if not words or words[0] not in _RUNS_CUE or {"-h", "--help"} & set(argv):
        return
    from compiler.errors import CompilerError
    from compiler.freshness_process import option_value
    from compiler.policy import cue, rulesets
    from compiler.project import find_project

    named = option_value(argv, "--project") or environ.get("GITOPS_PROJECT")
    project = Path(named) if named else find_project(Path.cwd()) or Path()
    own = project / "policies"
    try:
        # The same cue the command will look for, the project's own included; every
        # built-in rule set (a project file that selects fewer, read later with the YAML
        # loader, makes a different set of files, and this cue goes unused).
        found = cue.find_cue(option_value(argv, "--cue"), environ, project=project)
        cue.prestart(own, found, rulesets.cue_files(own))
    except (CompilerError, OSError):
        # No cue, or one that cannot start, or an unreadable policies directory: the
        # command finds the same problem itself and reports it with its exit code.
        return
