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

import gc
import os
import shutil
import signal
import sys
import warnings
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

# Create only: never follow a link or reuse a file that is there (as open's "xb").
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)

# Below this many files one process writes them: a fork of a large compiler (page
# tables, copy-on-write) costs tens of milliseconds.
FORK_FROM = 4096
_MAX_FD = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65536


def write_all(writes: Sequence[tuple[str, bytes]]) -> None:
    """Create each file with its bytes; the first error is raised (an `OSError` naming
    the file, whichever process met it), and the caller discards the staged tree."""
    if len(writes) < FORK_FROM or not _can_fork():
        for path, data in writes:
            write_new(path, data)
        return
    half = len(writes) // 2
    reader, writer = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns of fork in a process with threads (the compile's cue and
        # reader threads): the child runs none of their code and takes none of their
        # locks, so what the warning is about cannot happen here.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; its work is checked by the tests' trees
        os.close(reader)
        _child(writes[half:], writer)
    os.close(writer)
    try:
        for path, data in writes[:half]:
            write_new(path, data)
        failure = _read_all(reader)
        _, status = os.waitpid(pid, 0)
    except BaseException:  # an error of ours, or ^C: the child stops first
        _stop(pid)
        raise
    finally:
        os.close(reader)
    if failure:
        code, _, rest = failure.partition(b"\0")
        strerror, _, filename = rest.partition(b"\0")
        raise OSError(int(code), strerror.decode(), os.fsdecode(filename))
    if status != 0:
        raise OSError(f"the process writing half of the tree ended with status {status}")


def _child(writes: Sequence[tuple[str, bytes]], report: int) -> None:  # pragma: no cover
    """Write, report the first error on `report` (errno, message, file), and leave at
    once: no atexit handler, no flush of buffers that belong to the parent."""
    gc.disable()  # a collection would touch, and so copy, the parent's whole heap
    # The parent's other descriptors (cue's stdin among them) are not the child's to
    # hold open: a process reading one would wait for this child's end to see EOF.
    os.closerange(3, report)
    os.closerange(report + 1, _MAX_FD)
    code = 0
    try:
        for path, data in writes:
            write_new(path, data)
    except OSError as err:
        name = os.fsencode(err.filename) if isinstance(err.filename, str) else b""
        message = (err.strerror or str(err)).encode(errors="replace")
        os.write(report, b"%d\0%s\0%s" % (err.errno or 0, message, name))
        code = 1
    except BaseException:
        code = 2
    finally:
        os._exit(code)


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
    try:
        fd = os.open(path, _NEW_FILE, 0o666)
    except OSError as err:
        if err.filename is None:
            err.filename = path
        raise
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as err:
        if err.filename is None:
            err.filename = path
        raise
    finally:
        os.close(fd)


def link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, target, follow_symlinks=False)
