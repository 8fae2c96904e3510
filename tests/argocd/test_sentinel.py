"""The sentinel's I/O around the guard: a clock of the test's own, a fake Argo CD, moto's
table, and a rollback that the test scripts (the real one is tested end to end)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from compiler.argocd.client import ArgoCDClient
from compiler.argocd.deployed import Deployed
from compiler.argocd.guard import RollBack
from compiler.argocd.incidents import Incidents
from compiler.argocd.lastgood import LastKnownGood
from compiler.argocd.sentinel import Reverted, Sentinel, clear
from compiler.errors import OutsideError
from compiler.operations.http import HttpClient, RetryPolicy
from compiler.sources.dynamodb import DynamoDBStore
from tests.conftest import REGION
from tests.fake_argocd import FAKE_TOKEN, FakeArgoCD

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LOCK = {"cluster": "dev-k3s", "layers": [{"layer": "cluster/dev-k3s", "version": 2}]}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_grace_period_one_rollback_and_a_failed_rollback_stops(
    server_store: DynamoDBStore,
) -> None:
    lkg = LastKnownGood(server_store.table, region=REGION, endpoint_url=server_store.endpoint_url)
    incidents = Incidents(server_store.table, region=REGION, endpoint_url=server_store.endpoint_url)
    clock = Clock()
    rollbacks: list[RollBack] = []
    events: list[Mapping[str, Any]] = []
    logged: list[str] = []
    outcome: list[Reverted | OutsideError] = [Reverted({"cluster#dev-k3s": 4}, "https://pr/1")]

    def roll_back(action: RollBack) -> Reverted:
        rollbacks.append(action)
        result = outcome[0]
        if isinstance(result, OutsideError):
            raise result
        return result

    with FakeArgoCD() as argocd:
        http = HttpClient(timeout=5, policy=RetryPolicy(attempts=1, backoff=0.01))
        sentinel = Sentinel(
            clusters=lambda: ["dev-k3s"],
            argocd=ArgoCDClient(argocd.url, FAKE_TOKEN, http),
            lkg=lkg,
            incidents=incidents,
            deployed_at=lambda c, r: Deployed(LOCK, frozenset({"dev-k3s-bootstrap"})),
            roll_back=roll_back,
            notify=events.append,
            log=logged.append,
            grace=timedelta(minutes=10),
            clock=clock,
        )
        argocd.report(
            "dev-k3s-bootstrap", "dev-k3s", health="Healthy", sync="Synced", revision="r1"
        )
        assert sentinel.poll() == {}
        good = lkg.latest("dev-k3s")
        assert good is not None and good.revision == "r1" and good.lock == LOCK

        argocd.report(
            "dev-k3s-bootstrap", "dev-k3s", health="Healthy", sync="OutOfSync", revision="r2",
            phase="Failed",
        )  # fmt: skip
        assert sentinel.poll() == {}
        clock.now = T0 + timedelta(minutes=9)
        assert sentinel.poll() == {} and rollbacks == []
        assert "rollback in 60 s unless it heals" in logged[-1]
        clock.now = T0 + timedelta(minutes=10)
        assert sentinel.poll() == {"cluster#dev-k3s": 4}
        assert [(a.revision, a.good.revision) for a in rollbacks] == [("r2", "r1")]
        assert events[-1]["event"] == "argocd-rollback"
        assert events[-1]["pull_request"] == "https://pr/1"
        clock.now = T0 + timedelta(hours=1)
        assert sentinel.poll() == {} and len(rollbacks) == 1  # never twice

        # Cleared by a person while nothing is stopped: nothing to clear.
        assert clear(incidents, lkg, "dev-k3s", who="alice", now=clock.now) is None
        # A new failure whose rollback cannot be published: alert and stop.
        outcome[0] = OutsideError("push to rollback-dev-k3s failed")
        argocd.report(
            "dev-k3s-bootstrap", "dev-k3s", health="Degraded", sync="Synced", revision="r3"
        )
        clock.now = T0 + timedelta(hours=2)
        sentinel.poll()
        clock.now = T0 + timedelta(hours=3)
        sentinel.poll()
        # r3 after the rollback to r1 for r2: the rollback did not heal; stop, no rollback.
        assert len(rollbacks) == 1
        assert [i.kind for i in incidents.history("dev-k3s")] == ["rollback", "stop"]
        assert events[-1]["event"] == "argocd-stop" and "did not heal" in events[-1]["error"]
        sentinel.poll()
        assert len(events) == 2  # one alert per stop

        # Cleared: acting again, and this time the rollback itself fails: a stop.
        assert clear(incidents, lkg, "dev-k3s", who="alice", now=clock.now) is not None
        sentinel.poll()
        assert [a.revision for a in rollbacks] == ["r2", "r3"]
        kinds = [i.kind for i in incidents.history("dev-k3s")]
        assert kinds == ["rollback", "stop", "clear", "rollback", "stop"]
        assert "the rollback to the last known good #1 failed: push to" in events[-1]["error"]
        assert FAKE_TOKEN not in " ".join(logged) + repr(events)
