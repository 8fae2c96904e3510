"""`local up/down/status/env` (issue 17): moto's server in the background, found by the
project's commands without exports, its data kept on disk between runs."""

from __future__ import annotations

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
