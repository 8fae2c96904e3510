"""The hook's freshness check as a process beside the compile (compiler/freshness_process.py):
started only for `validate --hook` from a snapshot; its answer taken only for the hook's
own source options, else the hook asks in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from compiler import freshness_process
from compiler.options import SourceOptions
from tests.conftest import ROOT

ENV = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "--source", "snapshot:examples", "a.yaml"],  # not a hook
        ["validate", "--hook", "a.yaml"],  # from the table: nothing to check
        ["validate", "--hook", "--source", "dynamodb", "a.yaml"],
        ["compile", "--hook", "--source", "snapshot:examples"],
    ],
)
def test_nothing_starts_but_for_a_hook_from_a_snapshot(argv: list[str]) -> None:
    freshness_process.prestart(argv, {})
    assert freshness_process.claim() is None


def _answering(text: str, code: int = 0) -> subprocess.Popen[bytes]:
    script = f"import sys; sys.stdout.write({text!r}); sys.exit({code})"
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)


def test_the_answer_is_taken_for_the_same_options_only() -> None:
    source = SourceOptions(project_dir=ROOT, source="snapshot:examples")
    other = SourceOptions(project_dir=ROOT, source="snapshot:elsewhere")
    asked: list[SourceOptions] = []

    def ask(options: SourceOptions) -> str | None:
        asked.append(options)
        return "asked here"

    def reply(options: SourceOptions, warning: str | None, code: int = 0) -> Any:
        return _answering(json.dumps({"source": repr(options), "warning": warning}), code)

    got = freshness_process.answer(reply(source, "from the process"), source, ask)
    assert (got, asked) == ("from the process", [])
    got = freshness_process.answer(reply(other, "from the process"), source, ask)
    assert (got, asked) == ("asked here", [source])
    for failed in (_answering("", 1), _answering("not json"), reply(source, "x", 1)):
        assert freshness_process.answer(failed, source, ask) == "asked here"
    assert freshness_process.answer(reply(source, None), source, ask) is None


def test_the_process_reads_the_options_as_the_cli_does(tmp_path: Path) -> None:
    """Run as the hook starts it: the source options of the command line, and the
    warning the check in the hook's own process gives (a table that does not answer)."""
    argv = ["validate", "--hook", "--source", "snapshot:examples", "--project", str(ROOT)]
    argv += ["--endpoint-url", "http://127.0.0.1:9", "overlays/dev/x.yaml"]
    done = subprocess.run(
        [sys.executable, "-m", "compiler.freshness_process", *argv],
        capture_output=True,
        text=True,
        env={**ENV, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        check=True,
    )
    source = SourceOptions(
        project_dir=ROOT, source="snapshot:examples", endpoint_url="http://127.0.0.1:9"
    )
    from compiler.freshness import stale_snapshot_warning

    expected = stale_snapshot_warning(source)
    assert expected is not None and "could not check" in expected
    assert (
        freshness_process.answer(_answering(done.stdout), source, lambda _: "asked here")
        == expected
    )


def test_a_check_no_one_waits_for_is_stopped() -> None:
    slow = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], stdout=subprocess.PIPE
    )
    freshness_process.stop(slow)
    assert slow.returncode is not None


@pytest.mark.parametrize("flag", ["--no-cache", "--no-cach"])
def test_the_process_keeps_nothing_with_no_cache(flag: str, tmp_path: Path) -> None:
    """The check loads the project file (whose verdict the cache dir may keep): with
    `--no-cache`, or a prefix argparse takes for it, it keeps nothing."""
    cache = tmp_path / "cache"
    argv = ["validate", "--hook", "--source", "snapshot:examples", "--project", str(ROOT)]
    argv += ["--endpoint-url", "http://127.0.0.1:9", flag, "overlays/dev/x.yaml"]
    environ = {**ENV, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    environ["GITOPS_CACHE_DIR"] = str(cache)
    environ.pop("GITOPS_NO_CACHE", None)
    subprocess.run(
        [sys.executable, "-m", "compiler.freshness_process", *argv],
        capture_output=True,
        env=environ,
        cwd=tmp_path,
        check=True,
        timeout=120,
    )
    assert not cache.exists() or not any(cache.rglob("*"))
