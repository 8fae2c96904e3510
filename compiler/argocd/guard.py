"""The Argo CD guard's decisions: a pure function from what Argo CD reports, the cluster's
last known good and its incidents, and the time, to what to do (issue 19, section 4).

- every Application of the cluster Synced and Healthy at one revision that is not
  the recorded good state: record it (the new last known good);
- Applications Degraded, or their sync operation Failed or Errored, at a revision:
  wait out the grace period from when that failure was first seen, then roll back
  to the last known good, once per failure;
- never past the last known good: with none recorded, or when the last known good
  itself fails, or when the rollback to it did not heal the cluster (its own
  revision fails too), stop: alert once and do nothing more for the cluster until
  a person clears it (`rollback --clear`) or Argo CD reports a new good revision.

I/O (Argo CD, the table, git, the rollback) is the caller's (`compiler/argocd/sentinel.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from compiler.argocd.client import ClusterReport, describe_failures
from compiler.argocd.incidents import Incident
from compiler.argocd.lastgood import GoodState


@dataclass(frozen=True)
class Observation:
    """One cluster at one poll."""

    report: ClusterReport
    good: GoodState | None  # the latest recorded
    incidents: Sequence[Incident]  # oldest first
    failing_since: datetime | None  # when the failing revision was first seen failing


@dataclass(frozen=True)
class RecordGood:
    cluster: str
    revision: str


@dataclass(frozen=True)
class RollBack:
    cluster: str
    revision: str  # the failing one
    good: GoodState  # where to: the latest good state, never an older one
    reason: str


@dataclass(frozen=True)
class Stop:
    cluster: str
    revision: str
    good_version: int
    reason: str


@dataclass(frozen=True)
class Wait:
    cluster: str
    revision: str
    left: timedelta


Action = RecordGood | RollBack | Stop | Wait


@dataclass(frozen=True)
class Standing:
    """What the incidents mean now."""

    latest: int  # the number of the latest incident (0: none)
    rolled_back: frozenset[str]  # failing revisions a rollback answered, ever
    spent: Incident | None  # a rollback to the current good state since the last clear
    stopped: Incident | None  # a stop at the current good state since the last clear


def standing(incidents: Sequence[Incident], good_version: int) -> Standing:
    rolled = frozenset(i.revision for i in incidents if i.kind == "rollback")
    since_clear: list[Incident] = []
    for incident in incidents:
        since_clear = [] if incident.kind == "clear" else [*since_clear, incident]
    current = [i for i in since_clear if i.good_version == good_version]
    spent = next((i for i in reversed(current) if i.kind == "rollback"), None)
    stopped = next((i for i in reversed(current) if i.kind == "stop"), None)
    latest = incidents[-1].number if incidents else 0
    return Standing(latest, rolled, spent, stopped)


def failing_revision(report: ClusterReport) -> str | None:
    """The revision the cluster fails at: its git revision (an add-on's Application
    reports a chart version), else its first failing git Application's."""
    failing = report.failing
    if not failing:
        return None
    if report.revision is not None:
        return report.revision
    return next((a.revision for a in failing if not a.chart), failing[0].revision)


def first_seen(
    previous: tuple[str, datetime] | None, revision: str | None, now: datetime
) -> tuple[str, datetime] | None:
    """When the current failure began: kept while the same revision fails."""
    if revision is None:
        return None
    if previous is not None and previous[0] == revision:
        return previous
    return (revision, now)


def decide(observation: Observation, now: datetime, grace: timedelta) -> Action | None:
    report, good = observation.report, observation.good
    cluster = report.cluster
    healthy = report.good_revision
    if healthy is not None:
        return RecordGood(cluster, healthy) if good is None or good.revision != healthy else None
    revision = failing_revision(report)
    if revision is None:
        return None  # progressing, out of sync, or no Applications yet: nothing to judge
    failed_for = now - (observation.failing_since or now)
    if failed_for < grace:
        return Wait(cluster, revision, grace - failed_for)
    good_version = good.version if good is not None else 0
    state = standing(observation.incidents, good_version)
    if state.stopped is not None or revision in state.rolled_back:
        return None  # acted on already: never twice
    failures = describe_failures(report.failing)
    if good is None:
        return Stop(
            cluster,
            revision,
            0,
            f"revision {revision} fails ({failures}) and no last known good is recorded "
            "to roll back to",
        )
    if revision == good.revision:
        return Stop(
            cluster,
            revision,
            good_version,
            f"the last known good itself (revision {revision}, #{good.version}) fails now "
            f"({failures}): there is nothing newer known good to roll back to",
        )
    if state.spent is not None:
        return Stop(
            cluster,
            revision,
            good_version,
            f"the rollback to the last known good #{good.version} (for revision "
            f"{state.spent.revision}) did not heal the cluster: revision {revision} fails "
            f"too ({failures})",
        )
    return RollBack(
        cluster,
        revision,
        good,
        f"revision {revision} fails ({failures}) for {_duration(failed_for)}, past the grace "
        f"period of {_duration(grace)}",
    )


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
