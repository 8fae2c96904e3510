"""The command line's contract: exit codes, messages naming cluster/source/field, nothing half-written."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from compiler.arguments import build_parser
from compiler.cli import main
from tests.conftest import ROOT, tree


def snapshot_args(project: Path) -> list[str]:
    return ["--project", str(project), "--source", "snapshot:examples"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["compile", "--no-such-flag"])
    assert raised.value.code == 2
    with pytest.raises(SystemExit) as raised:
        main([])
    assert raised.value.code == 2


def test_compile_needs_clusters_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", "--out", str(tmp_path / "o"), *snapshot_args(ROOT)]) == 2
    assert "--cluster" in capsys.readouterr().err


def test_unknown_cluster_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["compile", "--cluster", "nope", "--out", str(tmp_path / "o"), *snapshot_args(ROOT)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    # issue 17: the closest names, or the command that lists them.
    assert "no cluster 'nope' in the config table; `gitops-compiler clusters list`" in err
    assert not (tmp_path / "o").exists()


def test_violation_in_an_overlay_names_file_line_and_field_and_writes_nothing(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["compile", "--all", "--out", str(out), *snapshot_args(project_dir)]) == 0
    before = tree(out)
    bad = project_dir / "overlays/dev/30-bad.yaml"
    bad.write_text("namespaces:\n  dev-team:\n    quotas:\n      dev-quota:\n        cpu: lots\n")
    capsys.readouterr()
    assert main(["compile", "--all", "--out", str(out), *snapshot_args(project_dir)]) == 1
    captured = capsys.readouterr()
    assert "dev-k3s" in captured.out
    assert "namespaces.dev-team.quotas.dev-quota.cpu" in captured.out
    assert "overlays/dev/30-bad.yaml:5" in captured.out
    assert "nothing written" in captured.err
    assert tree(out) == before


def test_violations_as_json(project_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = project_dir / "overlays/dev/30-bad.yaml"
    bad.write_text("namespaces:\n  dev-team:\n    surprise: 1\n")
    assert main(["validate", "--all", "--format", "json", *snapshot_args(project_dir)]) == 1
    record = json.loads(capsys.readouterr().out)
    [violation] = record["violations"]
    assert violation["cluster"] == "dev-k3s"
    assert violation["path"] == "namespaces.dev-team.surprise"
    assert "overlays/dev/30-bad.yaml:3" in violation["provenance"]


def test_unreadable_overlay_is_bad_input_naming_file_and_line(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = project_dir / "overlays/test/30-dup.yaml"
    bad.write_text("namespaces:\n  qa-team: {}\n  qa-team: {}\n")
    out = tmp_path / "out"
    assert main(["compile", "--all", "--out", str(out), *snapshot_args(project_dir)]) == 2
    err = capsys.readouterr().err
    assert "overlays/test/30-dup.yaml:3" in err and "duplicate" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_yaml_11_boolean_in_an_overlay_says_quote_it(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = project_dir / "overlays/dev/30-bool.yaml"
    bad.write_text("namespaces:\n  dev-team:\n    labels:\n      enabled: on\n")
    assert main(["validate", "--all", *snapshot_args(project_dir)]) == 2
    err = capsys.readouterr().err
    assert "30-bool.yaml:4" in err and "quote" in err


def test_unreachable_dynamodb_is_an_outside_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    argv = ["compile", "--all", "--out", str(tmp_path / "o"), "--project", str(ROOT)]
    assert main([*argv, "--endpoint-url", endpoint]) == 3
    err = capsys.readouterr().err
    assert endpoint in err and "Traceback" not in err


def test_missing_table_is_an_outside_failure_naming_it(
    dynamodb_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["compile", "--all", "--out", str(tmp_path / "o"), "--project", str(ROOT)]
    assert main([*argv, "--endpoint-url", dynamodb_server, "--table", "no-such-table"]) == 3
    assert "no-such-table" in capsys.readouterr().err


def test_an_empty_table_never_compiles_an_empty_fleet(
    server_store: object, dynamodb_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = server_store.table  # type: ignore[attr-defined]
    argv = ["compile", "--all", "--out", str(tmp_path / "o"), "--project", str(ROOT)]
    assert main([*argv, "--endpoint-url", dynamodb_server, "--table", table]) == 2
    assert "empty fleet" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_internal_error_prints_one_line_and_a_crash_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import compiler.run as run_module

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("synthetic fault")

    monkeypatch.setattr(run_module, "finish_compile", boom)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    argv = ["compile", "--all", "--out", str(tmp_path / "o"), *snapshot_args(ROOT)]
    assert main(argv) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "synthetic fault" in err and "Traceback" not in err
    log = Path(err.rsplit("details in ", 1)[1].rstrip(")\n"))
    assert "Traceback" in log.read_text() and "RuntimeError" in log.read_text()


def test_explain_prints_value_setter_and_overridden(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["explain", "--cluster", "prod-eks-1", "namespaces.monitoring.quotas.monitoring-quota"]
    assert main([*argv, *snapshot_args(ROOT)]) == 0
    out = capsys.readouterr().out
    assert 'namespaces.monitoring.quotas.monitoring-quota.cpu = "8"' in out
    assert "overlays/prod/10-quotas.yaml:6" in out
    assert "dynamodb:defaults/v#0000000002@2" in out


def test_explain_unknown_path_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["explain", "--cluster", "dev-k3s", "namespaces.nowhere", *snapshot_args(ROOT)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cluster dev-k3s" in err and "nowhere" in err


def test_console_script_runs_as_a_process(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "gitops-compiler"
    argv = [str(script), "validate", "--all", *snapshot_args(ROOT)]
    ran = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    assert "3 cluster(s) valid" in ran.stdout


def _documented_command_lines() -> list[str]:
    """Every gitops-compiler command line in README code blocks and the CI workflow."""
    lines = []
    in_code = False
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif in_code and line.removeprefix("$ ").startswith("gitops-compiler "):
            lines.append(line.removeprefix("$ ").split("  #")[0])
    workflow = yaml.safe_load((ROOT / ".github/workflows/compile-and-pr.yml").read_text())
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            run = step.get("run", "")
            if "gitops-compiler " in run:
                lines.append(re.sub(r"\$\{\{[^}]*\}\}", "x", run).split("bin/", 1)[1])
    return lines


def test_every_documented_command_line_parses() -> None:
    lines = _documented_command_lines()
    assert len(lines) >= 5  # README examples and the workflow's validate, golden, publish
    parser = build_parser()
    for line in lines:
        argv = shlex.split(line)[1:]
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"documented command does not parse: {line}")


@pytest.mark.parametrize("argv", [["explain-rule", "--all"], ["explain-rule", "rbac-no-wildcard"]])
def test_a_reader_that_went_away_ends_the_command_quietly(argv: list[str]) -> None:
    """`gitops-compiler explain-rule --all | head`: no traceback, no crash log, exit 141
    (what a shell shows for a tool SIGPIPE ended), whether the pipe breaks while the
    command prints or only when its last output is flushed."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte
    try:
        done = subprocess.run(
            [sys.executable, "-m", "compiler", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr


def test_the_summary_of_a_fleet_names_ten_clusters_and_counts_the_rest(tmp_path: Path) -> None:
    from compiler.commands.compile import summary
    from compiler.emit import EmitStats
    from compiler.pipeline import CompileResult
    from compiler.treerecord import KeptCluster

    def kept(count: int) -> CompileResult:
        return CompileResult(kept=[KeptCluster(f"c{i:04d}", 1, {}, {}, ()) for i in range(count)])

    stats = EmitStats(written=0, unchanged=0, removed=0)
    fleet = summary(kept(1000), stats, 1.0, tmp_path)
    shown = ", ".join(f"c{i:04d}" for i in range(10))
    assert f"compiled 1000 cluster(s) ({shown} and 990 more):" in fleet
    assert "c0010" not in fleet
    assert f"compiled 10 cluster(s) ({shown}):" in summary(kept(10), stats, 1.0, tmp_path)
