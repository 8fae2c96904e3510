"""The one HTTP retry loop: every outside HTTP service (forges, Argo CD, webhooks) goes through it.

Plain urllib3 with retries=False and redirect=False: every retry and redirect
decision is ours, and the same for every client.

- An answer in the 2xx range, or one that a retry cannot change (401, 404,
  a redirect, ...), is handed back for the client to read or to explain.
- Every 5xx and the statuses a client names (`RetryPolicy.statuses`, e.g.
  408 and 429 for a webhook) are retried after the server's Retry-After
  (delta-seconds or an HTTP date, RFC 9110 §10.2.3), else after an
  exponential back-off: `backoff`, twice that, ... capped by `max_wait`.
- A rate limit (`RateLimit`: which statuses can mean one, which headers say
  the quota is spent and when it returns) waits Retry-After, else until the
  reset, else `unnamed_wait`.
- A refused, lost or timed-out connection is retried with the back-off.
- A wait the server asks for beyond `max_wait` ends the attempts at once:
  a caller should say when to come back rather than hang.

Every call makes at most `attempts` requests; `GaveUp` (exit 3) says why it
stopped. A request whose outcome is unknown (a 5xx, or the connection lost
after it went out) is marked so: a client whose call is not idempotent passes
`recover` to look for its effect before it is repeated.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import TypeVar

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from compiler.errors import OutsideError
from compiler.secrets import redact

Response = urllib3.BaseHTTPResponse
Sleep = Callable[[float], None]
Clock = Callable[[], float]  # epoch seconds, as HTTP dates and rate-limit resets count
T = TypeVar("T")

_NUMBER = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_SHOWN_BYTES = 200


def _is_429(response: Response) -> bool:
    return response.status == 429


@dataclass(frozen=True)
class RateLimit:
    """How a service says "slow down", for the statuses that can mean it.

    GitHub: 403 or 429, `x-ratelimit-remaining: 0` and `x-ratelimit-reset`;
    GitLab: 429, `RateLimit-Remaining` and `RateLimit-Reset`. Both send the
    reset as epoch seconds. A status here that carries no wait and that
    `says_limited` does not recognise is not retried (GitHub's 403 is also
    "forbidden").
    """

    statuses: frozenset[int] = frozenset({429})
    remaining_header: str | None = None  # its value "0" means the reset applies
    reset_header: str | None = None  # epoch seconds when the quota returns
    reset_margin: float = 1.0  # our clock and the server's may differ by a little
    unnamed_wait: float = 60.0  # for a rate limit that names no time
    says_limited: Callable[[Response], bool] = _is_429


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long one client retries; the module docstring says what."""

    attempts: int = 4
    backoff: float = 1.0  # the first back-off; doubled at each attempt, capped by max_wait
    max_wait: float = 60.0
    # A fraction of each back-off drawn at random, so that many processes that
    # failed together (the shards of one CI run) do not all come back together.
    jitter: float = 0.0
    statuses: frozenset[int] = frozenset()  # retried besides every 5xx
    rate_limit: RateLimit | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class Failure:
    """One attempt that may succeed if repeated."""

    problem: str  # in words, for the message when the attempts end
    wait: float  # before the next attempt
    unknown: bool = False  # the request may have been carried out anyway


class GaveUp(OutsideError):
    """The attempts ended: all were used, or the server asked for a wait beyond `max_wait`."""

    def __init__(self, failure: Failure, attempts: int, max_wait: float) -> None:
        self.problem = failure.problem
        self.attempts = attempts
        self.asked = failure.wait if failure.wait > max_wait else None
        if self.asked is not None:
            super().__init__(
                f"{failure.problem}; asked to wait {self.asked:.0f} s, longer than {max_wait:g} s"
            )
        else:
            super().__init__(f"{failure.problem}; gave up after {attempts} attempts")


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP date
    (RFC 9110 §10.2.3); a date already past is 0. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if _NUMBER.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # asctime or "-0000": every HTTP date is in GMT
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - now, 0.0)


def epoch_seconds(value: str | None) -> float | None:
    """A non-negative number of seconds in a header (a reset time); None otherwise."""
    if value is None or not _NUMBER.fullmatch(value.strip()):
        return None
    return float(value)


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


class HttpClient:
    """A connection pool and the retry loop above; `sleep`, `clock` and `draw`
    (a random number in [0, 1) for the jitter) are injectable for tests."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        policy: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.time,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.clock = clock
        self._draw = draw
        self._pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False
        )

    def close(self) -> None:
        self._pool.clear()

    def request(
        self,
        request: Request,
        *,
        describe: Callable[[Response], str] | None = None,
        describe_error: Callable[[HTTPError], str] | None = None,
        on_retry: Callable[[Failure], None] | None = None,
    ) -> Response:
        """The first answer that is not retried (a 2xx or a refusal for the caller
        to explain); raises `GaveUp`."""
        return self.retrying(
            lambda number: self.attempt(number, request, describe, describe_error),
            on_retry=on_retry,
        )

    def retrying(
        self,
        attempt: Callable[[int], T | Failure],
        *,
        recover: Callable[[Failure], T | None] | None = None,
        on_retry: Callable[[Failure], None] | None = None,
    ) -> T:
        """`attempt(1)`, `attempt(2)`, ... until one returns something other than a
        `Failure`. Before a failure whose outcome is unknown is repeated, `recover`
        may find what it did; what it finds (not None) is the result."""
        for number in range(1, self.policy.attempts + 1):
            outcome = attempt(number)
            if not isinstance(outcome, Failure):
                return outcome
            if outcome.wait > self.policy.max_wait:
                raise GaveUp(outcome, number, self.policy.max_wait)
            if recover is not None and outcome.unknown:
                found = recover(outcome)
                if found is not None:
                    return found
            if number == self.policy.attempts:
                raise GaveUp(outcome, number, self.policy.max_wait)
            if on_retry is not None:
                on_retry(outcome)
            self.sleep(outcome.wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def attempt(
        self,
        number: int,
        request: Request,
        describe: Callable[[Response], str] | None = None,
        describe_error: Callable[[HTTPError], str] | None = None,
    ) -> Response | Failure:
        """One request: the answer, or a `Failure` when the policy retries it."""
        try:
            response = self._pool.request(
                request.method,
                request.url,
                body=request.body,
                headers=dict(request.headers),
                retries=False,
                redirect=False,
            )
        except HTTPError as err:
            problem = (
                describe_error(err) if describe_error else connection_problem(err, self.timeout)
            )
            # A refused or timed-out connect (urllib3's NewConnectionError is a
            # ConnectTimeoutError) never sent the request; a later failure may have.
            unknown = not isinstance(err, ConnectTimeoutError)
            return Failure(problem, self.backoff(number), unknown)
        if 200 <= response.status < 300:
            return response
        wait = self.wait_before_retry(response, number)
        if wait is None:
            return response
        problem = describe(response) if describe else status_line(response)
        return Failure(problem, wait, response.status >= 500)

    def wait_before_retry(self, response: Response, number: int) -> float | None:
        """Seconds to wait before attempt `number + 1`; None when retrying cannot help."""
        status, headers = response.status, response.headers
        limit = self.policy.rate_limit
        if limit is not None and status in limit.statuses:
            return self._rate_limit_wait(response, limit)
        if status >= 500 or status in self.policy.statuses:
            asked = retry_after(headers.get("retry-after"), self.clock())
            return asked if asked is not None else self.backoff(number)
        return None

    def backoff(self, number: int) -> float:
        """The wait after failed attempt `number` when the server names none."""
        wait = min(self.policy.backoff * 2.0 ** (number - 1), self.policy.max_wait)
        return wait * (1 - self.policy.jitter * self._draw()) if self.policy.jitter else wait

    def _rate_limit_wait(self, response: Response, limit: RateLimit) -> float | None:
        headers = response.headers
        asked = retry_after(headers.get("retry-after"), self.clock())
        if asked is not None:
            return asked
        if limit.remaining_header and headers.get(limit.remaining_header) == "0":
            reset = epoch_seconds(headers.get(limit.reset_header)) if limit.reset_header else None
            if reset is not None:
                return max(reset - self.clock(), 0.0) + limit.reset_margin
            return limit.unnamed_wait
        return limit.unnamed_wait if limit.says_limited(response) else None


def status_line(response: Response) -> str:
    """ "503 Service Unavailable" and the start of what the server said, redacted."""
    said = redact(response.data[:_SHOWN_BYTES].decode("utf-8", "replace")).strip()
    line = f"{response.status} {response.reason or ''}".strip()
    return line + (f" ({said})" if said else "")
