"""Alerts and status: tell a webhook or a command how the run went, never fail because of it.

An aborted run (validation failure, outside-system failure) calls the alert
hook; the final status (success / failed / no-change, clusters, PR URL, trace
id) goes to the status hook, the seed's "portal". A hook is

- an http(s) URL: the JSON is POSTed; user:password in the URL becomes Basic
  auth and is masked wherever the URL is shown;
- `command:<program> [args]` (split like a shell would, run without one): the
  JSON arrives on stdin, and GITOPS_NOTIFY says "alert" or "status".

Both go through the shared retry loop (`operations.http`): connection
errors, timeouts, 408, 429 and 5xx are retried with exponential backoff (a
Retry-After is honoured up to `max_wait`; a longer one ends the attempts),
and for a command any failure. Whatever happens, `alert` and `status` return
True or False and log a warning: a webhook never changes the run's exit code.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.exceptions import LocationParseError

from compiler import __version__, proc
from compiler.errors import OutsideError, UsageError
from compiler.operations.http import Failure, HttpClient, Request, RetryPolicy, status_line
from compiler.operations.logs import get_logger, redacted
from compiler.secrets import redact, register

COMMAND_PREFIX = "command:"
_RETRIED_STATUSES = frozenset({408, 429})  # and every 5xx


@dataclass(frozen=True)
class _Target:
    role: str  # "alert" or "status"
    shown: str  # for messages: credentials masked
    url: str | None = None  # without its user:password
    auth: str | None = None
    argv: tuple[str, ...] = ()


class Notifier:
    """The alert and status hooks of a run; either may be None (not configured)."""

    def __init__(
        self,
        *,
        alert: str | None,
        status: str | None,
        timeout: float = 10,
        attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 60,
    ) -> None:
        policy = RetryPolicy(attempts=attempts, max_wait=max_wait, statuses=_RETRIED_STATUSES)
        # Parsed now: a mistyped hook is a usage error at the start of the run,
        # not a warning at its end when the alert was needed.
        self._alert = _parse("alert", alert) if alert is not None else None
        self._status = _parse("status", status) if status is not None else None
        self.timeout = timeout
        self._http = HttpClient(timeout=timeout, policy=policy, sleep=sleep)

    def alert(self, event: Mapping[str, Any]) -> bool:
        """Send an aborted run's event; True when delivered (or no alert hook is set)."""
        return self._send(self._alert, event)

    def status(self, record: Mapping[str, Any]) -> bool:
        """Send the run's final status; True when delivered (or no status hook is set)."""
        return self._send(self._status, record)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, target: _Target | None, payload: Mapping[str, Any]) -> bool:
        if target is None:
            return True
        trace_id = payload.get("trace_id")
        extra = {"trace_id": trace_id if isinstance(trace_id, str) else None}
        try:
            body = json.dumps(redacted(payload), sort_keys=True).encode("utf-8")
            problem = self._deliver(target, body, extra)
        except Exception as err:  # a bug here must not turn a good run into a crash
            problem = f"failed unexpectedly: {type(err).__name__}: {err}"
        if problem is None:
            return True
        get_logger().warning("%s %s: %s", target.role, target.shown, problem, extra=extra)
        return False

    def _deliver(self, target: _Target, body: bytes, extra: Mapping[str, Any]) -> str | None:
        """None when delivered, else why not."""

        def attempt(number: int) -> bool | Failure:
            if target.url is None:
                problem = self._run_command(target, body)
                return True if problem is None else Failure(problem, self._http.backoff(number))
            return self._post(number, target, body)

        def retrying(failure: Failure) -> None:
            problem, wait = failure.problem, failure.wait
            get_logger().info(
                "%s %s: %s; retrying in %g s", target.role, target.shown, problem, wait, extra=extra
            )

        try:
            self._http.retrying(attempt, on_retry=retrying)
        except OutsideError as err:  # attempts used up, or an answer a retry cannot change
            return err.message
        return None

    def _post(self, number: int, target: _Target, body: bytes) -> bool | Failure:
        """True when delivered; a failure to retry; raises when a retry cannot help."""
        assert target.url is not None
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"gitops-compiler/{__version__}",
        }
        if target.auth is not None:
            headers.update(urllib3.util.make_headers(basic_auth=target.auth))
        answer = self._http.attempt(number, Request("POST", target.url, headers, body))
        if isinstance(answer, Failure):
            return answer
        status = answer.status
        if 200 <= status < 300:
            return True
        if 300 <= status < 400:
            location = redact(answer.headers.get("Location", "?"))
            raise OutsideError(f"{status} redirected to {location}")
        raise OutsideError(status_line(answer))

    def _run_command(self, target: _Target, body: bytes) -> str | None:
        env = dict(os.environ, GITOPS_NOTIFY=target.role)
        try:
            ran = proc.run(target.argv, cwd=None, env=env, timeout=self.timeout, stdin=body)
        except OutsideError as err:
            return err.message
        return None if ran.returncode == 0 else proc.failure(ran)


def _parse(role: str, spec: str) -> _Target:
    if spec.startswith(COMMAND_PREFIX):
        try:
            argv = tuple(shlex.split(spec[len(COMMAND_PREFIX) :]))
        except ValueError as err:  # an unclosed quote
            raise UsageError(f"{role} hook {redact(spec)!r}: {err}") from None
        if not argv:
            raise UsageError(f"{role} hook {spec!r}: name a program after {COMMAND_PREFIX}")
        if shutil.which(argv[0]) is None:
            raise UsageError(f"{role} hook {redact(spec)!r}: no such program {argv[0]!r}")
        return _Target(role, f"command {proc.describe(argv)}", argv=argv)
    if spec.lower().startswith(("http://", "https://")):
        try:
            url = urllib3.util.parse_url(spec)
        except LocationParseError:
            url = None
        if url is None or not url.host:
            raise UsageError(f"{role} webhook {redact(spec)!r} is not a valid URL")
        if url.auth:
            register(url.auth.partition(":")[2])  # masked in every message from now on
        shown = f"{url.scheme}://{'***@' if url.auth else ''}{url.netloc}{url.path or ''}"
        # A query often carries a token (?key=...): name the hook without it.
        shown += "?…" if url.query else ""
        return _Target(
            role, f"webhook {redact(shown)}", url=url._replace(auth=None).url, auth=url.auth
        )
    raise UsageError(
        f"{role} hook {redact(spec)!r}: use an http(s):// URL or {COMMAND_PREFIX}<program> [args]"
    )
