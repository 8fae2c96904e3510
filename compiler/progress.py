"""A progress display for long compiles and publishes, on a terminal only.

Quiet when stderr is not a terminal (CI logs, pipes) and with `--format json`,
so machine output and logs never carry redraw sequences.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

MIN_ITEMS = 20  # fewer clusters finish before a bar is worth drawing


class Tracker:
    """Counts work done; draws it when a display is attached."""

    def __init__(self, progress: Progress | None = None, task: TaskID | None = None) -> None:
        self._progress, self._task = progress, task

    def advance(self, label: str) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, description=label)


@contextmanager
def tracking(
    what: str, total: int, *, enabled: bool = True, stream: TextIO | None = None
) -> Iterator[Tracker]:
    stream = stream or sys.stderr
    if not enabled or total < MIN_ITEMS or not stream.isatty():
        yield Tracker()
        return
    # rich only where a bar is drawn: its import (~20 ms) is a tenth of a hook's run.
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(file=stream)
    columns = (
        TextColumn(f"{what} [bold]{{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        yield Tracker(progress, progress.add_task("", total=total))
