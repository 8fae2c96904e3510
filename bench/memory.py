"""The combined resident memory of a process and all its descendants, sampled.

`ru_maxrss` gives the peak of this process, and for `RUSAGE_CHILDREN` the peak of
the largest single child waited for: several cue processes alive at once (the
policies split a large fleet between them) add up, and neither number shows it.
A sampler thread sums VmRSS of this process and every descendant every
INTERVAL seconds and keeps the largest sum, and the largest peak (VmHWM) of a
single descendant. A sample can miss a peak shorter than the interval; the sum
is a lower bound.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

INTERVAL = 0.03  # seconds; a walk of /proc costs ~1 ms of a core
_PROC = Path("/proc")


def memory_bytes(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of `pid`: resident now, and the most it ever was; (0, 0) once it
    is gone (or a zombie).

    VmHWM is the peak of this process image alone. `ru_maxrss` is not: Linux keeps it
    across execve, so a child started by a large process (the bench's runner, or the
    compiler starting cue) reports at least its parent's size at the fork.
    """
    try:
        text = (_PROC / str(pid) / "status").read_text()
    except OSError:
        return 0, 0
    found = {"VmRSS:": 0, "VmHWM:": 0}
    for line in text.splitlines():
        key = line[:6]
        if key in found:
            found[key] = int(line.split()[1]) * 1024  # kB
    return found["VmRSS:"], found["VmHWM:"]


def _command_line(pid: int) -> bytes | None:
    try:
        return (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None


def _children_listed(pid: int) -> list[int] | None:
    """The children the kernel lists per thread; None where it does not
    (CONFIG_PROC_CHILDREN off: gVisor, some VMs)."""
    try:
        tasks = list((_PROC / str(pid) / "task").iterdir())
    except OSError:
        return []
    found: list[int] = []
    for task in tasks:
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except FileNotFoundError:
            return None
        except OSError:
            continue  # a thread that ended meanwhile
    return found


def _parents() -> dict[int, list[int]]:
    """Every process's children, from each /proc/<pid>/stat's parent field."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue
        # `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    """The processes started by `pid`, and by them, and so on."""
    children_of: Callable[[int], list[int]]
    if _children_listed(pid) is None:
        tree = _parents()
        children_of = lambda p: tree.get(p, [])  # noqa: E731
    else:
        children_of = lambda p: _children_listed(p) or []  # noqa: E731
    found: list[int] = []
    todo = [pid]
    while todo:  # bounded: a process has one parent, so the tree has no cycle
        kids = children_of(todo.pop())
        found += kids
        todo += kids
    return found


class PeakSampler:
    """`with PeakSampler() as peak:` ... then `peak.together` (bytes, this process
    plus its descendants at the same moment), `peak.largest_child` (the largest peak
    of one descendant) and `peak.own` (this process's peak)."""

    def __init__(self, pid: int | None = None, interval: float = INTERVAL) -> None:
        self.pid = pid or os.getpid()
        self.interval = interval
        self.together = 0
        self.largest_child = 0
        self.own = 0
        self.samples = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)

    def sample(self) -> None:
        own, self.own = memory_bytes(self.pid)
        # A child between its fork and its exec is still this process's image (with
        # vfork, the very same pages): its VmRSS and VmHWM are this process's, and
        # counting them made the compiler's own 474 MiB at C=1000 the "largest cue".
        # It is known by its command line, which is ours until the exec.
        ours = _command_line(self.pid)
        children = [memory_bytes(p) for p in descendants(self.pid) if _command_line(p) != ours]
        self.together = max(self.together, own + sum(now for now, _ in children))
        self.largest_child = max([self.largest_child, *(peak for _, peak in children)])
        self.samples += 1

    def _run(self) -> None:
        while not self._done.wait(self.interval):  # bounded: set on leaving the block
            self.sample()

    def __enter__(self) -> PeakSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()
        self.sample()
