"""`watch` against moto's DynamoDB server and a real bare repository: bounded polls."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.publishing.watcher import Watcher, load_checkpoint, load_held, save_checkpoint
from compiler.sources import Pin
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.snapshot import SnapshotStore, seed
from tests.conftest import ROOT
from tests.gitrepos import files_at, git

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
    # The same rolling branch, moved: both dev clusters in the one pull request.
    assert second.keys() == first.keys() and second != first, out
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

    def failing_publish(changes: object, names: object) -> list[str]:
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


# -- issue 16: one rolling branch per base; a cluster with violations does not block --

ROLLING = "gitops-compiler/main/watch"


def _put_env_cpu(store: DynamoDBStore, env: str, cpu: str) -> None:
    latest = store.read(f"env#{env}", Pin())
    assert latest is not None
    config = json.loads(json.dumps(latest.config))
    for namespace in config.get("namespaces", {}).values():
        for quota in namespace.get("quotas", {}).values():
            quota["cpu"] = cpu
    store.put(f"env#{env}", config, cluster=None, author="t", comment=f"cpu {cpu}")


def _quota_cpu(remote: Path, cluster: str) -> set[str]:
    files = files_at(remote, ROLLING, f"clusters/{cluster}/namespaces")
    return {
        line.split(":", 1)[1].strip()
        for rel, data in files.items()
        if "resourcequota" in rel
        for line in data.decode().splitlines()
        if line.strip().startswith("cpu:")
    }


def test_successive_polls_update_one_rolling_branch_that_keeps_every_pending_change(
    remote: Path, table: list[str], server_store: DynamoDBStore, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    assert watch(remote, table, checkpoint) == 0
    _put_env_cpu(server_store, "dev", "5")
    assert watch(remote, table, checkpoint) == 0
    after_dev = branches(remote)
    _put_env_cpu(server_store, "test", "7")
    assert watch(remote, table, checkpoint) == 0
    after_test = branches(remote)
    # Never merged, yet one branch (one pull request) holds both changes: a later poll
    # neither opens a second, conflicting one nor drops the earlier change.
    assert set(after_test) == {"main", ROLLING} and after_test[ROLLING] != after_dev[ROLLING]
    assert "'5'" in _quota_cpu(remote, "dev-k3s") and "'7'" in _quota_cpu(remote, "test-k3s")


BAD_ROLE = {
    "roles": {"wide": {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]}}
}


def test_a_cluster_with_violations_is_held_reported_and_retried_when_its_inputs_change(
    remote: Path, table: list[str], server_store: DynamoDBStore, tmp_path: Path
) -> None:
    notified = tmp_path / "notified.jsonl"
    hook = tmp_path / "hook"
    hook.write_text(f'#!/bin/sh\ncat >> "{notified}"; echo >> "{notified}"\n')
    hook.chmod(0o755)
    checkpoint = tmp_path / "checkpoint.json"
    prod = server_store.read("cluster#prod-eks-1", Pin())
    assert prod is not None and prod.cluster is not None
    server_store.put("cluster#prod-eks-1", {**prod.config, **BAD_ROLE}, cluster=prod.cluster,
                     author="t", comment="too wide")  # fmt: skip
    argv = ["--alert", f"command:{hook}", "--audit-log", str(tmp_path / "audit.jsonl"),
            "watch", "--repo", str(remote), "--forge", "none", "--interval", "0.01",
            "--max-polls", "1", "--checkpoint", str(checkpoint), *table]  # fmt: skip
    assert main(argv) == 0
    # The others are published; prod-eks-1 is not, and is reported.
    assert files_at(remote, ROLLING, "clusters/dev-k3s")
    assert not files_at(remote, ROLLING, "clusters/prod-eks-1")
    alerts = [json.loads(line) for line in notified.read_text().splitlines() if line.strip()]
    assert any(a["status"] == "held" and a["clusters"] == ["prod-eks-1"] for a in alerts)
    assert '"held":["prod-eks-1"]' in (tmp_path / "audit.jsonl").read_text()
    assert "prod-eks-1" in load_held(checkpoint)

    # Another cluster moves: prod-eks-1's inputs did not, so it is not compiled again.
    _put_env_cpu(server_store, "dev", "5")
    notified.write_text("")
    assert main(argv) == 0
    assert not notified.read_text().strip()  # no second alert for the same inputs
    assert "'5'" in _quota_cpu(remote, "dev-k3s")
    assert not files_at(remote, ROLLING, "clusters/prod-eks-1")

    # Its record is fixed: retried, published, no longer held.
    server_store.put("cluster#prod-eks-1", prod.config, cluster=prod.cluster, author="t",
                     comment="fixed")  # fmt: skip
    assert main(argv) == 0
    assert files_at(remote, ROLLING, "clusters/prod-eks-1")
    assert load_held(checkpoint) == {}


def test_publish_stays_all_or_nothing(
    remote: Path, table: list[str], server_store: DynamoDBStore
) -> None:
    prod = server_store.read("cluster#prod-eks-1", Pin())
    assert prod is not None and prod.cluster is not None
    server_store.put("cluster#prod-eks-1", {**prod.config, **BAD_ROLE}, cluster=prod.cluster,
                     author="t", comment="too wide")  # fmt: skip
    code = main(["publish", "--all", "--repo", str(remote), "--forge", "none", *table])
    assert code == 1 and set(branches(remote)) == {"main"}
