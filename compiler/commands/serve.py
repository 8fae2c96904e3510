"""`serve`: the compiler as a service (triggers, health, metrics, one actor among replicas)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from compiler.errors import EXIT_OK
from compiler.options import Destination, SourceOptions
from compiler.outcome import Outcome
from compiler.service.replica import Replica, ServeSettings
from compiler.service.streams import enable_config_stream


def serve_command(
    *,
    source: SourceOptions,
    destination: Destination,
    cue: str | None,
    settings: ServeSettings,
) -> Outcome:
    replica = Replica(source, destination, cue, settings, _log)
    stop = threading.Event()
    with _stop_on_signals(stop):
        released = replica.run(stop)
    _log("stopped; lease released" if released else "stopped; the lease runs out by itself")
    return Outcome(EXIT_OK)


def enable_stream_command(*, source: SourceOptions) -> Outcome:
    """`table create --stream` (and `table migrate --stream`): the stream `serve` reads."""
    table, arn = enable_config_stream(source)
    print(f"table {table}: stream on (NEW_IMAGE) {arn}")
    return Outcome(EXIT_OK)


def _log(message: str) -> None:
    print(f"serve: {message}", flush=True)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT finish the current step, release the lease, then stop."""

    def handler(number: int, frame: FrameType | None) -> None:
        _log(f"{signal.Signals(number).name}: stopping after this step")
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
