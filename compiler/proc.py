"""The one door to subprocesses: argument tuples, never a shell, always a timeout.

A missing executable, a timeout and a death by signal become `OutsideError`
(exit 3) naming the command; the caller decides what a non-zero exit means.
Environment values never appear in messages (they may hold credentials).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import OutsideError

_SHOWN_LINES = 20


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes


def run(
    argv: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float,
    stdin: bytes | None = None,
) -> Completed:
    args = tuple(str(a) for a in argv)
    try:
        # A session of its own, so a timeout kills the command's children too.
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise OutsideError(f"{args[0]}: no such executable") from None
    except PermissionError:
        raise OutsideError(f"{args[0]}: not executable") from None
    except OSError as err:
        raise OutsideError(f"{args[0]}: cannot run: {err.strerror}") from None
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.communicate()
        raise OutsideError(
            f"{describe(args)} timed out after {timeout:g} s and was killed"
        ) from None
    except BaseException:
        _kill_group(process)  # interrupted: leave nothing running behind us
        process.wait()
        raise
    if process.returncode < 0:
        name = signal.Signals(-process.returncode).name
        raise OutsideError(f"{describe(args)} died by signal {name}{indented(stderr or stdout)}")
    return Completed(args, process.returncode, stdout, stderr)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
        os.killpg(process.pid, signal.SIGKILL)


def describe(argv: Sequence[str]) -> str:
    """The command as a user would type it, shortened to its first words."""
    shown = " ".join(argv[:4]) + (" …" if len(argv) > 4 else "")
    return f"`{shown}`"


def indented(output: bytes) -> str:
    """Output for an error message: its first lines, indented under the message."""
    lines = output.decode("utf-8", "replace").strip().splitlines()
    if not lines:
        return ""
    shown = lines[:_SHOWN_LINES]
    if len(lines) > _SHOWN_LINES:
        shown.append(f"… ({len(lines) - _SHOWN_LINES} more lines)")
    return "\n" + "\n".join(f"    {line}" for line in shown)
