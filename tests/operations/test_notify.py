"""Alert and status hooks against a real HTTP server on 127.0.0.1, and as commands."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import shlex
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from compiler import __version__, secrets
from compiler.errors import UsageError
from compiler.operations.logs import LOGGER_NAME
from compiler.operations.notify import Notifier

STATUS = {
    "outcome": "success",
    "clusters": ["dev-1", "prod-eks-1"],
    "pr_url": "https://github.com/acme/gitops/pull/7",
    "trace_id": "ms-r1-git-e40",
}


@dataclass
class Received:
    path: str
    headers: Message  # case-insensitive, as HTTP headers are
    body: Any


@dataclass
class Hook:
    """What the server answers (a queue, then `default`) and what it received."""

    url: str
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    default: tuple[int, dict[str, str]] = (200, {})
    received: list[Received] = field(default_factory=list)
    stall: bool = False
    release: threading.Event = field(default_factory=threading.Event)


class _Server(ThreadingHTTPServer):
    hook: Hook


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        hook = self.server.hook
        body = self.rfile.read(int(self.headers["Content-Length"]))
        hook.received.append(Received(self.path, self.headers, json.loads(body)))
        if hook.stall:
            hook.release.wait(10)
        status, headers = hook.answers.pop(0) if hook.answers else hook.default
        payload = b"" if status < 300 else b"nope"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # a client that timed out has gone
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.hook = Hook(f"http://127.0.0.1:{server.server_address[1]}")
    # A short poll interval: shutdown() at teardown returns at once, not after 0.5 s.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server.hook
    server.hook.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def _own_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "_known", set())


@pytest.fixture
def sleeps() -> list[float]:
    return []


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER_NAME and r.levelno == logging.WARNING
    ]


def test_alert_and_status_are_posted_as_json(hook: Hook, sleeps: list[float]) -> None:
    event = {"reason": "validation failed", "violations": 3, "trace_id": "ms-r1-policy-e20"}
    with Notifier(alert=hook.url + "/alert", status=hook.url + "/status", sleep=sleeps.append) as n:
        assert n.alert(event) is True
        assert n.status(STATUS) is True
    alert, status = hook.received
    assert (alert.path, alert.body) == ("/alert", event)
    assert (status.path, status.body) == ("/status", STATUS)
    assert alert.headers["Content-Type"] == "application/json"
    assert alert.headers["User-Agent"] == f"gitops-compiler/{__version__}"
    assert "Authorization" not in alert.headers
    assert sleeps == []


def test_no_hook_configured_sends_nothing_and_succeeds() -> None:
    with Notifier(alert=None, status=None) as n:
        assert n.alert({"x": 1}) is True and n.status(STATUS) is True


def test_a_server_error_is_retried_and_then_delivered(hook: Hook, sleeps: list[float]) -> None:
    hook.answers = [(500, {}), (502, {})]
    with Notifier(alert=None, status=hook.url, sleep=sleeps.append) as n:
        assert n.status(STATUS) is True
    assert len(hook.received) == 3 and sleeps == [1.0, 2.0]


def test_always_failing_gives_up_after_the_attempts_without_raising(
    hook: Hook, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    hook.default = (500, {})
    with Notifier(alert=hook.url, status=None, sleep=sleeps.append) as n:
        assert n.alert({"trace_id": "ms-r1-git-e40"}) is False
    assert len(hook.received) == 4 and sleeps == [1.0, 2.0, 4.0]
    (warning,) = warnings(caplog)
    assert warning == (
        f"alert webhook {hook.url}: 500 Internal Server Error (nope); gave up after 4 attempts"
    )
    assert [r.trace_id for r in caplog.records if r.levelno == logging.WARNING] == [  # type: ignore[attr-defined]
        "ms-r1-git-e40"
    ]


def test_a_client_error_is_not_retried(
    hook: Hook, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    hook.default = (404, {})
    with Notifier(alert=None, status=hook.url + "/nowhere", sleep=sleeps.append) as n:
        assert n.status(STATUS) is False
    assert len(hook.received) == 1 and sleeps == []
    assert warnings(caplog) == [f"status webhook {hook.url}/nowhere: 404 Not Found (nope)"]


def test_a_refused_connection_returns_false(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with Notifier(
        alert=None, status=f"http://127.0.0.1:{port}/", attempts=3, sleep=sleeps.append
    ) as n:
        assert n.status(STATUS) is False
    assert sleeps == [1.0, 2.0]
    (warning,) = warnings(caplog)
    assert "cannot connect: Connection refused; gave up after 3 attempts" in warning


def test_a_stalled_server_times_out(hook: Hook, sleeps: list[float]) -> None:
    hook.stall = True
    with Notifier(alert=hook.url, status=None, timeout=0.2, attempts=2, sleep=sleeps.append) as n:
        assert n.alert({"x": 1}) is False
    assert sleeps == [1.0]


def test_429_retry_after_is_what_we_wait(hook: Hook, sleeps: list[float]) -> None:
    hook.answers = [
        (429, {"Retry-After": "7"}),
        (503, {"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}),
    ]
    with Notifier(alert=None, status=hook.url, sleep=sleeps.append) as n:
        assert n.status(STATUS) is True
    assert sleeps == [7.0, 0.0]  # a date already past: retry at once


def test_a_retry_after_beyond_the_cap_ends_the_attempts(
    hook: Hook, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    hook.default = (429, {"Retry-After": "3600"})
    with Notifier(alert=None, status=hook.url, sleep=sleeps.append, max_wait=30) as n:
        assert n.status(STATUS) is False
    assert len(hook.received) == 1 and sleeps == []
    assert warnings(caplog)[0].endswith("asked to wait 3600 s, longer than 30 s")


def test_credentials_in_the_url_become_basic_auth_and_are_masked(
    hook: Hook, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    hook.default = (500, {})
    url = hook.url.replace("http://", "http://portal:s3cretPassw0rd@") + "/hook?key=t0kenInQuery"
    with Notifier(alert=None, status=url, attempts=2, sleep=sleeps.append) as n:
        assert n.status(STATUS) is False
    expected = "Basic " + base64.b64encode(b"portal:s3cretPassw0rd").decode()
    assert hook.received[0].headers["Authorization"] == expected
    assert hook.received[0].path == "/hook?key=t0kenInQuery"
    (warning,) = warnings(caplog)
    assert warning.startswith(f"status webhook {hook.url.replace('//', '//***@')}/hook?…: 500 ")
    assert "s3cretPassw0rd" not in caplog.text and "t0kenInQuery" not in caplog.text
    assert secrets.redact("said s3cretPassw0rd") == "said ***"


def test_secrets_in_the_payload_are_masked(hook: Hook) -> None:
    secrets.register("ghp_PayloadTokenNeverSent1")
    with Notifier(alert=hook.url, status=None) as n:
        assert n.alert({"error": "push with ghp_PayloadTokenNeverSent1 refused"}) is True
    assert hook.received[0].body == {"error": "push with *** refused"}


def test_a_command_gets_the_json_on_stdin(tmp_path: Path, sleeps: list[float]) -> None:
    script = tmp_path / "hook.py"
    script.write_text(
        "import os, sys\n"
        "with open(sys.argv[1], 'ab') as out:\n"
        "    out.write(os.environ['GITOPS_NOTIFY'].encode() + b' ' + sys.stdin.buffer.read() + b'\\n')\n"
    )
    out = tmp_path / "got"
    command = "command:" + shlex.join([sys.executable, str(script), str(out)])
    with Notifier(alert=command, status=command, sleep=sleeps.append) as n:
        assert n.alert({"reason": "dynamodb unreachable"}) is True
        assert n.status(STATUS) is True
    alert, status = out.read_text().splitlines()
    assert alert == 'alert {"reason": "dynamodb unreachable"}'
    assert status.startswith("status ") and json.loads(status[7:]) == STATUS


def test_a_failing_command_returns_false(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    failing = "command:" + shlex.join([sys.executable, "-c", "import sys; sys.exit('no pager')"])
    with Notifier(alert=failing, status=None, attempts=2, sleep=sleeps.append) as n:
        assert n.alert({"x": 1}) is False
    assert sleeps == [1.0]
    (warning,) = warnings(caplog)
    assert warning.startswith("alert command `") and "exited 1\n    no pager" in warning
    assert warning.endswith("gave up after 2 attempts")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("ftp://host/x", "use an http(s):// URL or command:<program> [args]"),
        ("", "use an http(s):// URL"),
        ("hooks.example.com/x", "use an http(s):// URL"),
        ("https://", "is not a valid URL"),
        ("command:", "name a program after command:"),
        ("command:notify 'unclosed", "No closing quotation"),
        ("command:no-such-program-anywhere --x", "no such program 'no-such-program-anywhere'"),
    ],
)
def test_a_bad_target_is_a_usage_error_at_construction(target: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        Notifier(alert=target, status=None)
    with pytest.raises(UsageError, match=r"^status "):
        Notifier(alert=None, status=target)
