"""`serve`: the compiler as a service (triggers, health, metrics, one actor among replicas)."""

from __future__ import annotations

import threading

from compiler.errors import EXIT_OK
from compiler.operations.signals import stop_on_signals
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
    with stop_on_signals(stop, _log):
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
