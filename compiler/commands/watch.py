"""`watch`: the compiler as a service, publishing what new versions and new clusters affect."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from compiler.commands.common import Selection, SourceOptions, open_project, open_store
from compiler.commands.publish import publish_command
from compiler.errors import EXIT_OK
from compiler.model import layer_name_from_pk
from compiler.operations import steps
from compiler.publishing.watcher import Changes, Watcher

DEFAULT_CHECKPOINT = Path(".gitops/watch-checkpoint.json")


def watch_command(
    *,
    source: SourceOptions,
    repo: str,
    base: str,
    forge_kind: str,
    forge_repo: str | None,
    cue: str | None,
    labels: list[str],
    interval: float,
    max_polls: int | None,
    checkpoint: Path,
) -> int:
    project = open_project(source)
    store = open_store(source, project)

    poll_numbers = iter(range(1, 2**31))

    def publish_changes(changes: Changes) -> bool:
        pins = tuple(f"{layer_name_from_pk(pk)}={v}" for pk, v in sorted(changes.seen.items()))
        with steps.child_run(f"p{next(poll_numbers)}"):  # each publish is a run of its own
            return _publish(changes, pins)

    def _publish(changes: Changes, pins: tuple[str, ...]) -> bool:
        code = publish_command(
            source=source,
            selection=Selection(clusters=tuple(changes.clusters), pins=pins),
            repo=repo,
            base=base,
            branch=None,
            forge_kind=forge_kind,
            forge_repo=forge_repo,
            from_dir=None,
            dry_run=False,
            cue=cue,
            run_id=None,
            labels=labels,
            fmt="text",
        )
        return code == EXIT_OK  # violations: the checkpoint stays, the next poll retries

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
    with _stop_on_signals(stop):
        polls = watcher.run(max_polls)
    why = "on a signal" if stop.is_set() else "after the last poll"
    print(f"watch: stopped {why} ({polls} poll(s)); checkpoint {checkpoint}")
    return EXIT_OK


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT finish the current step, then stop: never half a publish."""

    def handler(number: int, frame: FrameType | None) -> None:
        print(f"watch: {signal.Signals(number).name}: stopping after this step", flush=True)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
