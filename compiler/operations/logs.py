"""Structured logs on stdlib logging: readable on a terminal, JSON lines for machines.

`--log-format json` gives one object per line (time, level,
message, and the run's context: run_id, trace_id, step, cluster); text gives
`10:04:05 info  [ms-r1-git-e40] prod-eks-1: pushed ...`. Context travels in
`extra=`, so a call site reads
`log.info("pushed %s", branch, extra={"trace_id": t, "cluster": c})`.

Only the `gitops_compiler` logger is configured: the root logger and other
libraries' loggers (boto3, urllib3) stay as the embedding program left them.
Every message and field passes `secrets.redact` on its way out, so a token
in an exception text or a URL never reaches a log.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any, TextIO

from compiler.secrets import redact

LOGGER_NAME = "gitops_compiler"
FORMATS = ("text", "json")
CONTEXT = ("run_id", "trace_id", "step", "cluster")

# What every LogRecord carries; anything else on a record came in through `extra=`.
# Taken from a real record, so attributes newer Pythons add (taskName) are known too.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}
_TEXT_LEVELS = {"WARNING": "warn", "CRITICAL": "crit"}


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def setup_logging(fmt: str, stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Send the compiler's logs to `stream` (stderr when None) in `fmt`, "text" or "json".

    Calling it again replaces the handler it installed before, so a test or a
    long-running watch can reconfigure without duplicating every line.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: use one of {', '.join(FORMATS)}")
    logger = get_logger()
    for old in [h for h in logger.handlers if isinstance(h, _Handler)]:
        logger.removeHandler(old)
        old.close()
    # Looked up at call time, not as a default argument: pytest and the CLI's
    # tests swap sys.stderr after this module is imported.
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    # Ours alone: a root handler set up by an embedding program would print every line twice.
    logger.propagate = False


class _Handler(logging.StreamHandler[TextIO]):
    """The handler `setup_logging` installs, and so the one it may replace."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line; context and other `extra=` fields as top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname.lower(),
            "message": redact(record.getMessage()),
        }
        entry.update(redacted(_extra(record)))
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`HH:MM:SS level [trace id] cluster: message key=value ...`, local time."""

    def format(self, record: logging.LogRecord) -> str:
        level = _TEXT_LEVELS.get(record.levelname, record.levelname.lower())
        parts = [time.strftime("%H:%M:%S", time.localtime(record.created)), f"{level:<5}"]
        extra = _extra(record)
        tag = extra.pop("trace_id", None) or extra.pop("run_id", None)
        extra.pop("run_id", None)  # the trace id holds the run id
        if tag:
            parts.append(f"[{tag}]")
        step = extra.pop("step", None)
        if step and not tag:
            parts.append(f"[{step}]")
        cluster = extra.pop("cluster", None)
        message = record.getMessage()
        parts.append(f"{cluster}: {message}" if cluster else message)
        parts.extend(f"{key}={_scalar(value)}" for key, value in extra.items())
        text = redact(" ".join(str(p) for p in parts))
        if record.exc_info:
            text += "\n" + redact(self.formatException(record.exc_info))
        return text


def redacted(value: Any) -> Any:
    """A JSON-ready copy of `value` with every string (keys too) passed through `redact`.

    Shared by the log formatters, the audit log and the notifier: what leaves
    the process as data is masked as carefully as what leaves it as text.
    """
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {redact(str(k)): redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((redacted(v) for v in value), key=str)  # sets have no order of their own
    if isinstance(value, PurePath):
        return redact(value.as_posix())
    return redact(str(value))


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    """The `extra=` fields of a record, context first, None values left out."""
    fields = {
        k: v
        for k, v in vars(record).items()
        if k not in _STANDARD and not k.startswith("_") and v is not None
    }
    return {k: fields.pop(k) for k in CONTEXT if k in fields} | fields


def _scalar(value: Any) -> str:
    if isinstance(value, str) and value and not any(c.isspace() for c in value):
        return value
    return json.dumps(redacted(value), ensure_ascii=False)


def _utc(created: float) -> str:
    """ISO 8601 UTC with milliseconds, as the audit log writes it."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{stamp}.{int(created % 1 * 1000):03d}Z"
