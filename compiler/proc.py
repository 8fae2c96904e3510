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
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import OutsideError
from compiler.secrets import redact

_SHOWN_LINES = 20
_SHOWN_LINE_CHARS = 300
_SHOWN_COMMAND_CHARS = 200
POLL_SECONDS = 0.2  # how soon a cancelled command is killed
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
    cancel: threading.Event | None = None,
) -> Completed:
    """Run `argv` to its end; `env=None` inherits ours, `cwd=None` keeps ours.

    A run in a worker thread passes `cancel`: when the main thread sets it (an
    interrupt, a failure), the command is killed within POLL_SECONDS and
    `Cancelled` is raised.
    """
    running = start(argv, cwd=cwd, env=env, takes_stdin=stdin is not None)
    return running.finish(stdin, timeout=timeout, cancel=cancel)


def start(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None,
    env: Mapping[str, str] | None,
    takes_stdin: bool,
) -> Running:
    """Start `argv` now and give it its input later (`Running.finish`): a command that
    is slow to start (the WebAssembly cue) starts while its input is being made."""
    args = tuple(os.fspath(a) for a in argv)
    try:
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if takes_stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a group of its own: a timeout kills its children too
        )
    except OSError as err:
        raise OutsideError(f"{describe(args)} cannot run: {_why_not(args[0], cwd, err)}") from None
    return Running(args, process)


class Running:
    """A started command; `finish` it, or `stop` it (a no-op once it finished)."""

    def __init__(self, args: tuple[str, ...], process: subprocess.Popen[bytes]) -> None:
        self.args = args
        self._process = process

    def finish(
        self,
        stdin: bytes | None = None,
        *,
        timeout: float,
        cancel: threading.Event | None = None,
    ) -> Completed:
        """Write `stdin`, wait at most `timeout` seconds for the end, return what it printed."""
        process, args = self._process, self.args
        try:
            stdout, stderr = _communicate(process, args, stdin, timeout, cancel)
        except subprocess.TimeoutExpired:
            _, stderr = _stop(process)
            raise OutsideError(
                f"{describe(args)} timed out after {timeout:g} s and was killed{indented(stderr)}"
            ) from None
        except BaseException:  # interrupted or cancelled: leave nothing running behind us
            _stop(process)
            raise
        if process.returncode < 0:
            raise OutsideError(
                f"{describe(args)} died by signal "
                f"{_signal(-process.returncode) or -process.returncode}"
                f"{indented(stderr or stdout)}"
            )
        return Completed(args, process.returncode, stdout, stderr)

    def stop(self) -> None:
        if self._process.returncode is None:
            _stop(self._process)


class Cancelled(Exception):
    """The caller set `cancel` while the command ran; the command was killed."""


def _communicate(
    process: subprocess.Popen[bytes],
    args: tuple[str, ...],
    stdin: bytes | None,
    timeout: float,
    cancel: threading.Event | None,
) -> tuple[bytes, bytes]:
    if cancel is None:
        return process.communicate(stdin, timeout=timeout)
    # One communicate() for the whole run, and a watcher that kills the group when
    # `cancel` is set (communicate then returns, the pipes being closed). Not a loop
    # of short communicate() calls: one that times out never writes the rest of
    # the input (found by the bench: cue waited for the rest of its stdin for ever).
    finished = threading.Event()
    cancelled = threading.Event()

    def watch() -> None:
        # Waits on `finished`, not on `cancel`: the end of the command wakes it at once
        # (the join below then costs nothing), and `cancel` is seen within POLL_SECONDS.
        while not finished.wait(POLL_SECONDS):  # bounded: set when communicate ends
            if cancel.is_set():
                cancelled.set()
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                return

    watcher = threading.Thread(target=watch, name=f"cancel-{process.pid}", daemon=True)
    watcher.start()
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    finally:
        finished.set()
        watcher.join()
    if cancelled.is_set():
        raise Cancelled(describe(args))
    return stdout, stderr


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
