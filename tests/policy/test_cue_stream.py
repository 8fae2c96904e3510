"""cue gets the clusters as the merge makes them: a full shard starts at once."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from compiler import proc
from compiler.policy.cue import CuePolicies, find_cue
from compiler.policy.cue_stream import CueStream
from tests.conftest import ROOT
from tests.policy.test_cue import POLICY, doc, fake_cue
from tests.service.harness import eventually


@pytest.fixture
def cue() -> Path:
    """The real cue the suite runs (GITOPS_CUE: conftest sets it), else the project's."""
    return find_cue(None, os.environ, project=ROOT)


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "policy.cue").write_text(POLICY)
    return tmp_path / "policies"


def test_a_full_shard_starts_before_the_last_cluster_is_handed_over(
    tmp_path: Path, policies: Path
) -> None:
    log = tmp_path / "log"
    log.mkdir()
    cue = fake_cue(tmp_path / "bin", f"touch {log}/$$.start\ncat > /dev/null\necho '[]'")
    with CueStream(CuePolicies(policies, cue, shard_bytes=1)) as stream:
        stream.add("a", doc("a", "dev"))
        stream.add("b", doc("b", "dev"))  # `a`'s shard is full: it goes now
        eventually(lambda: list(log.glob("*.start")), 10, "a cue while clusters still come")
        stream.add("c", doc("c", "prod"))
        found = stream.findings()
    assert found == []  # the fake finds nothing
    assert len(list(log.glob("*.start"))) == 3


def test_the_findings_are_those_of_one_check(cue: Path, policies: Path) -> None:
    inputs = {name: doc(name, env) for name, env in [("a", "prod"), ("x1", "dev"), ("b", "dev")]}
    with CueStream(CuePolicies(policies, cue, shard_bytes=1)) as stream:
        for name, document in inputs.items():
            stream.add(name, document)
        streamed = stream.findings()
    assert streamed == CuePolicies(policies, cue).check(inputs)
    assert [(f.cluster, f.rule) for f in streamed] == [("a", "no-prod"), ("x1", "named-x")]


def test_leaving_early_stops_cue_and_its_thread(tmp_path: Path, policies: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    cue = fake_cue(tmp_path / "bin", f"echo $$ > {pids}/$$\nexec sleep 60")
    threads = threading.active_count()
    started = time.monotonic()
    with (
        pytest.raises(RuntimeError, match="the merge failed"),
        CueStream(CuePolicies(policies, cue, shard_bytes=1)) as stream,
    ):
        stream.add("a", doc("a", "dev"))
        stream.add("b", doc("b", "dev"))
        eventually(lambda: list(pids.iterdir()), 10, "the first shard's cue")
        raise RuntimeError("the merge failed")
    assert time.monotonic() - started < 10
    assert threading.active_count() == threads
    assert len(list(pids.iterdir())) == 1  # `b`'s shard was not started after the failure
    for pid in pids.iterdir():
        assert not Path(f"/proc/{pid.name}").exists() or "Z" in _state(pid.name)


def test_no_policies_no_cue() -> None:
    with CueStream(None) as stream:
        stream.add("a", doc("a", "prod"))
        assert stream.findings() == []


def test_waiting_for_documents_ends_with_the_stream(policies: Path, tmp_path: Path) -> None:
    never = tmp_path / "never-run"
    with CueStream(CuePolicies(policies, never)) as stream:
        pass  # no document, no findings asked: leaving must not hang
    assert stream._pending is not None and stream._pending.done()
    with pytest.raises(proc.Cancelled):  # and no cue was started for nothing
        stream._pending.result()


def _state(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except OSError:
        return "gone"


def test_the_last_shard_starts_when_the_merge_is_done(tmp_path: Path, policies: Path) -> None:
    """One cluster (a hook, a `--cluster` compile): cue runs beside its render."""
    log = tmp_path / "log"
    log.mkdir()
    cue = fake_cue(tmp_path / "bin", f"touch {log}/$$\ncat > /dev/null\necho '[]'")
    with CueStream(CuePolicies(policies, cue)) as stream:
        stream.add("a", doc("a", "dev"))
        stream.all_added()  # findings are not asked for yet
        eventually(lambda: list(log.iterdir()), 10, "cue before the findings are asked for")
        assert stream.findings() == []
