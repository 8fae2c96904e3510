"""What went wrong on the wire, in words: shared by the forge client and the webhooks."""

from __future__ import annotations

from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from compiler.secrets import redact


def connection_problem(err: HTTPError, timeout: float, url: str | None = None) -> str:
    """A failed request that got no HTTP answer; `url` is named when the caller's
    message does not already say where it was going."""
    to = f" to {url}" if url else ""
    if url and isinstance(err, NameResolutionError):
        return f"cannot resolve the host of {url}"
    if isinstance(err, NewConnectionError):
        cause = err.__cause__
        why = cause.strerror if isinstance(cause, OSError) and cause.strerror else "failed"
        return f"cannot connect{to}: {why}"
    if isinstance(err, ConnectTimeoutError):
        return f"connecting{to} timed out after {timeout:g} s"
    if isinstance(err, ReadTimeoutError):
        return f"no answer{' from ' + url if url else ''} within {timeout:g} s"
    if isinstance(err, ProtocolError):
        return f"the connection{to} was lost ({err.args[-1]!r})"
    return redact(f"{type(err).__name__}: {err}")
