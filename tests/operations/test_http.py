"""The shared HTTP retry loop against a scripted server on 127.0.0.1, and its Retry-After parser."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from compiler.errors import EXIT_OUTSIDE
from compiler.operations.http import (
    Failure,
    GaveUp,
    HttpClient,
    RateLimit,
    Request,
    RetryPolicy,
    connection_problem,
    retry_after,
)
from tests.loopback import LoopbackServer

NOW = 1_445_412_450.0  # 30 s before 2015-10-21 07:28:00 GMT, RFC 9110's example date
DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


class ScriptedServer(LoopbackServer):
    """Answers each request with the next (status, headers) of `answers`, then 200."""

    def __init__(self, *answers: tuple[int, dict[str, str]]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.requests: list[tuple[str, str, bytes]] = []
        self._lock = threading.Lock()

    def __enter__(self) -> ScriptedServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server._lock:
                    server.requests.append((self.command, self.path, body))
                    status, headers = server.answers.pop(0) if server.answers else (200, {})
                payload = f"answer {len(server.requests)}".encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._listen(Handler)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def sleeps() -> list[float]:
    return []


Make = Callable[..., HttpClient]


@pytest.fixture
def make(sleeps: list[float]) -> Iterator[Make]:
    """Clients with the given policy whose waits are recorded, never slept."""
    made: list[HttpClient] = []

    def build(**policy: Any) -> HttpClient:
        made.append(
            HttpClient(policy=RetryPolicy(**policy), sleep=sleeps.append, clock=lambda: NOW)
        )
        return made[-1]

    yield build
    for each in made:
        each.close()


# -- Retry-After ---------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [("7", 7.0), (" 120 ", 120.0), ("0", 0.0)])
def test_retry_after_in_seconds(value: str, seconds: float) -> None:
    assert retry_after(value, NOW) == seconds


@pytest.mark.parametrize(
    "value",
    [DATE, "Wednesday, 21-Oct-15 07:28:00 GMT", "Wed Oct 21 07:28:00 2015"],  # RFC 9110's three
)
def test_retry_after_as_an_http_date(value: str) -> None:
    assert retry_after(value, NOW) == 30.0
    assert retry_after(value, NOW + 3600) == 0.0  # already past: retry at once


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "inf", "nan", "Wed, 99 Foo 2015"])
def test_an_unreadable_retry_after_is_none(value: str | None) -> None:
    assert retry_after(value, NOW) is None


# -- the loop ----------------------------------------------------------------------------


def test_a_server_error_is_retried_then_succeeds(make: Make, sleeps: list[float]) -> None:
    with ScriptedServer((503, {}), (502, {})) as server:
        response = make().request(Request("POST", server.url + "/x", body=b"{}"))
    assert (response.status, response.data) == (200, b"answer 3")
    assert [r[:2] for r in server.requests] == [("POST", "/x")] * 3
    assert {r[2] for r in server.requests} == {b"{}"}
    assert sleeps == [1.0, 2.0]


def test_the_servers_retry_after_is_what_we_wait(make: Make, sleeps: list[float]) -> None:
    with ScriptedServer((503, {"Retry-After": "7"}), (429, {"Retry-After": DATE})) as server:
        response = make(statuses=frozenset({429})).request(Request("GET", server.url))
    assert response.status == 200
    assert sleeps == [7.0, 30.0]


def test_attempts_are_bounded(make: Make, sleeps: list[float]) -> None:
    with ScriptedServer(*[(500, {})] * 10) as server, pytest.raises(GaveUp) as raised:
        make(attempts=3).request(Request("GET", server.url))
    assert len(server.requests) == 3 and sleeps == [1.0, 2.0]
    assert raised.value.exit_code == EXIT_OUTSIDE
    assert str(raised.value) == "500 Internal Server Error (answer 3); gave up after 3 attempts"


def test_a_wait_beyond_max_wait_ends_the_attempts(make: Make, sleeps: list[float]) -> None:
    with ScriptedServer((503, {"Retry-After": "3600"})) as server, pytest.raises(GaveUp) as raised:
        make(max_wait=30).request(Request("GET", server.url))
    assert len(server.requests) == 1 and sleeps == []
    assert raised.value.asked == 3600.0
    assert str(raised.value).endswith("asked to wait 3600 s, longer than 30 s")


def test_a_refusal_a_retry_cannot_change_is_handed_back(make: Make, sleeps: list[float]) -> None:
    with ScriptedServer((404, {}), (301, {"Location": "/elsewhere"})) as server:
        http = make()
        assert http.request(Request("GET", server.url)).status == 404
        assert http.request(Request("GET", server.url)).status == 301  # not followed
    assert len(server.requests) == 2 and sleeps == []


def test_a_rate_limit_waits_until_the_reset(make: Make, sleeps: list[float]) -> None:
    gitlab = RateLimit(remaining_header="RateLimit-Remaining", reset_header="RateLimit-Reset")
    spent = {"RateLimit-Remaining": "0", "RateLimit-Reset": str(int(NOW) + 10)}
    with ScriptedServer((429, spent), (429, {})) as server:
        assert make(rate_limit=gitlab).request(Request("GET", server.url)).status == 200
    assert sleeps == [11.0, 60.0]  # the reset plus a second of clock skew; then a minute


def test_a_connection_refused_on_a_closed_port_is_described(
    make: Make, sleeps: list[float]
) -> None:
    with socket.socket() as reserved:  # bound, never listening: every connect is refused
        reserved.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{reserved.getsockname()[1]}"
        http = make(attempts=2)
        with pytest.raises(GaveUp) as raised:
            http.request(Request("GET", url))
        with pytest.raises(GaveUp) as named:  # for a message that does not say where already
            http.request(
                Request("GET", url),
                describe_error=lambda err: connection_problem(err, http.timeout, url),
            )
        answer = http.attempt(1, Request("GET", url))
    assert str(raised.value) == "cannot connect: Connection refused; gave up after 2 attempts"
    assert str(named.value).startswith(f"cannot connect to {url}: Connection refused;")
    assert sleeps == [1.0, 1.0]
    assert isinstance(answer, Failure) and not answer.unknown  # the request never went out


def test_an_unknown_outcome_is_recovered_before_it_is_repeated(
    make: Make, sleeps: list[float]
) -> None:
    with ScriptedServer((502, {})) as server:
        http = make()
        outcome = http.retrying(
            lambda number: http.attempt(number, Request("POST", server.url)),
            recover=lambda failure: f"found after: {failure.problem}",
        )
    assert outcome == "found after: 502 Bad Gateway (answer 1)"
    assert len(server.requests) == 1 and sleeps == []


def test_jitter_draws_part_of_the_backoff(sleeps: list[float]) -> None:
    http = HttpClient(policy=RetryPolicy(jitter=0.5, max_wait=5), draw=lambda: 0.5)
    assert [http.backoff(n) for n in (1, 2, 3, 4)] == [0.75, 1.5, 3.0, 3.75]
    http.close()
    with pytest.raises(ValueError, match="attempts must be at least 1"):
        RetryPolicy(attempts=0)


def test_the_scripted_server_stops_with_its_block() -> None:
    with ScriptedServer() as server:
        port = server.port
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))
