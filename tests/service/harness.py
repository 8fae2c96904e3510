"""`serve` as a real process against moto's server and a bare repository, for tests.

Every wait is bounded; every process a test starts is stopped by the test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import ROOT
from tests.gitrepos import git

TOKEN = "test-trigger-token"
SECRET = "test-trigger-secret"


class Served:
    """One `serve` process: its output lines, its address, requests to it."""

    def __init__(self, argv: Sequence[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "compiler", *argv],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
        )  # fmt: skip
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        self._pumping = threading.Thread(target=self._pump, daemon=True)
        self._pumping.start()
        found = self.wait_for(r"listening on http://([0-9.]+:[0-9]+)", 60)
        self.address = found.group(1)

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            self._new.put(line)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first line (seen or to come) matching `pattern`."""
        deadline = time.monotonic() + timeout
        for line in list(self.lines):
            if match := re.search(pattern, line):
                return match
        while time.monotonic() < deadline:
            try:
                line = self._new.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line like {pattern!r} in {timeout} s:\n" + "\n".join(self.lines))

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        req = urllib.request.Request(
            f"http://{self.address}{path}", data=body if method == "POST" else None,
            method=method, headers=headers or {},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=30) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def metric(self, name: str, **labels: str) -> float:
        text = self.request("GET", "/metrics")[1].decode()
        shown = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        wanted = f"{name}{{{shown}}}" if labels else name
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return 0.0

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise

    def close(self) -> None:
        """Killed if still running; its output pipe closed."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self._pumping.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def environment(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "GITOPS_TRIGGER_TOKEN": TOKEN,
        "GITOPS_TRIGGER_SECRET": SECRET,
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@contextmanager
def serving(argv: Sequence[str], env: dict[str, str] | None = None) -> Iterator[Served]:
    served = Served(argv, env or environment())
    try:
        yield served
    finally:
        served.close()


def branches(remote: Path) -> dict[str, str]:
    listing = git(f"--git-dir={remote}", "for-each-ref", "--format=%(refname:short) %(objectname)")
    return dict(line.split() for line in listing.splitlines())


def commits_on(remote: Path, branch: str) -> int:
    return int(git(f"--git-dir={remote}", "rev-list", "--count", f"main..{branch}"))


def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout} s: {what}")


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()
