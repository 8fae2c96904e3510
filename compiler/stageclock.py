"""Time spent per pipeline stage, for the benchmark (`bench/`).

The stages call `timed("merge")` around their work; nothing is recorded unless
a caller (the bench) installed a `StageClock` with `clocked()`, so a normal run
pays one context-variable lookup per call.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

_CLOCK: ContextVar[StageClock | None] = ContextVar("stage_clock", default=None)


@dataclass
class StageClock:
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] += seconds


@contextmanager
def clocked(clock: StageClock) -> Iterator[StageClock]:
    token = _CLOCK.set(clock)
    try:
        yield clock
    finally:
        _CLOCK.reset(token)


@contextmanager
def timed(stage: str) -> Iterator[None]:
    clock = _CLOCK.get()
    if clock is None:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        clock.add(stage, time.perf_counter() - started)


def add_time(stage: str, seconds: float) -> None:
    """Time a stage took that no single block of code spans (cue's, from its first
    document to its end)."""
    clock = _CLOCK.get()
    if clock is not None:
        clock.add(stage, seconds)
