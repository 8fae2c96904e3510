"""What publish prints names the change in the forge's own words (issue 22): GitHub's
`pull request #1`, GitLab's `merge request !1`, in the text output, `--format json`,
the audit line of the step and the final status; a dry run words it from `--forge`."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from compiler.cli import main
from tests import fake_github, fake_gitlab
from tests.conftest import ROOT
from tests.fake_github import FakeGitHub
from tests.fake_gitlab import FakeGitLab
from tests.publishing.test_forge_gitlab import CI_VARIABLES


@dataclass(frozen=True)
class Words:
    forge: str
    name: str  # "pull request #1"
    kind: str
    reference: str
    other: str  # the other forge's noun, never printed


CASES = [
    Words("github", "pull request #1", "pull request", "#1", "merge request"),
    Words("gitlab", "merge request !1", "merge request", "!1", "pull request"),
]


@pytest.fixture(params=CASES, ids=lambda words: words.forge)
def words(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Words]:
    """The forge's fake on 127.0.0.1, and the environment publish reads for it."""
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    case: Words = request.param
    if case.forge == "github":
        with FakeGitHub() as github:
            monkeypatch.setenv("GITHUB_TOKEN", fake_github.FAKE_TOKEN)
            monkeypatch.setenv("GITHUB_API_URL", github.url)
            monkeypatch.setenv("FORGE_REPO", fake_github.FAKE_REPO)
            yield case
    else:
        with FakeGitLab() as gitlab:
            monkeypatch.setenv("GITLAB_TOKEN", fake_gitlab.FAKE_TOKEN)
            monkeypatch.setenv("CI_API_V4_URL", gitlab.api_url)
            monkeypatch.setenv("FORGE_REPO", fake_gitlab.FAKE_PROJECT)
            yield case


def _publish(remote: Path, words: Words, tmp_path: Path, *extra: str) -> int:
    status = tmp_path / "status.json"
    keep = "import sys; open(sys.argv[1], 'wb').write(sys.stdin.buffer.read())"
    hook = f'command:{sys.executable} -c "{keep}" {status}'
    return main(
        ["--status-webhook", hook, "--audit-log", str(tmp_path / "audit.jsonl"),
         "publish", "--from", str(ROOT / "golden"), "--all", "--repo", str(remote),
         "--forge", words.forge, "--forge-repo", os.environ["FORGE_REPO"], "--run-id", "w1",
         *extra]
    )  # fmt: skip


def test_text_json_audit_and_status_use_the_forges_words(
    remote: Path, tmp_path: Path, words: Words, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _publish(remote, words, tmp_path) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"; {words.name} created: http" in out and words.other not in out
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["pull_request_name"] == words.name and status["pull_request"].startswith("http")
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    [opened] = [line for line in audit if line["step"] == "argocd"]
    assert opened["outputs"]["pull_request_name"] == words.name

    assert _publish(remote, words, tmp_path, "--format", "json") == 0
    record = json.loads(capsys.readouterr().out)
    pull = record["pull_request"]
    assert (pull["number"], pull["action"]) == (1, "unchanged")
    assert (pull["kind"], pull["reference"]) == (words.kind, words.reference)


def test_a_dry_run_words_the_title_and_body_as_the_forge(
    remote: Path, tmp_path: Path, words: Words, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _publish(remote, words, tmp_path, "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"{words.kind} title: Cluster config: " in out and f"\n{words.kind} body:\n" in out
    assert words.other not in out
