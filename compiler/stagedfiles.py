"""The new files of a staged tree (compiler/emit.py), each created new: never through a
link or over a file that is there. A large tree is written by two processes at once.

Creating a file is mostly the kernel's work, on one core per process: at C=1000
(103,000 files) one process spent 0.9-3.4 s creating them. Threads do not help (each
file's three system calls take the interpreter lock back from a busy thread), a second
process does: the compile forks one that writes the second half of the files (other
clusters, so other directories) while it writes the first. The child only opens, writes
and closes files with what it inherited, then leaves with `os._exit`: no import, no
lock, no cleanup of the parent's. Measured alone on tmpfs, 100,000 files of 400 bytes:
0.87-1.10 s in one process, 0.45-0.51 s in two.
"""

from __future__ import annotations

import errno
import gc
import os
import shutil
import signal
import sys
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

# Create only: never follow a link or reuse a file that is there (as open's "xb").
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)

# Below this many files one process writes them: a fork of a large compiler (page
# tables, copy-on-write) costs tens of milliseconds.
FORK_FROM = 4096
_MAX_FD = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65536
_STOPPING = {signal.SIGINT, signal.SIGTERM}


def write_all(writes: Sequence[tuple[str, bytes]]) -> None:
    """Create each file with its bytes; the first error is raised (an `OSError` naming
    the file, whichever process met it), and the caller discards the staged tree."""
    if len(writes) < FORK_FROM or not _can_fork():
        _write_here(writes)
        return
    half = len(writes) // 2
    reader, writer = os.pipe()
    # ^C or a SIGTERM between the fork and the child's own handlers would raise in the
    # child and unwind the parent's stack there (its cleanups would delete the staged
    # tree): both wait, blocked, until each process is ready for them.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
    try:
        pid = os.fork()
    except OSError:  # no process to spare (a pids limit, memory): this one writes all
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(reader)
        os.close(writer)
        _write_here(writes)
        return
    if pid == 0:  # pragma: no cover - the child; its work is checked by the tests' trees
        exit_code = 3
        try:
            exit_code = _child(writes[half:], reader, writer, mask)
        finally:
            os._exit(exit_code)  # whatever happened: never back into the parent's stack
    open_ends = [writer, reader]  # closed once each: a number closed twice may be reused
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(open_ends.pop(0))  # the child's end: EOF once the child is gone
        _write_here(writes[:half])
        failure = _read_all(reader)
        _, status = os.waitpid(pid, 0)
    except BaseException:  # an error of ours, or ^C: the child stops first
        _stop(pid)
        raise
    finally:
        for end in open_ends:
            os.close(end)
    if failure:
        code, _, rest = failure.partition(b"\0")
        strerror, _, filename = rest.partition(b"\0")
        raise OSError(int(code), strerror.decode(), os.fsdecode(filename))
    if status != 0:
        raise OSError(errno.EIO, f"the process writing half of the tree {_ended(status)}")


def _write_here(writes: Sequence[tuple[str, bytes]]) -> None:
    for path, data in writes:
        write_new(path, data)


def _child(
    writes: Sequence[tuple[str, bytes]], reader: int, report: int, mask: set[int | signal.Signals]
) -> int:  # pragma: no cover - runs in the child
    """Write, report the first error on `report` (errno, message, file); the exit
    status, for the caller's `os._exit` (no atexit handler, no cleanup of the
    parent's)."""
    gc.disable()  # a collection would touch, and so copy, the parent's whole heap
    os.close(reader)
    for number in _STOPPING:  # ^C or a SIGTERM ends the child there and then
        with suppress(ValueError):  # else (not its main thread) they raise, and it exits
            signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    # The parent's other descriptors (cue's stdin among them) are not the child's to
    # hold open: a process reading one would wait for this child's end to see EOF.
    _close_inherited(keep=report)
    try:
        _write_here(writes)
    except OSError as err:
        name = os.fsencode(err.filename) if isinstance(err.filename, str) else b""
        message = (err.strerror or str(err)).encode(errors="replace")
        os.write(report, b"%d\0%s\0%s" % (err.errno or errno.EIO, message, name))
        return 1
    except BaseException:
        return 2
    return 0


def _close_inherited(keep: int) -> None:  # pragma: no cover - runs in the child
    """Close every descriptor but 0-2 and `keep`: those /proc lists, else by range
    (`closerange` up to the limit is slow where the limit is huge and close_range is
    denied)."""
    try:
        numbers = [int(entry.name) for entry in Path("/proc/self/fd").iterdir()]
    except OSError:
        os.closerange(3, keep)
        os.closerange(keep + 1, _MAX_FD)
        return
    for number in numbers:
        if number > 2 and number != keep:
            with suppress(OSError):
                os.close(number)


def _ended(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"ended with exit status {code}"


def _stop(pid: int) -> None:
    """The parent failed or was interrupted: the child stops before the staged tree is
    removed, so nothing is written into a directory being deleted."""
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _can_fork() -> bool:
    return hasattr(os, "fork") and (os.cpu_count() or 1) > 1 and sys.platform != "darwin"


def write_new(path: str, data: bytes) -> None:
    fd = os.open(path, _NEW_FILE, 0o666)  # its OSError names the file
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as err:  # write's does not: the child reports the name
        err.filename = path
        raise
    finally:
        os.close(fd)


def link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, target, follow_symlinks=False)
