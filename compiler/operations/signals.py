"""Long-running commands (`watch`, `serve`) stop cleanly: SIGTERM and SIGINT set an
event the loop checks between steps, so a step (a publish) is never cut in half."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def stop_on_signals(stop: threading.Event, log: Callable[[str], None]) -> Iterator[None]:
    def handler(number: int, frame: FrameType | None) -> None:
        log(f"{signal.Signals(number).name}: stopping after this step")
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
