"""Which policy files a project uses: the built-in rule sets and its own.

The compiler ships its policies as package data (`compiler/builtin_policies/`):
the DSL's JSON Schema, the facts schema, the vendored CRDs and the CUE rule sets,
so a `pip install` is all a config repository needs (issue 20). In this
repository that directory is a link to `policies/`, the one copy that is edited
and reviewed; a wheel carries the files themselves.

- CUE: `policy.cue` (the frame every rule file adds to) always, the built-in rule
  sets the project file selects (`policy: {builtin: [...]}`, default all), and the
  project's own `policies/*.cue`. An own file named like a built-in one replaces it.
- The schemas: the project's `policies/` when it holds the DSL schema (this
  repository, or a project that keeps its own copy), else the built-in copy.

Light on imports: `compiler/entry.py` uses it before the compiler is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "builtin_policies"
FRAME = "policy"  # policy.cue: the schema of the input and `violations`
SCHEMA_FILE = "cluster-config.schema.json"


def _is_policy(path: Path) -> bool:
    # As cue itself loads a package: files named `.*` or `_*` are not part of it.
    return not path.name.startswith((".", "_"))


def builtin_rule_sets() -> tuple[str, ...]:
    """The names of the built-in rule sets (their file stems), sorted."""
    return tuple(
        sorted(p.stem for p in BUILTIN_DIR.glob("*.cue") if _is_policy(p) and p.stem != FRAME)
    )


def cue_files(own_dir: Path, builtin: Sequence[str] | None = None) -> tuple[Path, ...]:
    """The CUE files of a run, sorted by name; `builtin=None` selects every rule set."""
    chosen = builtin_rule_sets() if builtin is None else tuple(builtin)
    by_name = {f"{name}.cue": BUILTIN_DIR / f"{name}.cue" for name in (FRAME, *chosen)}
    by_name.update(
        {p.name: p for p in own_dir.glob("*.cue") if _is_policy(p)} if own_dir.is_dir() else {}
    )
    return tuple(by_name[name] for name in sorted(by_name))


def definitions_dir(own_dir: Path) -> Path:
    """Where the DSL schema, the facts schema and the vendored CRDs (`schemas/`) are read."""
    return own_dir if (own_dir / SCHEMA_FILE).is_file() else BUILTIN_DIR
