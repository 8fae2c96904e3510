"""The Argo CD guard's decisions, as a pure function of reports, records and the time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from compiler.argocd.client import AppStatus, ClusterReport
from compiler.argocd.guard import (
    Observation,
    RecordGood,
    RollBack,
    Stop,
    Wait,
    decide,
    first_seen,
    standing,
)
from compiler.argocd.incidents import Incident, Kind
from compiler.argocd.lastgood import GoodState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GRACE = timedelta(minutes=10)
GOOD = GoodState("dev-k3s", 3, "r1", {"layers": []}, {}, "2026-01-01T00:00:00Z")


def report(*apps: tuple[str, str, str, str]) -> ClusterReport:
    """(name, health, sync, revision) or a failed sync as health 'Failed'."""
    return ClusterReport(
        "dev-k3s",
        tuple(
            AppStatus(
                name,
                "Healthy" if health == "Failed" else health,
                sync,
                revision,
                "Failed" if health == "Failed" else "Succeeded",
                (revision,),
            )
            for name, health, sync, revision in apps
        ),
    )


def incident(kind: Kind, number: int, revision: str = "r2", good_version: int = 3) -> Incident:
    return Incident(kind, number, revision, good_version, "why", "2026-01-01T00:00:00Z")


DEGRADED = report(("dev-k3s-bootstrap", "Degraded", "Synced", "r2"))


def observe(
    rep: ClusterReport = DEGRADED,
    good: GoodState | None = GOOD,
    incidents: Sequence[Incident] = (),
    since: datetime | None = T0,
) -> Observation:
    return Observation(rep, good, incidents, since)


def test_all_synced_and_healthy_at_a_new_revision_is_recorded_once() -> None:
    healthy = report(
        ("dev-k3s-bootstrap", "Healthy", "Synced", "r2"),
        ("dev-k3s-ingress-nginx", "Healthy", "Synced", "r2"),
    )
    assert decide(observe(healthy, since=None), T0, GRACE) == RecordGood("dev-k3s", "r2")
    assert decide(observe(healthy, good=None, since=None), T0, GRACE) == RecordGood("dev-k3s", "r2")
    recorded = GoodState("dev-k3s", 4, "r2", {}, {}, "")
    assert decide(observe(healthy, good=recorded, since=None), T0, GRACE) is None
    # One Application still progressing, or two revisions: not good yet, not failing.
    mixed = report(
        ("dev-k3s-bootstrap", "Healthy", "Synced", "r2"),
        ("dev-k3s-ingress-nginx", "Progressing", "Synced", "r2"),
    )
    assert decide(observe(mixed, since=None), T0, GRACE) is None


def test_a_failure_waits_out_the_grace_period_then_rolls_back_to_the_latest_good() -> None:
    waited = decide(observe(), T0 + timedelta(minutes=4), GRACE)
    assert waited == Wait("dev-k3s", "r2", timedelta(minutes=6))
    action = decide(observe(), T0 + GRACE, GRACE)
    assert isinstance(action, RollBack)
    assert (action.revision, action.good) == ("r2", GOOD)
    assert "dev-k3s-bootstrap Degraded/Synced" in action.reason and "10m00s" in action.reason
    failed_sync = report(("dev-k3s-bootstrap", "Failed", "OutOfSync", "r2"))
    assert isinstance(decide(observe(failed_sync), T0 + GRACE, GRACE), RollBack)
    assert isinstance(decide(observe(since=T0), T0, timedelta(0)), RollBack)


def test_the_grace_period_counts_from_when_that_revision_first_failed() -> None:
    seen = first_seen(None, "r2", T0)
    assert seen == ("r2", T0)
    assert first_seen(seen, "r2", T0 + GRACE) == ("r2", T0)
    assert first_seen(seen, "r3", T0 + GRACE) == ("r3", T0 + GRACE)
    assert first_seen(seen, None, T0 + GRACE) is None


def test_never_twice_for_the_same_failure() -> None:
    rolled = [incident("rollback", 1, "r2")]
    assert decide(observe(incidents=rolled), T0 + GRACE, GRACE) is None
    # Even after a clear: that failure had its rollback.
    cleared = [*rolled, incident("clear", 2, "")]
    assert decide(observe(incidents=cleared), T0 + GRACE, GRACE) is None


def test_never_past_the_last_known_good() -> None:
    none = decide(observe(good=None), T0 + GRACE, GRACE)
    assert isinstance(none, Stop) and "no last known good is recorded" in none.reason
    itself = decide(
        observe(report(("dev-k3s-bootstrap", "Degraded", "Synced", "r1"))), T0 + GRACE, GRACE
    )
    assert isinstance(itself, Stop) and "the last known good itself" in itself.reason


def test_the_rollbacks_own_failure_stops_acting_until_cleared_or_a_new_good_report() -> None:
    rolled = [incident("rollback", 1, "r2")]
    # r3, the rollback's revision, fails too: stop and alert, no second rollback.
    r3 = report(("dev-k3s-bootstrap", "Degraded", "Synced", "r3"))
    stop = decide(observe(r3, incidents=rolled), T0 + GRACE, GRACE)
    assert isinstance(stop, Stop) and "did not heal" in stop.reason and stop.good_version == 3
    stopped = [*rolled, incident("stop", 2, "r3")]
    assert standing(stopped, 3).stopped is not None
    assert decide(observe(r3, incidents=stopped), T0 + GRACE, GRACE) is None
    r4 = report(("dev-k3s-bootstrap", "Degraded", "Synced", "r4"))
    assert decide(observe(r4, incidents=stopped), T0 + GRACE, GRACE) is None
    # A person clears it: the guard acts again, on a failure it has not answered.
    cleared = [*stopped, incident("clear", 3, "")]
    assert standing(cleared, 3).stopped is None
    assert isinstance(decide(observe(r4, incidents=cleared), T0 + GRACE, GRACE), RollBack)
    # Or Argo CD reports a new good revision: the stop was about the older good state.
    newer = GoodState("dev-k3s", 4, "r5", {}, {}, "")
    assert isinstance(
        decide(observe(r4, good=newer, incidents=stopped), T0 + GRACE, GRACE), RollBack
    )


def test_a_failed_rollback_is_a_stop_like_any_other() -> None:
    failed = [incident("rollback", 1, "r2"), incident("stop", 2, "r2")]
    r3 = report(("dev-k3s-bootstrap", "Degraded", "Synced", "r3"))
    assert decide(observe(r3, incidents=failed), T0 + GRACE, GRACE) is None


@pytest.mark.parametrize("health", ["Progressing", "Missing", "Unknown", "Suspended"])
def test_only_degraded_or_a_failed_sync_is_a_failure(health: str) -> None:
    rep = report(("dev-k3s-bootstrap", health, "OutOfSync", "r2"))
    assert decide(observe(rep), T0 + GRACE * 10, GRACE) is None


def test_an_add_ons_chart_version_is_not_the_clusters_revision() -> None:
    bootstrap = AppStatus("dev-k3s-bootstrap", "Healthy", "Synced", "r2", "Succeeded", ("r2",))
    addon = AppStatus(
        "dev-k3s-ingress-nginx", "Healthy", "Synced", "4.11.2", "Succeeded", ("4.11.2",), True
    )
    healthy = ClusterReport("dev-k3s", (bootstrap, addon))
    assert decide(observe(healthy, since=None), T0, GRACE) == RecordGood("dev-k3s", "r2")
    degraded = ClusterReport("dev-k3s", (bootstrap, replace(addon, health="Degraded")))
    action = decide(observe(degraded), T0 + GRACE, GRACE)
    assert isinstance(action, RollBack) and action.revision == "r2"
