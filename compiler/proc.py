"""The one door to subprocesses: argument tuples, never a shell, always a timeout.

A command that cannot start, outlives its timeout or dies by a signal is an
`OutsideError` (exit 3) naming the command; what a non-zero exit means is the
caller's to say (`failure` formats it). Messages show the command, never the
environment (it may hold credentials), and pass `secrets.redact`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import OutsideError
from compiler.secrets import redact

_SHOWN_LINES = 20
_SHOWN_LINE_CHARS = 300
_SHOWN_COMMAND_CHARS = 200
_REAP_SECONDS = 5.0  # after SIGKILL: long enough to read what is left in the pipes


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None,
    env: Mapping[str, str] | None,
    timeout: float,
    stdin: bytes | None = None,
) -> Completed:
    """Run `argv` to its end; `env=None` inherits ours, `cwd=None` keeps ours."""
    args = tuple(os.fspath(a) for a in argv)
    try:
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a group of its own: a timeout kills its children too
        )
    except OSError as err:
        raise OutsideError(f"{describe(args)} cannot run: {_why_not(args[0], cwd, err)}") from None
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _, stderr = _stop(process)
        raise OutsideError(
            f"{describe(args)} timed out after {timeout:g} s and was killed{indented(stderr)}"
        ) from None
    except BaseException:  # interrupted: leave nothing running behind us
        _stop(process)
        raise
    if process.returncode < 0:
        raise OutsideError(
            f"{describe(args)} died by signal {_signal(-process.returncode) or -process.returncode}"
            f"{indented(stderr or stdout)}"
        )
    return Completed(args, process.returncode, stdout, stderr)


def _why_not(program: str, cwd: Path | None, err: OSError) -> str:
    if cwd is not None and not cwd.is_dir():
        return f"its working directory {cwd} does not exist"
    if isinstance(err, FileNotFoundError):
        if os.sep in program and Path(program).is_file():
            # execve says ENOENT for a script whose `#!` interpreter is missing.
            return "the interpreter on its #! line was not found"
        return "no such executable"
    if isinstance(err, PermissionError):
        return "not executable"
    return err.strerror or str(err)


def _stop(process: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """Kill the process group and reap it; what it printed, as far as it can be read."""
    with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
        os.killpg(process.pid, signal.SIGKILL)
    try:
        return process.communicate(timeout=_REAP_SECONDS)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        # A descendant left the group and holds the pipes open, or an interrupted
        # communicate() cannot resume: stop reading, reap the child.
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        process.wait()
        return b"", b""


def _signal(number: int) -> str | None:
    try:
        return signal.Signals(number).name
    except ValueError:
        return None


def failure(ran: Completed) -> str:
    """A non-zero exit for an error message: the command, its code, its output."""
    code = f"exited {ran.returncode}"
    if ran.returncode > 128 and (name := _signal(ran.returncode - 128)):
        # A shell in between reports its child's death by signal n as 128 + n.
        code += f" (128 + {name}: killed by a signal?)"
    output = indented(ran.stderr) or indented(ran.stdout)
    return f"{describe(ran.argv)} {code}{output or ' without a message'}"


def describe(argv: Sequence[str]) -> str:
    """The command as a user would type it, shortened, with URL passwords masked."""
    shown = redact(shlex.join(argv))
    if len(shown) > _SHOWN_COMMAND_CHARS:
        shown = shown[: _SHOWN_COMMAND_CHARS - 1] + "…"
    return f"`{shown}`"


def indented(output: bytes) -> str:
    """Output for an error message: its first lines, indented under the message."""
    lines = redact(output.decode("utf-8", "replace")).strip().splitlines()
    if not lines:
        return ""
    shown = [
        line if len(line) <= _SHOWN_LINE_CHARS else line[:_SHOWN_LINE_CHARS] + "…"
        for line in lines[:_SHOWN_LINES]
    ]
    if len(lines) > _SHOWN_LINES:
        shown.append(f"… ({len(lines) - _SHOWN_LINES} more lines)")
    return "\n" + "\n".join(f"    {line}" for line in shown)
