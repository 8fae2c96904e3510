"""The operations context of one run: its run id, audit log, logger and notifier.

The CLI opens it once (`opened`), the stages mark their steps with `step`,
and every step gets its trace id in the seed's form (`ms-<run>-git-e40`), a
log line and an audit line. Library code that runs without a CLI (tests, a
caller's own script) gets a quiet default: a fresh run id, no audit file, no
hooks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.operations.audit import AuditLog
from compiler.operations.logs import get_logger
from compiler.operations.notify import Notifier
from compiler.operations.trace import Run


@dataclass(frozen=True)
class Operations:
    run: Run = field(default_factory=Run)
    audit: AuditLog = field(default_factory=lambda: AuditLog(None))
    notifier: Notifier = field(default_factory=lambda: Notifier(alert=None, status=None))


_current: ContextVar[Operations | None] = ContextVar("gitops_operations", default=None)


def current() -> Operations:
    found = _current.get()
    if found is None:
        found = Operations()
        _current.set(found)
    return found


@contextmanager
def opened(
    *, run_id: str | None, audit_path: Path | None, alert: str | None, status: str | None
) -> Iterator[Operations]:
    """The context of one CLI run; bad paths and hook targets fail here, before any work."""
    operations = Operations(
        run=Run(run_id) if run_id else Run(),
        audit=AuditLog(audit_path),
        notifier=Notifier(alert=alert, status=status),
    )
    token = _current.set(operations)
    try:
        yield operations
    finally:
        _current.reset(token)
        operations.audit.close()
        operations.notifier.close()


@contextmanager
def step(name: str, cluster: str | None = None, **inputs: Any) -> Iterator[dict[str, Any]]:
    """One step of the run: traced, logged, audited (outputs are the body's to fill)."""
    ops = current()
    trace_id = ops.run.trace(name)
    log = get_logger()
    context = {"run_id": ops.run.id, "trace_id": trace_id, "step": name, "cluster": cluster}
    started = time.perf_counter()
    with ops.audit.step(ops.run.id, trace_id, name, cluster, inputs) as outputs:
        try:
            yield outputs
        except BaseException as err:
            log.info("%s failed: %s", name, err, extra=context)
            raise
        seconds = time.perf_counter() - started
        log.info("%s done in %.2f s%s", name, seconds, _shown(outputs), extra=context)


def _shown(outputs: Mapping[str, Any]) -> str:
    simple = {k: v for k, v in outputs.items() if isinstance(v, (str, int, float))}
    return "" if not simple else " (" + ", ".join(f"{k}={v}" for k, v in simple.items()) + ")"


@contextmanager
def child_run(suffix: str) -> Iterator[Operations]:
    """A run of its own inside a long-lived one (each poll of `watch` publishes as a run)."""
    parent = current()
    child = Operations(
        run=Run(f"{parent.run.id}.{suffix}"), audit=parent.audit, notifier=parent.notifier
    )
    token = _current.set(child)
    try:
        yield child
    finally:
        _current.reset(token)


@contextmanager
def run_as(run_id: str, audit: AuditLog | None = None) -> Iterator[Operations]:
    """A run with an id chosen elsewhere (`serve`: the id a trigger was answered with,
    possibly by another replica), sharing the long-lived run's audit log (or `audit`,
    one that wraps it) and hooks."""
    parent = current()
    child = Operations(run=Run(run_id), audit=audit or parent.audit, notifier=parent.notifier)
    token = _current.set(child)
    try:
        yield child
    finally:
        _current.reset(token)
