"""`/readyz`: DynamoDB, the git remote and cue reachable, checked at most every N seconds.

Checks are cached so a probe every second costs one real check per `max_age`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from compiler import proc
from compiler.errors import CompilerError, OutsideError
from compiler.policy.cue import find_cue
from compiler.policy.cue_binary import supported_cue_version
from compiler.publishing.gitrepo import git_environment, split_credentials

Check = Callable[[], None]  # raises CompilerError (or OSError) when not ready


@dataclass
class Readiness:
    checks: Mapping[str, Check]
    max_age: float
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _at: float = -1e18
    _results: dict[str, str] = field(default_factory=dict)

    def report(self) -> tuple[bool, dict[str, str]]:
        """(ready, name -> "ok" or why not), from a cache at most `max_age` old."""
        with self._lock:
            if time.monotonic() - self._at >= self.max_age:
                self._results = {name: _outcome(check) for name, check in self.checks.items()}
                self._at = time.monotonic()
            results = dict(self._results)
        return all(v == "ok" for v in results.values()), results


def _outcome(check: Check) -> str:
    try:
        check()
    except (CompilerError, OSError) as err:
        return str(err)
    return "ok"


def dynamodb_check(client: Any, table: str) -> Check:
    def check() -> None:
        try:
            client.describe_table(TableName=table)
        except (ClientError, BotoCoreError) as err:
            raise OutsideError(f"DynamoDB table {table}: {err}") from None

    return check


def git_check(repo: str, base: str) -> Check:
    def check() -> None:
        url = split_credentials(repo)[0]
        ran = proc.run(
            ["git", "ls-remote", "--exit-code", "--heads", "--", url, base],
            cwd=None,
            env=git_environment(os.environ, repo),
            timeout=20,
        )
        if ran.returncode != 0:
            raise OutsideError(f"git remote {url}: {base} not readable ({proc.failure(ran)})")

    return check


def cue_check(flag: str | None) -> Check:
    def check() -> None:
        # Found, runnable and new enough (its answer is cached by the binary's identity).
        supported_cue_version(find_cue(flag, os.environ))

    return check
