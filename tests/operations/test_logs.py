"""Structured logs: JSON lines with the run's context, readable text, nothing secret."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from compiler import secrets
from compiler.operations.logs import LOGGER_NAME, get_logger, setup_logging

TOKEN = "ghp_LogsMustNeverShowThis42"
CONTEXT = {"run_id": "r1", "trace_id": "ms-r1-git-e40", "step": "git", "cluster": "prod-eks-1"}


@pytest.fixture(autouse=True)
def _restore_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """setup_logging changes a process-wide logger: put it back for the other tests."""
    monkeypatch.setattr(secrets, "_known", set())
    logger = logging.getLogger(LOGGER_NAME)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_json_lines_carry_time_level_message_and_context() -> None:
    stream = io.StringIO()
    setup_logging("json", stream=stream)
    log = get_logger()
    log.info("pushed %s", "gitops-compiler/main/all-clusters", extra=CONTEXT)
    log.warning("slow", extra={"trace_id": "ms-r1-dynamodb-e10", "pages": 3, "empty": None})
    log.debug("not shown at INFO")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first.pop("time"))
    message = "pushed gitops-compiler/main/all-clusters"
    assert first == {"level": "info", "message": message, **CONTEXT}
    assert list(first)[:2] == ["level", "message"]  # after time: the order a reader scans in
    second.pop("time")
    # Other extra fields come along; None values are left out.
    assert second == {
        "level": "warning",
        "message": "slow",
        "trace_id": "ms-r1-dynamodb-e10",
        "pages": 3,
    }


def test_json_includes_a_redacted_exception() -> None:
    secrets.register(TOKEN)
    stream = io.StringIO()
    setup_logging("json", stream=stream)
    try:
        raise RuntimeError(f"bad token {TOKEN}")
    except RuntimeError:
        get_logger().exception("push failed")
    entry = json.loads(stream.getvalue())
    assert entry["level"] == "error" and "RuntimeError: bad token ***" in entry["exception"]
    assert TOKEN not in stream.getvalue()


def test_text_is_readable() -> None:
    stream = io.StringIO()
    setup_logging("text", stream=stream)
    log = get_logger()
    log.info("pushed %s", "gitops-compiler/main/all-clusters", extra=CONTEXT)
    log.warning("no trace", extra={"run_id": "r2", "attempt": 2, "note": "two words"})
    log.error("bare")
    first, second, third = stream.getvalue().splitlines()
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d info  \[ms-r1-git-e40\] prod-eks-1: pushed gitops-compiler/main/all-clusters",
        first,
    )
    assert second[9:] == 'warn  [r2] no trace attempt=2 note="two words"'
    assert third[9:] == "error bare"


def test_every_message_and_field_is_redacted() -> None:
    secrets.register(TOKEN)
    for fmt in ("json", "text"):
        stream = io.StringIO()
        setup_logging(fmt, stream=stream)
        get_logger().warning(
            "cloning https://me:hunter22@git.example/r.git with %s",
            TOKEN,
            extra={"cluster": f"c-{TOKEN}", "header": {"Authorization": f"Bearer {TOKEN}"}},
        )
        out = stream.getvalue()
        assert TOKEN not in out and "hunter22" not in out, fmt
        assert "https://***@git.example/r.git" in out and "***" in out


def test_setup_twice_replaces_its_handler_and_leaves_the_root_alone() -> None:
    root_handlers = list(logging.getLogger().handlers)
    first, second = io.StringIO(), io.StringIO()
    setup_logging("text", stream=first)
    setup_logging("json", stream=second, level=logging.DEBUG)
    get_logger().debug("once")
    assert first.getvalue() == ""
    assert [json.loads(line)["message"] for line in second.getvalue().splitlines()] == ["once"]
    # pytest may hang its capture handlers on the logger; ours is there once.
    ours = [h for h in get_logger().handlers if type(h).__module__ == "compiler.operations.logs"]
    assert len(ours) == 1
    assert logging.getLogger().handlers == root_handlers


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format 'xml'"):
        setup_logging("xml")
