"""The console script proc_starts cue before importing the compiler; the command claims it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compiler import entry
from compiler.policy import cue as cue_module
from compiler.policy.cue import CuePolicies
from tests.conftest import ROOT, tree
from tests.test_proc import ended


def fake_cue(tmp_path: Path) -> Path:
    path = tmp_path / "cue"
    path.write_text(f"#!/bin/sh\necho $$ >> {tmp_path}/pids\ncat > /dev/null\necho '[]'\n")
    path.chmod(0o755)
    return path


def test_a_compile_claims_the_cue_started_before_it(
    tmp_path: Path, proc_starts: list[tuple[str, ...]]
) -> None:
    cue = fake_cue(tmp_path)
    entry.prestart_cue(["compile", "--all", "--project", str(ROOT), f"--cue={cue}"], {})
    assert len(proc_starts) == 1
    policies = CuePolicies(ROOT / "policies", cue)
    policies.warm_up()
    assert len(proc_starts) == 1  # claimed, not started again
    assert policies.check({"dev-k3s": {}}) == []
    assert len(proc_starts) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["publish", "--repo", "x"],  # runs no cue here
        ["compile", "--help"],
        [],
        ["--log-format", "json", "compile"],  # not read: the command proc_starts cue itself
    ],
)
def test_other_command_lines_start_nothing(
    argv: list[str], tmp_path: Path, proc_starts: list[tuple[str, ...]]
) -> None:
    entry.prestart_cue([*argv, "--cue", str(fake_cue(tmp_path))], {})
    assert proc_starts == []


def test_nothing_is_started_when_there_is_no_cue(
    tmp_path: Path, proc_starts: list[tuple[str, ...]]
) -> None:
    entry.prestart_cue(["compile", "--project", str(tmp_path)], {"PATH": str(tmp_path)})
    assert proc_starts == []  # the command says "no cue found", as before


def test_the_projects_own_cue_is_started_without_gitops_cue(
    tmp_path: Path, proc_starts: list[tuple[str, ...]]
) -> None:
    """The cue the command will look for (issue 17): the project's native cue where
    `make` built one, else its WebAssembly launcher."""
    native = ROOT / "tools/cue-native/bin/cue"
    expected = native if native.is_file() else ROOT / "tools/cue-wasm/cue"
    entry.prestart_cue(["compile", "--project", str(ROOT)], {"PATH": str(tmp_path)})
    assert [argv[0] for argv in proc_starts][:1] == [str(expected)]


def test_an_unclaimed_cue_is_stopped_at_exit(
    tmp_path: Path, proc_starts: list[tuple[str, ...]]
) -> None:
    cue = tmp_path / "slow-cue"
    cue.write_text(f"#!/bin/sh\necho $$ > {tmp_path}/pid\nexec sleep 60\n")
    cue.chmod(0o755)
    entry.prestart_cue(["validate", "--project", str(ROOT), "--cue", str(cue)], {})
    assert len(proc_starts) == 1
    pid_file = tmp_path / "pid"
    for _ in range(200):  # bounded: the shell writes it at once
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.02)
    cue_module._stop_prestarted()  # what atexit runs
    assert ended(int(pid_file.read_text()))


def test_the_console_entry_compiles_the_examples(tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "compiler", "compile", "--all", "--project", str(ROOT)]
    argv += ["--source", "snapshot:examples", "--out", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert done.returncode == 0, done.stderr
    assert tree(out) == tree(ROOT / "golden")
