"""The audit log: one JSON line per step, appended to a file that runs share.

DESIGN.md "Tracing, audit, errors": run id, trace id, step,
cluster, inputs by version, outputs by content hash, outcome, duration.

Two runs (a watch and a manual publish, say) may append to one file at once,
and a reader must only ever see whole lines. O_APPEND alone makes each
write(2) land at the end of the file, but a write may be short (a full disk,
a signal), and the rest would then land after another process's line. So
every line is written under an exclusive `flock`, in a loop until all of its
bytes are out; writers that do not take the lock are not protected.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compiler.errors import OutsideError, UsageError
from compiler.operations.logs import redacted
from compiler.secrets import redact

_MODE = 0o644


class AuditLog:
    """Appends audit lines to `path`; with `path=None` every call does nothing.

    The file is opened here, so a path that cannot be written stops the run at
    its start (a `UsageError`), not after it has published half of its work.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fd: int | None = None
        # flock locks belong to the open file, which our threads share: they
        # queue on this lock first.
        self._lock = threading.Lock()
        if path is None:
            return
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, _MODE)
        except OSError as err:
            raise UsageError(
                f"cannot open the audit log {redact(str(path))} for appending: "
                f"{err.strerror or err}"
            ) from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(
        self,
        *,
        run_id: str,
        trace_id: str,
        step: str,
        cluster: str | None,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
        outcome: str,
        duration: float,
        error: str | None = None,
    ) -> None:
        """Append one line; a write that fails midway is an `OutsideError` naming the file."""
        if self._fd is None:
            return
        entry: dict[str, Any] = {
            "time": _now(),
            "run_id": run_id,
            "trace_id": trace_id,
            "step": step,
            "cluster": cluster,
            "inputs": inputs,
            "outputs": outputs,
            "outcome": outcome,
            "duration": round(duration, 6),
        }
        if error is not None:
            entry["error"] = error
        # ASCII escapes: a line always encodes, even with a lone surrogate in it.
        line = json.dumps(redacted(entry), sort_keys=True, separators=(",", ":")) + "\n"
        self._append(line.encode("ascii"))

    @contextmanager
    def step(
        self,
        run_id: str,
        trace_id: str,
        step: str,
        cluster: str | None,
        inputs: Mapping[str, Any],
    ) -> Iterator[dict[str, Any]]:
        """Time the body and record it; the body fills the outputs it yields.

        A body that raises is recorded as "failed" with the error, and the
        error goes on unchanged.
        """
        outputs: dict[str, Any] = {}
        started = time.perf_counter()

        def finish(outcome: str, error: str | None = None) -> None:
            self.record(
                run_id=run_id,
                trace_id=trace_id,
                step=step,
                cluster=cluster,
                inputs=inputs,
                outputs=outputs,
                outcome=outcome,
                duration=time.perf_counter() - started,
                error=error,
            )

        try:
            yield outputs
        except BaseException as err:  # an interrupt is a failed step too
            try:
                finish("failed", f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)
            except OutsideError as audit_err:
                # The step's own error is what the user must see first.
                err.add_note(audit_err.message)
            raise
        finish("ok")

    def _append(self, data: bytes) -> None:
        assert self._fd is not None
        with self._lock:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
                try:
                    view = memoryview(data)
                    while view:
                        written = os.write(self._fd, view)
                        view = view[written:]
                finally:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
            except OSError as err:
                raise OutsideError(
                    f"cannot append to the audit log {redact(str(self.path))}: "
                    f"{err.strerror or err}"
                ) from None


def content_hash(files: Mapping[str, bytes]) -> str:
    """The hash ("sha256:<hex>") of a tree given as POSIX relative path -> bytes.

    The same files give the same hash on every machine: paths are sorted, and
    each contributes its UTF-8 bytes, a NUL (never in a path) and the 32-byte
    digest of its content, so no two different trees frame to the same input.
    """
    outer = hashlib.sha256()
    for path in sorted(files):
        outer.update(path.encode("utf-8"))
        outer.update(b"\0")
        outer.update(hashlib.sha256(files[path]).digest())
    return f"sha256:{outer.hexdigest()}"


def _now() -> str:
    """UTC in ISO 8601 with milliseconds and a Z: sortable as text."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
