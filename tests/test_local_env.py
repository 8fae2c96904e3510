"""`local up/down/status/env` (issue 17): moto's server in the background, found by the
project's commands without exports, its data kept on disk between runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.localenv import read_state
from compiler.project import load_project


@pytest.fixture
def local(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(project_dir)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)  # the local server needs no credentials from the caller
    yield project_dir
    main(["local", "down"])  # stops the server this test started, whatever happened
    state = read_state(load_project(project_dir))
    if state is not None:  # `down` failed: stop it anyway, then fail
        os.kill(state.pid, signal.SIGTERM)
    assert state is None


def test_up_then_commands_without_exports_then_down_keeps_the_data(
    local: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["local", "up"]) == 0
    out = capsys.readouterr().out
    assert "local DynamoDB at http://127.0.0.1:" in out and "loaded from" in out
    # No --endpoint-url, no AWS_ENDPOINT_URL_DYNAMODB: the project records the endpoint.
    assert main(["config", "history", "--layer", "cluster/dev-k3s"]) == 0
    assert main(["config", "retire", "--layer", "cluster/test-k3s", "-m", "gone"]) == 0
    assert main(["local", "down"]) == 0
    assert "saved in" in capsys.readouterr().out
    assert main(["local", "status"]) == 0
    assert "local DynamoDB: stopped" in capsys.readouterr().out

    assert main(["local", "up"]) == 0  # a new server, seeded from the saved data
    capsys.readouterr()
    assert main(["config", "history", "--layer", "cluster/test-k3s"]) == 0
    assert "gone (retired)" in capsys.readouterr().out
    assert main(["local", "env"]) == 0
    assert "export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:" in capsys.readouterr().out


def test_down_and_up_keep_the_items_that_are_not_versions(
    local: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A last known good, an incident and a proposal (what `watch` and `config put` under
    review write) survive `local down` and `local up`; before, `down` refused the lkg#
    item as a malformed layer and left the server running, and lost the proposal."""
    from compiler.localdb import LOCAL_CREDENTIALS
    from compiler.sources.dynamodb import DynamoDBStore

    assert main(["local", "up"]) == 0
    project = load_project(local)
    state = read_state(project)
    assert state is not None

    def store() -> DynamoDBStore:
        current = read_state(project)
        assert current is not None
        return DynamoDBStore(project.table, region=project.region, endpoint_url=current.endpoint)

    others = [
        {"pk": {"S": "lkg#dev-k3s"}, "sk": {"S": "v#0000000001"}, "version": {"N": "1"},
         "revision": {"S": "abc123"}, "lock": {"M": {"cluster/dev-k3s": {"N": "3"}}}},
        {"pk": {"S": "lkg#dev-k3s"}, "sk": {"S": "e#0000000001"}, "kind": {"S": "stop"}},
        {"pk": {"S": "env#prod"}, "sk": {"S": "proposal#0000000001"}, "proposal": {"N": "1"},
         "state": {"S": "proposed"}, "config": {"M": {}}, "author": {"S": "alice"},
         "comment": {"S": "more cpu"}, "created_at": {"S": "2026-12-06T10:00:00Z"}},
    ]  # fmt: skip
    for key, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    for item in others:
        store().client.put_item(TableName=project.table, Item=item)
    assert main(["local", "down"]) == 0, capsys.readouterr().err
    assert main(["local", "up"]) == 0
    capsys.readouterr()
    for item in others:
        key = {"pk": item["pk"], "sk": item["sk"]}
        found = store().client.get_item(TableName=project.table, Key=key, ConsistentRead=True)
        assert found.get("Item") == item
    assert main(["config", "history", "--layer", "env/prod"]) == 0
    assert "PROPOSAL" in capsys.readouterr().out


def test_doctor_finds_the_local_server_without_credentials(
    local: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As a process of its own (in this one, an earlier command has set credentials)."""
    assert main(["local", "up"]) == 0
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [sys.executable, "-m", "compiler", "doctor"],
        cwd=local,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    [line] = [x for x in done.stdout.splitlines() if "dynamodb" in x]
    assert "key schema pk + sk" in line and "credentials" not in line, line


def test_env_exports_the_cue_the_project_uses(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The native cue where `make` built it, not the WebAssembly v0.4 beside it."""
    for relative in ("tools/cue-native/bin/cue", "tools/cue-wasm/cue"):
        fake = project_dir / relative
        fake.parent.mkdir(parents=True)
        fake.write_text("#!/bin/sh\n")
        fake.chmod(0o755)
    monkeypatch.delenv("GITOPS_CUE", raising=False)
    monkeypatch.chdir(project_dir)
    assert main(["local", "env"]) == 0
    exports = capsys.readouterr().out.splitlines()
    assert f"export GITOPS_CUE={project_dir / 'tools/cue-native/bin/cue'}" in exports
