"""`watch`: the compiler as a service, publishing what new versions and new clusters affect."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from compiler.errors import EXIT_OK
from compiler.operations import steps
from compiler.operations.signals import stop_on_signals
from compiler.options import Destination, Selection, SourceOptions, open_project, open_store
from compiler.outcome import Outcome
from compiler.publishing.publication import publish_rolling, report_published
from compiler.publishing.watcher import Changes, Watcher


def watch_command(
    *,
    source: SourceOptions,
    destination: Destination,
    cue: str | None,
    interval: float,
    max_polls: int | None,
    checkpoint: Path,
) -> Outcome:
    project = open_project(source)
    store = open_store(source, project)

    poll_numbers = iter(range(1, 2**31))

    def publish_changes(changes: Changes, names: list[str]) -> Sequence[str] | None:
        # Each publish is a run of its own, compiled from exactly the versions the poll saw.
        selection = Selection(clusters=tuple(names), pin=changes.pin())
        with steps.child_run(f"p{next(poll_numbers)}") as child:
            rolled = publish_rolling(source, selection, destination, run=child.run, cue=cue)
            if rolled.published.outcome is not None:
                report_published(rolled.published, "text")
        if rolled.held:
            print(f"watch: held for violations: {', '.join(rolled.held)}", flush=True)
        return rolled.held

    stop = threading.Event()
    watcher = Watcher(
        store=store,
        project=project,
        checkpoint_path=checkpoint,
        publish=publish_changes,
        log=lambda message: print(f"watch: {message}", flush=True),
        interval=interval,
        stop=stop,
    )
    with stop_on_signals(stop, lambda message: print(f"watch: {message}", flush=True)):
        polls = watcher.run(max_polls)
    why = "on a signal" if stop.is_set() else "after the last poll"
    print(f"watch: stopped {why} ({polls} poll(s)); checkpoint {checkpoint}")
    return Outcome(EXIT_OK)
