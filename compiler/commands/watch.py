"""`watch`: the compiler as a service, publishing what new versions and new clusters affect;
with `--argocd-server`, also recording each cluster's last known good from Argo CD's
reports and rolling a failing revision back to it (`compiler/argocd/sentinel.py`)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

from compiler.argocd.client import SERVER_ENV
from compiler.argocd.sentinel import opened_sentinel
from compiler.errors import EXIT_OK
from compiler.operations import steps
from compiler.operations.signals import stop_on_signals
from compiler.options import Destination, Selection, SourceOptions, open_project, open_store
from compiler.outcome import Outcome
from compiler.project import Project
from compiler.publishing.publication import publish_rolling, report_published
from compiler.publishing.watcher import Changes, Watcher
from compiler.sources import ConfigStore


def watch_command(
    *,
    source: SourceOptions,
    destination: Destination,
    cue: str | None,
    interval: float,
    max_polls: int | None,
    checkpoint: Path,
    argocd_server: str | None = None,
    grace: float = 600.0,
) -> Outcome:
    """With `argocd_server` (or ARGOCD_SERVER), each poll also acts on Argo CD's reports."""
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

    def log(message: str) -> None:
        print(f"watch: {message}", flush=True)

    with ExitStack() as stack:
        guard = None
        if argocd_server or os.environ.get(SERVER_ENV):
            sentinel = stack.enter_context(
                opened_sentinel(
                    source,
                    store,
                    project,
                    destination,
                    server=argocd_server,
                    grace=timedelta(seconds=grace),
                    cue=cue,
                    log=log,
                    environ=os.environ,
                )
            )
            guard = sentinel.poll
        return _watch(store, project, checkpoint, publish_changes, log, interval, max_polls, guard)


def _watch(
    store: ConfigStore,
    project: Project,
    checkpoint: Path,
    publish_changes: Callable[[Changes, list[str]], Sequence[str] | None],
    log: Callable[[str], None],
    interval: float,
    max_polls: int | None,
    guard: Callable[[], Mapping[str, int]] | None,
) -> Outcome:
    stop = threading.Event()
    watcher = Watcher(
        store=store,
        project=project,
        checkpoint_path=checkpoint,
        publish=publish_changes,
        log=log,
        interval=interval,
        stop=stop,
        guard=guard,
    )
    with stop_on_signals(stop, log):
        polls = watcher.run(max_polls)
    why = "on a signal" if stop.is_set() else "after the last poll"
    print(f"watch: stopped {why} ({polls} poll(s)); checkpoint {checkpoint}")
    return Outcome(EXIT_OK)
