"""`watch` against moto's DynamoDB server and a real bare repository: bounded polls."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.publishing.watcher import Watcher, load_checkpoint, save_checkpoint
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.snapshot import SnapshotStore, seed
from tests.conftest import ROOT
from tests.gitrepos import git

NEW_CLUSTER = """\
cluster: {name: dev-k3s-2, env: dev, region: eu-west-1, server: "https://dev-k3s-2:6443"}
config:
  calico:
    ipPools:
      dev-pool-2: {cidr: 192.168.0.0/16, ipipMode: Always, natOutgoing: true}
"""


@pytest.fixture
def table(server_store: DynamoDBStore) -> list[str]:
    seed(server_store, SnapshotStore(ROOT / "examples"))
    assert server_store.endpoint_url is not None
    return ["--project", str(ROOT), "--endpoint-url", server_store.endpoint_url, "--table",
            server_store.table]  # fmt: skip


def branches(remote: Path) -> dict[str, str]:
    listing = git(f"--git-dir={remote}", "for-each-ref", "--format=%(refname:short) %(objectname)")
    return dict(line.split() for line in listing.splitlines())


def watch(remote: Path, table: list[str], checkpoint: Path, polls: int = 1) -> int:
    return main(
        ["watch", "--repo", str(remote), "--forge", "none", "--interval", "0.01",
         "--max-polls", str(polls), "--checkpoint", str(checkpoint), *table]
    )  # fmt: skip


def test_watch_publishes_new_versions_once_and_a_restart_repeats_nothing(
    remote: Path, table: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    # First start: no checkpoint, so every cluster is new; one publish for all three.
    assert watch(remote, table, checkpoint) == 0
    first = branches(remote)
    assert len(first) == 2  # main and one branch for the three clusters
    assert load_checkpoint(checkpoint) == {
        "defaults": 2, "env#dev": 1, "env#prod": 2, "env#test": 1,
        "cluster#dev-k3s": 2, "cluster#prod-eks-1": 1, "cluster#test-k3s": 1,
    }  # fmt: skip
    merged = next(b for b in first if b != "main")
    git(f"--git-dir={remote}", "update-ref", "refs/heads/main", merged)

    # A new cluster record and a new env/dev version: the dev clusters, in one publish.
    new = tmp_path / "new.yaml"
    new.write_text(NEW_CLUSTER)
    assert main(["config", "put", "--layer", "cluster/dev-k3s-2", str(new), *table]) == 0
    env = tmp_path / "env.json"  # env/dev v1 with a bigger dev quota
    v1 = SnapshotStore(ROOT / "examples").history("env#dev")[0].config
    v1["namespaces"]["dev-team"]["quotas"]["dev-quota"]["cpu"] = "6"
    env.write_text(json.dumps(v1))
    assert main(["config", "put", "--layer", "env/dev", str(env), *table]) == 0
    capsys.readouterr()
    assert watch(remote, table, checkpoint) == 0
    out = capsys.readouterr().out
    assert "2 cluster(s) affected: dev-k3s, dev-k3s-2" in out, out
    second = branches(remote)
    assert len(second) == 3, out  # one new branch: both dev clusters in one pull request
    saved = load_checkpoint(checkpoint)
    assert saved["env#dev"] == 2 and saved["cluster#dev-k3s-2"] == 1

    # Restart: nothing new, nothing published, the checkpoint as it was.
    assert watch(remote, table, checkpoint, polls=2) == 0
    assert "no new versions or clusters" in capsys.readouterr().out
    assert branches(remote) == second and load_checkpoint(checkpoint) == saved


def test_outside_failures_back_off_and_never_advance_the_checkpoint(
    table: list[str], tmp_path: Path
) -> None:
    from compiler.errors import OutsideError
    from compiler.project import load_project
    from compiler.sources.dynamodb import DynamoDBStore as Store

    endpoint, name = table[3], table[5]
    store = Store(name, region="us-east-1", endpoint_url=endpoint)
    checkpoint = tmp_path / "checkpoint.json"
    save_checkpoint(checkpoint, {"defaults": 1})
    waits: list[float] = []

    class RecordingStop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout or 0)
            return False

    def failing_publish(changes: object) -> bool:
        raise OutsideError("git push failed")

    messages: list[str] = []
    watcher = Watcher(store, load_project(ROOT), checkpoint, failing_publish, messages.append,
                      1.0, RecordingStop())  # fmt: skip
    assert watcher.run(max_polls=4) == 4
    assert waits == [2.0, 4.0, 8.0]  # doubled each time; none after the last poll
    assert load_checkpoint(checkpoint) == {"defaults": 1}
    assert sum("git push failed" in m for m in messages) == 4


def test_sigterm_stops_after_the_current_step(
    remote: Path, table: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    timer = threading.Timer(1.0, lambda: signal.raise_signal(signal.SIGTERM))
    timer.start()
    try:
        code = main(
            ["watch", "--repo", str(remote), "--forge", "none", "--interval", "30",
             "--checkpoint", str(tmp_path / "c.json"), *table]
        )  # fmt: skip
    finally:
        timer.cancel()
    assert code == 0
    out = capsys.readouterr().out
    assert "SIGTERM: stopping after this step" in out and "stopped on a signal" in out
    assert json.loads((tmp_path / "c.json").read_text())["versions"]  # the poll completed
