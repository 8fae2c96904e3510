"""Two replicas, one actor; a burst coalesced; SIGTERM; a restart from the checkpoints.

Real processes against moto's server (with its stream) and a bare repository;
the fake GitHub (HTTP level) counts the pull requests."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from compiler.sources import Pin
from compiler.sources.dynamodb import DynamoDBStore
from tests.fake_github import FAKE_REPO, FAKE_TOKEN, FakeGitHub
from tests.service.harness import branches, commits_on, environment, eventually, serving
from tests.service.test_serve import NEW_CLUSTER, item, serve_args, table  # noqa: F401


def _stream_checkpoints(store: DynamoDBStore) -> list[str]:
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=store.endpoint_url)
    items = client.scan(TableName=store.table)["Items"]
    return [i["pk"]["S"] for i in items if i["pk"]["S"].startswith("stream#")]


def test_a_burst_of_200_layer_versions_in_one_window_is_one_publish(
    remote: Path,
    table: DynamoDBStore,  # noqa: F811
) -> None:
    dev = table.read("env#dev", Pin())
    assert dev is not None
    # A window long enough for 200 conditional puts (with their head items) on a busy
    # machine: the point is that one window gives one publish, however long it is.
    with serving(serve_args(remote, table, "--debounce", "60")) as served:
        served.wait_for(r"lease taken", 30)
        started = time.monotonic()
        for number in range(200):
            table.put("env#dev", dev.config, cluster=None, author="burst", comment=f"#{number}")
        burst = time.monotonic() - started
        assert burst < 60, f"the burst took {burst:.1f} s, longer than the window"
        branch = "gitops-compiler/main/cluster-dev-k3s"
        eventually(lambda: branch in branches(remote), 180, f"branch {branch}")
        eventually(
            lambda: served.metric("gitops_runs_total", trigger="stream", outcome="success"),
            60, "the run counted",
        )  # fmt: skip
        time.sleep(4)  # anything left over would run in the next window
        assert served.metric("gitops_runs_total", trigger="stream", outcome="success") == 1
        assert set(branches(remote)) == {"main", branch}
        assert commits_on(remote, branch) == 1
        assert _stream_checkpoints(table), "the position was checkpointed after the publish"
        assert served.stop() == 0


def test_sigterm_releases_the_lease_and_a_restart_repeats_nothing(
    remote: Path,
    table: DynamoDBStore,  # noqa: F811
) -> None:
    with serving(serve_args(remote, table)) as served:
        served.wait_for(r"lease taken", 30)
        table.put("cluster#dev-k3s-2", {}, cluster=NEW_CLUSTER, author="t", comment="new")
        branch = "gitops-compiler/main/cluster-dev-k3s-2"
        eventually(lambda: branch in branches(remote), 180, f"branch {branch}")
        eventually(lambda: _stream_checkpoints(table), 30, "a checkpoint")
        assert served.stop() == 0
        served.wait_for(r"stopped; lease released", 5)
    lease = item(table, "lease#serve", "lease")
    assert lease is not None and lease["expires_at"] == {"N": "0"}
    with serving(serve_args(remote, table)) as again:
        again.wait_for(r"lease taken \(fence 2\)", 30)
        time.sleep(5)  # two windows: a record read again would publish now
        assert again.metric("gitops_runs_total", trigger="stream", outcome="success") == 0
        assert again.stop() == 0
    assert commits_on(remote, branch) == 1


def test_the_other_replica_takes_over_when_the_holder_is_killed_mid_publish(
    remote: Path,
    table: DynamoDBStore,  # noqa: F811
) -> None:
    with FakeGitHub(repos=[FAKE_REPO]) as github:
        env = environment(GITHUB_API_URL=github.url, GITOPS_GITHUB_TOKEN=FAKE_TOKEN)
        argv = serve_args(remote, table, "--forge", "github", "--forge-repo", FAKE_REPO)
        argv[argv.index("--forge") + 1] = "github"  # the first --forge (none) is replaced
        with serving(argv, env) as first, serving(argv, env) as second:
            eventually(
                lambda: first.metric("gitops_lease_held") + second.metric("gitops_lease_held"),
                30, "a holder",
            )  # fmt: skip
            holder, other = (
                (first, second) if first.metric("gitops_lease_held") else (second, first)
            )
            table.put("cluster#dev-k3s-2", {}, cluster=NEW_CLUSTER, author="t", comment="new")
            holder.wait_for(r"run \S+: 1 trigger\(s\), 1 cluster\(s\) affected", 60)
            os.kill(holder.process.pid, signal.SIGKILL)  # mid-publish: compiling
            holder.process.wait(10)
            assert not [line for line in holder.lines if "pushed" in line], "killed too late"
            other.wait_for(r"lease taken", 30)
            eventually(
                lambda: other.metric("gitops_runs_total", trigger="stream", outcome="success"),
                180, "the new holder published",
            )  # fmt: skip
            assert other.stop() == 0
        pulls = github.pulls()
    assert [p["head"]["ref"] for p in pulls] == ["gitops-compiler/main/cluster-dev-k3s-2"]
    assert commits_on(remote, "gitops-compiler/main/cluster-dev-k3s-2") == 1
