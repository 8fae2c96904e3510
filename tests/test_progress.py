"""The progress display: drawn on a terminal for long work, silent everywhere else."""

from __future__ import annotations

import io
import os
import pty
import select

from compiler.progress import MIN_ITEMS, tracking


def test_silent_when_not_a_terminal_or_when_short() -> None:
    stream = io.StringIO()
    with tracking("compiling", 500, stream=stream) as tracker:
        for n in range(500):
            tracker.advance(f"c{n}")
    assert stream.getvalue() == ""


def test_draws_on_a_terminal_and_not_when_disabled() -> None:
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal:
        with tracking("compiling", MIN_ITEMS, stream=terminal) as tracker:
            for n in range(MIN_ITEMS):
                tracker.advance(f"cluster-{n}")
        terminal.flush()
        drawn = _read_all(leader)
        assert "compiling" in drawn and f"{MIN_ITEMS}/{MIN_ITEMS}" in drawn
        with tracking("compiling", MIN_ITEMS, stream=terminal, enabled=False) as tracker:
            tracker.advance("x")
        terminal.flush()
    os.close(leader)


def _read_all(fd: int) -> str:
    """Everything written to the terminal so far (a pty hands it over in pieces)."""
    chunks = []
    while select.select([fd], [], [], 0.2)[0]:
        chunks.append(os.read(fd, 65536))
    return b"".join(chunks).decode("utf-8", "replace")
