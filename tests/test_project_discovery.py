"""The project found from anywhere (issue 17): walk up to gitops-compiler.yaml, like git."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.cli import main

SNAPSHOT = ["--source", "snapshot:examples"]


def test_a_command_run_in_a_subdirectory_finds_the_project_above(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: policies/ was read from the working directory: exit 4, FileNotFoundError.
    monkeypatch.chdir(project_dir / "overlays" / "prod")
    assert main(["validate", "--cluster", "dev-k3s", *SNAPSHOT]) == 0, capsys.readouterr().err


def test_outside_any_project_exits_2_naming_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--cluster", "dev-k3s", *SNAPSHOT]) == 2
    err = capsys.readouterr().err
    assert "not inside a gitops-compiler project: no gitops-compiler.yaml in" in err
    assert "pass --project DIR" in err
    assert "Traceback" not in err


def test_project_option_and_variable_win_over_the_walk(
    project_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    argv = ["validate", "--cluster", "dev-k3s", *SNAPSHOT]
    assert main([*argv, "--project", str(project_dir)]) == 0, capsys.readouterr().err
    monkeypatch.setenv("GITOPS_PROJECT", str(project_dir))
    assert main(argv) == 0, capsys.readouterr().err


@pytest.mark.parametrize(
    ("where", "url"),
    [
        ("--endpoint-url", "127.0.0.1:5055"),
        ("AWS_ENDPOINT_URL_DYNAMODB", "127.0.0.1:5055"),
        ("--endpoint-url", "http://127.0.0.1:port"),
        ("AWS_ENDPOINT_URL", "ftp://host"),
    ],
)
def test_an_endpoint_without_a_scheme_is_bad_input_naming_its_origin(
    where: str, url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: exit 4 (an internal error inside botocore).
    argv = ["config", "history", "--layer", "defaults"]
    if where.startswith("--"):
        argv += [where, url]
    else:
        monkeypatch.setenv(where, url)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {where} {url!r}" in err
    assert "Traceback" not in err and "internal error" not in err
