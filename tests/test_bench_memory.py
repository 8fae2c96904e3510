"""The bench's combined peak memory sees several child processes alive at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from bench.memory import PeakSampler, descendants

MIB = 1024 * 1024
# A child that touches 64 MiB (every page), says so, and waits to be stopped.
_HOLDS = (
    "import sys, time\n"
    "block = bytearray(64 << 20)\n"
    "block[::4096] = b'x' * len(block[::4096])\n"
    "print('ready', flush=True)\n"
    "time.sleep(30)\n"
)


def test_the_sum_counts_every_child_alive_at_once() -> None:
    children = [
        subprocess.Popen([sys.executable, "-c", _HOLDS], stdout=subprocess.PIPE) for _ in range(3)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        with PeakSampler(interval=0.01) as peak:
            time.sleep(0.05)
            assert {c.pid for c in children} <= set(descendants(peak.pid))
    finally:
        for child in children:
            child.kill()
            child.communicate()
    assert peak.samples >= 3
    assert 64 * MIB <= peak.largest_child < 2 * 64 * MIB  # one child, not the sum
    assert peak.together >= 3 * 64 * MIB + peak.largest_child // 8


def test_a_grandchild_counts_too() -> None:
    # The WebAssembly cue is node under a launcher; a child's child is measured too.
    middle = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {_HOLDS!r}])\n"
    child = subprocess.Popen(
        [sys.executable, "-c", middle], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        with PeakSampler(interval=0.01) as peak:
            time.sleep(0.03)
            assert len(descendants(peak.pid)) == 2
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the group: the grandchild too
        child.communicate()
    assert peak.largest_child >= 64 * MIB


def test_a_small_child_of_a_large_process_is_measured_small() -> None:
    # ru_maxrss would say 256 MiB or more here: Linux keeps it across execve, so a
    # child reports its parent's size at the fork (the compiler's, for every cue).
    ballast = bytearray(256 << 20)
    ballast[::4096] = b"x" * len(ballast[::4096])
    small = "import time\nprint('ready', flush=True)\ntime.sleep(30)\n"
    with subprocess.Popen([sys.executable, "-c", small], stdout=subprocess.PIPE) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == b"ready\n"
            with PeakSampler(interval=0.01) as peak:
                time.sleep(0.03)
        finally:
            child.kill()
    assert peak.own >= 256 * MIB
    assert 0 < peak.largest_child < 64 * MIB
    del ballast


def test_a_child_not_yet_exec_is_not_counted() -> None:
    # Between fork and exec a child is the parent's image: the sampler saw the
    # compiler's size there and reported it as the largest cue.
    forks = (
        "import os, sys, time\n"
        "ballast = bytearray(192 << 20)\n"
        "ballast[::4096] = b'x' * len(ballast[::4096])\n"
        "if os.fork() == 0:\n"
        "    time.sleep(30)\n"
        "    os._exit(0)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", forks], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        assert len(descendants(child.pid)) == 1
        with PeakSampler(child.pid, interval=0.01) as peak:
            time.sleep(0.03)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
    assert peak.own >= 192 * MIB
    assert peak.largest_child == 0
    assert peak.together < peak.own + 64 * MIB  # the fork's pages not counted twice
