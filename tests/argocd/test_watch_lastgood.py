"""`watch --argocd-server` end to end: a fake Argo CD API (validated against its swagger),
real git bare repositories, moto's DynamoDB server, a fake GitHub.

publish v1, merge, Argo CD reports Healthy -> the last known good is recorded; publish
v2, merge, Argo CD reports Degraded past the grace period -> exactly one rollback pull
request, whose cluster directory is v1's; later polls (and a restarted watch) open
nothing more; the rollback's own revision failing stops the guard until `--clear`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.argocd.incidents import Incidents
from compiler.argocd.lastgood import LastKnownGood
from compiler.cli import main
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.snapshot import SnapshotStore, seed
from tests.conftest import REGION, ROOT
from tests.fake_argocd import FAKE_TOKEN as ARGOCD_TOKEN
from tests.fake_argocd import FakeArgoCD
from tests.fake_github import FAKE_REPO, FAKE_TOKEN, FakeGitHub
from tests.gitrepos import files_at, git

ROLLBACK_BRANCH = "gitops-compiler/main/rollback-dev-k3s"
APPS = ("dev-k3s-bootstrap", "dev-k3s-ingress-nginx", "dev-k3s-logging")
V2 = """\
calico:
  ipPools:
    dev-ippool: {cidr: 192.168.0.0/16, ipipMode: Always, natOutgoing: true, disabled: false}
addons:
  ingress-nginx:
    values: {controller: {replicaCount: 5}}
"""


@pytest.fixture
def table(server_store: DynamoDBStore) -> list[str]:
    seed(server_store, SnapshotStore(ROOT / "examples"))
    assert server_store.endpoint_url is not None
    return ["--project", str(ROOT), "--endpoint-url", server_store.endpoint_url,
            "--table", server_store.table]  # fmt: skip


def merge(remote: Path, branch: str) -> str:
    git(f"--git-dir={remote}", "update-ref", "refs/heads/main", branch)
    return git(f"--git-dir={remote}", "rev-parse", "main")


def report_all(argocd: FakeArgoCD, health: str, revision: str) -> None:
    """The cluster's bootstrap at the git revision, its add-on at its chart's version."""
    argocd.report(APPS[0], "dev-k3s", health=health, sync="Synced", revision=revision)
    for addon, chart_version in (("ingress-nginx", "4.11.2"), ("logging", "0.47.10")):
        argocd.report(
            f"dev-k3s-{addon}", "dev-k3s", health="Healthy", sync="Synced",
            revision=chart_version, addon=addon,
        )  # fmt: skip


def test_a_degraded_revision_is_rolled_back_once_to_the_last_known_good(
    table: list[str],
    server_store: DynamoDBStore,
    remote: Path,
    fake_github: FakeGitHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", fake_github.url)
    monkeypatch.setenv("ARGOCD_AUTH_TOKEN", ARGOCD_TOKEN)
    target = ["--repo", str(remote), "--forge-repo", FAKE_REPO]
    alerts = tmp_path / "alerts.jsonl"
    hook = tmp_path / "hook"
    hook.write_text(f'#!/bin/sh\ncat >> "{alerts}"; echo >> "{alerts}"\n')
    hook.chmod(0o755)
    lkg = LastKnownGood(server_store.table, region=REGION, endpoint_url=server_store.endpoint_url)
    incidents = Incidents(server_store.table, region=REGION, endpoint_url=server_store.endpoint_url)

    assert main(["publish", "--all", *target, "--run-id", "v1", *table]) == 0
    v1 = merge(remote, "gitops-compiler/main/all-clusters")
    v1_tree = files_at(remote, v1, "clusters/dev-k3s")

    with FakeArgoCD() as argocd:
        watch = [
            "--alert", f"command:{hook}", "watch", *target, *table,
            "--argocd-server", argocd.url, "--grace", "0s", "--interval", "0.01",
            "--checkpoint", str(tmp_path / "checkpoint.json"),
        ]  # fmt: skip
        # Good only once every Application the ApplicationSets generate is reported.
        argocd.report(APPS[0], "dev-k3s", health="Healthy", sync="Synced", revision=v1)
        assert main([*watch, "--max-polls", "1"]) == 0, capsys.readouterr().err
        assert "reports no dev-k3s-ingress-nginx, dev-k3s-logging" in capsys.readouterr().out
        assert lkg.latest("dev-k3s") is None
        report_all(argocd, "Healthy", v1)
        assert main([*watch, "--max-polls", "1"]) == 0, capsys.readouterr().err
        good = lkg.latest("dev-k3s")
        assert good is not None and (good.version, good.revision) == (1, v1)
        assert good.lock == json.loads(v1_tree["clusters/dev-k3s/config-lock.json"])
        assert lkg.latest("test-k3s") is None  # Argo CD reports nothing for it

        v2_file = tmp_path / "v2.yaml"
        v2_file.write_text(V2)
        assert main(["config", "put", "--layer", "cluster/dev-k3s", str(v2_file), *table]) == 0
        assert main(["publish", "--all", *target, "--run-id", "v2", *table]) == 0
        v2 = merge(remote, "gitops-compiler/main/all-clusters")
        pulls_before = len(fake_github.pulls())
        rolling = git(f"--git-dir={remote}", "rev-parse", "gitops-compiler/main/all-clusters")
        capsys.readouterr()

        # Degraded past the grace period: one rollback, then a second poll that does nothing.
        report_all(argocd, "Degraded", v2)
        assert main([*watch, "--max-polls", "2"]) == 0
        out, err = capsys.readouterr()
        rollbacks = [p for p in fake_github.pulls() if p["head"]["ref"] == ROLLBACK_BRANCH]
        assert len(rollbacks) == 1 and len(fake_github.pulls()) == pulls_before + 1, out
        assert rollbacks[0]["title"].startswith("Rollback dev-k3s:")
        rolled = files_at(remote, ROLLBACK_BRANCH, "clusters/dev-k3s")
        lock_name = "clusters/dev-k3s/config-lock.json"
        # Byte for byte v1's tree; the lock names the revert versions that hold v1's content.
        assert {p: b for p, b in rolled.items() if p != lock_name} == {
            p: b for p, b in v1_tree.items() if p != lock_name
        }
        reverted = {x["layer"]: x.get("version") for x in json.loads(rolled[lock_name])["layers"]}
        assert reverted["cluster/dev-k3s"] == 4  # v2 was @3; @4 holds the good @2's content
        assert [i.kind for i in incidents.history("dev-k3s")] == ["rollback"]
        assert ARGOCD_TOKEN not in out + err
        # The reverts went out on the rollback's branch only, not again on the rolling one.
        assert git(f"--git-dir={remote}", "rev-parse", "gitops-compiler/main/all-clusters") == (
            rolling
        )

        # A restarted watch remembers it from the table: nothing more.
        assert main([*watch, "--max-polls", "1"]) == 0
        assert len(fake_github.pulls()) == pulls_before + 1
        assert [i.kind for i in incidents.history("dev-k3s")] == ["rollback"]

        # The rollback merged, and its own revision fails too: alert and stop acting.
        v3 = merge(remote, ROLLBACK_BRANCH)
        report_all(argocd, "Degraded", v3)
        capsys.readouterr()
        assert main([*watch, "--max-polls", "2"]) == 0
        out, _ = capsys.readouterr()
        assert "did not heal the cluster" in out and "rollback --clear dev-k3s" in out
        assert [i.kind for i in incidents.history("dev-k3s")] == ["rollback", "stop"]
        assert len(fake_github.pulls()) == pulls_before + 1
        events = [json.loads(line) for line in alerts.read_text().splitlines() if line]
        assert [e.get("event") for e in events] == ["argocd-rollback", "argocd-stop"]
        assert events[0]["last_known_good"] == {"version": 1, "revision": v1}

        # A person clears it; the next report of a good revision is recorded as usual.
        assert main(["rollback", "--clear", "dev-k3s", *table]) == 0
        assert "cleared" in capsys.readouterr().out
        assert [i.kind for i in incidents.history("dev-k3s")][-1] == "clear"
        assert main(["rollback", "--clear", "dev-k3s", *table]) == 0
        assert "nothing to clear" in capsys.readouterr().out
        report_all(argocd, "Healthy", v3)
        assert main([*watch, "--max-polls", "1"]) == 0
        good = lkg.latest("dev-k3s")
        assert good is not None and (good.version, good.revision) == (2, v3)
    assert all(r[1]["Authorization"] == f"Bearer {ARGOCD_TOKEN}" for r in argocd.requests)


def test_rollback_to_the_last_known_good_on_demand(
    table: list[str],
    server_store: DynamoDBStore,
    remote: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = ["--repo", str(remote), "--forge", "none"]
    argv = ["rollback", "--cluster", "dev-k3s", "--last-known-good", *target, *table]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no last known good is recorded" in err and "watch --argocd-server" in err
    assert "--versions" in err and "Traceback" not in err

    assert main(["publish", "--all", *target, *table]) == 0
    v1 = merge(remote, "gitops-compiler/main/all-clusters")
    v1_tree = files_at(remote, v1, "clusters/dev-k3s")
    lock = json.loads(v1_tree["clusters/dev-k3s/config-lock.json"])
    lkg = LastKnownGood(server_store.table, region=REGION, endpoint_url=server_store.endpoint_url)
    lkg.record("dev-k3s", v1, lock, {}, "2026-01-01T00:00:00Z")
    v2_file = tmp_path / "v2.yaml"
    v2_file.write_text(V2)
    assert main(["config", "put", "--layer", "cluster/dev-k3s", str(v2_file), *table]) == 0
    assert main(["publish", "--all", *target, *table]) == 0
    merge(remote, "gitops-compiler/main/all-clusters")
    capsys.readouterr()

    assert main(argv) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert f"last known good #1, revision {v1}" in err
    assert "reverted cluster/dev-k3s@3 to cluster/dev-k3s@2 as @4" in err
    rolled = files_at(remote, ROLLBACK_BRANCH, "clusters/dev-k3s")
    addon = "clusters/dev-k3s/addons/ingress-nginx.json"
    assert rolled[addon] == v1_tree[addon]
    # Already there: nothing more to revert.
    merge(remote, ROLLBACK_BRANCH)
    assert main(argv) == 0
    assert "nothing to revert" in capsys.readouterr().err


def test_the_guard_needs_a_token_and_a_table(
    table: list[str],
    remote: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("ARGOCD_AUTH_TOKEN", raising=False)
    argv = ["watch", "--repo", str(remote), "--argocd-server", "http://127.0.0.1:9", *table]
    assert main([*argv, "--max-polls", "1"]) == 2
    assert "ARGOCD_AUTH_TOKEN" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--grace", "ten minutes"])
    assert exited.value.code == 2
    assert "use a duration such as" in capsys.readouterr().err
