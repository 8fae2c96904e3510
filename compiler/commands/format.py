"""`format [--check] FILE...`: rewrite overlay YAML in its canonical form (hook `gitops-format`).

Every file is processed even when one of them is refused, so that a commit hook fixes
what it can in one run; the refusals are raised together at the end (exit 2). A refused
file is never written. Exit 1 when a file changed or would change: pre-commit then fails
the commit, and the user adds the reformatted files.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from compiler.errors import EXIT_FINDINGS, EXIT_OK, CompilerError, InputError
from compiler.overlay_format import format_overlay

_SUFFIXES = (".yaml", ".yml")


def format_command(*, files: Sequence[Path], check: bool) -> int:
    if not files:
        print("format: no files given, nothing to do", file=sys.stderr)
        return EXIT_OK
    changed = unchanged = 0
    errors: list[CompilerError] = []
    for path in files:
        if path.suffix not in _SUFFIXES:
            print(f"format: skipping {path}: not a .yaml or .yml file", file=sys.stderr)
            continue
        try:
            was_changed = _format_file(path, check=check)
        except CompilerError as err:
            errors.append(err)
            continue
        if was_changed:
            changed += 1
            print(f"{'would reformat' if check else 'reformatted'} {path}")
        else:
            unchanged += 1
    print(_summary(changed, unchanged, len(errors), check=check))
    if errors:
        # Refused input is exit 2; a formatter bug (exit 4) outranks it.
        worst = max(errors, key=lambda err: err.exit_code)
        raise type(worst)("\n".join(str(err) for err in errors))
    return EXIT_FINDINGS if changed else EXIT_OK


def _format_file(path: Path, *, check: bool) -> bool:
    """Whether the file is (or, with check, would be) rewritten."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err.strerror or err}") from None
    formatted = format_overlay(data, str(path))
    if formatted == data:
        return False
    if not check:
        _replace(path, formatted)
    return True


def _replace(path: Path, data: bytes) -> None:
    """Write atomically: a killed run leaves the old file or the new one, never half."""
    target = path.resolve()  # a symlinked overlay: rewrite its target, keep the link
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
        handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as err:
        raise InputError(f"{path}: cannot write: {err.strerror or err}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        temp = Path(name)
        temp.chmod(mode)  # mkstemp creates 0600; keep the file's own mode
        temp.replace(target)
    except OSError as err:
        with contextlib.suppress(OSError):
            Path(name).unlink()
        raise InputError(f"{path}: cannot write: {err.strerror or err}") from None


def _summary(changed: int, unchanged: int, failed: int, *, check: bool) -> str:
    def files(count: int) -> str:
        return f"{count} file{'' if count == 1 else 's'}"

    parts = [
        f"{files(changed)} {'would be reformatted' if check else 'reformatted'}",
        f"{files(unchanged)} already canonical",
    ]
    if failed:
        parts.append(f"{files(failed)} could not be formatted")
    return ", ".join(parts)
