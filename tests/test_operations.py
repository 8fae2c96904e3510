"""Trace ids, the audit log, alerts and the status webhook, for whole runs of the CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from compiler.cli import main
from tests.conftest import ROOT
from tests.fake_github import FAKE_REPO, FAKE_TOKEN, FakeGitHub

ARGS = ["--project", str(ROOT), "--source", "snapshot:examples"]


class Hooks:
    """A webhook receiver on 127.0.0.1: records JSON bodies per path, answers `status`."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        self.status = 200
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                hooks.received.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(hooks.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self, path: str) -> list[dict]:
        return [body for p, body in self.received if p == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    receiver = Hooks()
    yield receiver
    receiver.stop()


def test_a_full_publish_leaves_one_audit_line_per_step_with_trace_ids(
    remote: Path,
    tmp_path: Path,
    fake_github: FakeGitHub,
    hooks: Hooks,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", fake_github.url)
    audit = tmp_path / "audit.jsonl"
    code = main(
        ["--audit-log", str(audit), "--log-format", "json", "--status-webhook",
         f"{hooks.url}/status", "--alert", f"{hooks.url}/alert",
         "publish", "--all", "--repo", str(remote), "--forge-repo", FAKE_REPO,
         "--run-id", "r42", *ARGS]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [line["step"] for line in lines] == ["dynamodb", "policy", "emit", "git", "argocd"]
    for line in lines:
        assert line["run_id"] == "r42" and line["outcome"] == "ok"
        assert (
            line["trace_id"]
            == {
                "dynamodb": "ms-r42-dynamodb-e10",
                "policy": "ms-r42-policy-e20",
                "emit": "ms-r42-emit-e30",
                "git": "ms-r42-git-e40",
                "argocd": "ms-r42-argocd-e50",
            }[line["step"]]
        )
        assert line["duration"] >= 0 and line["time"].endswith("Z")
    by_step = {line["step"]: line for line in lines}
    assert "defaults@2" in by_step["dynamodb"]["outputs"]["layers"]  # inputs by version
    assert by_step["emit"]["outputs"]["tree"].startswith("sha256:")  # outputs by hash
    assert by_step["argocd"]["outputs"]["pull_request"].endswith("/pull/1")
    # The step log lines on stderr, as JSON, carry the same trace ids.
    logged = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    assert {entry["trace_id"] for entry in logged} >= {"ms-r42-git-e40", "ms-r42-argocd-e50"}
    # The status webhook got the final status; no alert for a run that succeeded.
    [status] = hooks.bodies("/status")
    assert status["status"] == "success" and status["run_id"] == "r42"
    assert status["pull_request"].endswith("/pull/1") and status["trace_id"] == "ms-r42-git-e40"
    assert status["clusters"] == ["dev-k3s", "prod-eks-1", "test-k3s"]
    assert hooks.bodies("/alert") == []


def test_an_aborted_run_alerts_and_reports_failed(
    project_dir: Path, remote: Path, hooks: Hooks, capsys: pytest.CaptureFixture[str]
) -> None:
    (project_dir / "overlays/prod/30-bad.yaml").write_text(
        "roles:\n  read-only:\n    rules:\n      - {apiGroups: [''], resources: ['*'], verbs: [get]}\n"
    )
    code = main(
        ["--alert", f"{hooks.url}/alert", "--status-webhook", f"{hooks.url}/status",
         "publish", "--all", "--repo", str(remote), "--forge", "none", "--project",
         str(project_dir), "--source", "snapshot:examples"]
    )  # fmt: skip
    assert code == 1
    [alert] = hooks.bodies("/alert")
    assert alert["status"] == "failed" and alert["exit_code"] == 1 and alert["command"] == "publish"
    [status] = hooks.bodies("/status")
    assert status["status"] == "failed"


def test_failing_webhooks_never_change_the_exit_code(
    hooks: Hooks, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hooks.status = 500
    code = main(
        ["--status-webhook", f"{hooks.url}/status", "compile", "--all", "--out",
         str(tmp_path / "out"), *ARGS]
    )  # fmt: skip
    assert code == 0
    assert len(hooks.bodies("/status")) > 1  # retried, then given up on
    assert "status" in capsys.readouterr().err  # and said so


def test_an_unwritable_audit_log_stops_the_run_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        ["--audit-log", str(tmp_path / "missing-dir/audit.jsonl"), "compile", "--all",
         "--out", str(out), *ARGS]
    )  # fmt: skip
    assert code == 2 and not out.exists()
    assert "missing-dir" in capsys.readouterr().err
