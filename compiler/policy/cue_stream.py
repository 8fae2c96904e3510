"""The CUE policies on the clusters as the compile merges them.

cue's shards used to start once every cluster was merged and schema-checked, and then
ran beside the render: at C=1000 on 2 cores they took 5.7 s beside ~5 s of render,
checks and writes, and the compile waited for them (0.7 s, bench). Handed over one by
one as the merge finishes them (`add`), a shard starts as soon as it is full, and
cue runs beside the merge too. The shards are those the same clusters would make at
once (runs in arrival order, the reader's name order), and findings are per cluster,
so nothing found changes.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

from compiler import proc
from compiler.policy.cue import CueFinding, CuePolicies
from compiler.stageclock import add_time

_END = None


class CueStream:
    """Use as a context manager around the whole compile: leaving it stops cue."""

    def __init__(self, policies: CuePolicies | None) -> None:
        self._policies = policies
        self._arriving: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._cancel = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[list[CueFinding]] | None = None
        self._first: float | None = None  # when the first document came
        self._ended = False

    def __enter__(self) -> CueStream:
        if self._policies is not None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cue")
            context = contextvars.copy_context()  # the stage clock, in the worker too
            self._pending = self._pool.submit(context.run, self._run, self._policies)
        return self

    @property
    def taking(self) -> bool:
        """Whether documents go anywhere (no policies: none is worth making)."""
        return self._pending is not None

    def add(self, name: str, document: Any) -> None:
        """One cluster's document (compiler/policy/cue_input.py), in the compile's order."""
        if self.taking:
            self._arriving.put((name, document))

    def all_added(self) -> None:
        """No more documents: the last shard starts now (the compile renders meanwhile)."""
        if not self._ended:
            self._ended = True
            self._arriving.put(_END)

    def findings(self) -> list[CueFinding]:
        """Wait for cue's findings (sorted) on every document added."""
        self.all_added()
        return self._pending.result() if self._pending is not None else []

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._cancel.set()  # a no-op once cue has finished
        self.all_added()
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _run(self, policies: CuePolicies) -> list[CueFinding]:
        try:
            return policies.check(self._documents(), cancel=self._cancel)
        finally:
            if self._first is not None:  # cue's time: from its first document to its end
                add_time("cue", time.perf_counter() - self._first)

    def _documents(self) -> Iterator[tuple[str, Any]]:
        while True:
            try:
                item = self._arriving.get(timeout=proc.POLL_SECONDS)
            except queue.Empty:
                if self._cancel.is_set():
                    raise proc.Cancelled("cue: the compile stopped") from None
                continue
            if item is _END:
                if self._cancel.is_set():  # left early: the last shard is not started
                    raise proc.Cancelled("cue: the compile stopped")
                return
            if self._first is None:
                self._first = time.perf_counter()
            yield item
