"""`init DIR`: write a working config repository (see `compiler/scaffold.py`)."""

from __future__ import annotations

from compiler.errors import EXIT_OK
from compiler.scaffold import InitOptions, init_repository


def init_command(*, options: InitOptions) -> int:
    result = init_repository(options)
    root = options.directory
    for name in result.written:
        print(f"wrote {root / name}")
    for name in result.kept:
        print(f"kept {root / name} (exists; --force overwrites it)")
    print(
        f"\n{len(result.written)} file(s) written. Next, in {root}:\n"
        "  git init && git add -A && git commit -m 'config repository'\n"
        "  gitops-compiler validate --all --source snapshot   # needs cue, or GITOPS_CUE\n"
        "  gitops-compiler golden check\n"
        "  pre-commit install\n"
        "  gitops-compiler doctor    # what a run against DynamoDB and Argo CD needs"
    )
    return EXIT_OK
