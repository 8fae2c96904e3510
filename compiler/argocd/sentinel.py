"""`watch --argocd-server`: each poll, ask Argo CD about every cluster the compiler
publishes and carry out what the guard decides (`compiler/argocd/guard.py`): record a
good revision with its config-lock.json, roll a failing one back to the last known
good, or stop and alert. Every outside effect is passed in, so tests run it with a
fake Argo CD, a clock of their own and the real table and git.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from compiler.argocd.client import ArgoCDClient, ClusterReport
from compiler.argocd.deployed import Deployed, DeployedRepository
from compiler.argocd.guard import (
    Action,
    Observation,
    RecordGood,
    RollBack,
    Stop,
    Wait,
    decide,
    failing_revision,
    first_seen,
    standing,
)
from compiler.argocd.incidents import Incident, Incidents
from compiler.argocd.lastgood import LastKnownGood
from compiler.errors import CompilerError, InputError, OutsideError
from compiler.operations import steps
from compiler.options import Destination, SourceOptions
from compiler.project import Project
from compiler.publishing.publication import report_published
from compiler.publishing.rollback import good_pin, guard_records, roll_back
from compiler.sources import ConfigStore
from compiler.sources.items import format_timestamp


class Reports(Protocol):
    def cluster_report(self, cluster: str) -> ClusterReport: ...


@dataclass(frozen=True)
class Reverted:
    """What a rollback did: the table versions it wrote (pk -> version) and its PR."""

    written: Mapping[str, int]
    pull_request: str | None


@dataclass
class Sentinel:
    clusters: Callable[[], Sequence[str]]
    argocd: Reports
    lkg: LastKnownGood
    incidents: Incidents
    deployed_at: Callable[[str, str], Deployed | None]  # (cluster, revision) -> its tree
    roll_back: Callable[[RollBack], Reverted]  # raises CompilerError when it fails
    notify: Callable[[Mapping[str, Any]], None]  # the alert and status hooks
    log: Callable[[str], None]
    grace: timedelta
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _since: dict[str, tuple[str, datetime]] = field(default_factory=dict)

    def poll(self) -> dict[str, int]:
        """One look at every cluster; the table versions its rollbacks wrote (the
        watcher counts them as published: their pull requests carry them)."""
        written: dict[str, int] = {}
        for cluster in self.clusters():
            report = self.argocd.cluster_report(cluster)
            now = self.clock()
            seen = first_seen(self._since.get(cluster), failing_revision(report), now)
            if seen is None:
                self._since.pop(cluster, None)
            else:
                self._since[cluster] = seen
            good = self.lkg.latest(cluster)
            # Incidents matter only to a failure: a healthy fleet costs no read of them.
            history = self.incidents.history(cluster) if seen is not None else []
            observation = Observation(report, good, history, seen[1] if seen else None)
            action = decide(observation, now, self.grace)
            if action is not None:
                written.update(self._act(action, report, history, now))
        return written

    def _act(
        self, action: Action, report: ClusterReport, history: Sequence[Incident], now: datetime
    ) -> Mapping[str, int]:
        cluster = action.cluster
        if isinstance(action, Wait):
            self.log(
                f"{cluster}: revision {action.revision} fails; rollback in "
                f"{int(action.left.total_seconds())} s unless it heals"
            )
        elif isinstance(action, RecordGood):
            self._record(action, report, now)
        elif isinstance(action, Stop):
            self._stop(cluster, action.revision, action.good_version, action.reason, history, now)
        else:
            return self._roll_back(action, history, now)
        return {}

    def _record(self, action: RecordGood, report: ClusterReport, now: datetime) -> None:
        deployed = self.deployed_at(action.cluster, action.revision)
        if deployed is None:
            self.log(
                f"{action.cluster}: revision {action.revision} is Synced and Healthy but is not "
                "a tree the compiler published on the base branch: not recorded"
            )
            return
        missing = deployed.applications.difference(a.name for a in report.apps)
        if missing:
            self.log(
                f"{action.cluster}: revision {action.revision} is not good yet: Argo CD reports "
                f"no {', '.join(sorted(missing))} (the ApplicationSets generate it there)"
            )
            return
        shown = {a.name: {"health": a.health, "sync": a.sync} for a in report.apps}
        state = self.lkg.record(action.cluster, action.revision, deployed.lock, shown, _stamp(now))
        if state is not None:
            self.log(
                f"{action.cluster}: last known good #{state.version} is revision "
                f"{action.revision} (all {len(report.apps)} Application(s) Synced and Healthy)"
            )

    def _stop(
        self,
        cluster: str,
        revision: str,
        good_version: int,
        reason: str,
        history: Sequence[Incident],
        now: datetime,
    ) -> None:
        after = standing(history, good_version).latest
        stop = self.incidents.append(
            cluster,
            after,
            kind="stop",
            revision=revision,
            good_version=good_version,
            reason=reason,
            created_at=_stamp(now),
        )
        if stop is None:
            return  # another watcher wrote first; the next poll reads what it did
        message = (
            f"{cluster}: {reason}; not acting on the cluster until a person clears it "
            f"(`gitops-compiler rollback --clear {cluster}`) or Argo CD reports a new good revision"
        )
        self.log(message)
        self.notify({"event": "argocd-stop", "cluster": cluster, "revision": revision,
                     "status": "stopped", "error": message})  # fmt: skip

    def _roll_back(
        self, action: RollBack, history: Sequence[Incident], now: datetime
    ) -> Mapping[str, int]:
        cluster, good = action.cluster, action.good
        after = standing(history, good.version).latest
        # The claim comes first: a crash or a racing watcher after it never rolls back twice.
        claim = self.incidents.append(
            cluster,
            after,
            kind="rollback",
            revision=action.revision,
            good_version=good.version,
            reason=action.reason,
            created_at=_stamp(now),
        )
        if claim is None:
            return {}
        self.log(
            f"{cluster}: {action.reason}: rolling back to the last known good #{good.version} "
            f"(revision {good.revision})"
        )
        try:
            reverted = self.roll_back(action)
        except CompilerError as err:
            self._stop(
                cluster,
                action.revision,
                good.version,
                f"the rollback to the last known good #{good.version} failed: {err}",
                [*history, claim],
                now,
            )
            return {}
        event = {
            "event": "argocd-rollback",
            "cluster": cluster,
            "revision": action.revision,
            "status": "rolled-back",
            "error": action.reason,
            "last_known_good": {"version": good.version, "revision": good.revision},
            "pull_request": reverted.pull_request,
        }
        self.notify(event)
        return reverted.written


def clear(
    incidents: Incidents, lkg: LastKnownGood, cluster: str, *, who: str, now: datetime
) -> Incident | None:
    """A person's clear: the guard acts on the cluster again. None: nothing to clear."""
    history = incidents.history(cluster)
    good = lkg.latest(cluster)
    state = standing(history, good.version if good else 0)
    if state.stopped is None:
        return None
    written = incidents.append(
        cluster,
        state.latest,
        kind="clear",
        revision="",
        good_version=good.version if good else 0,
        reason=f"cleared by {who}",
        created_at=_stamp(now),
    )
    if written is None:
        raise OutsideError(f"cluster {cluster}: a watch wrote an incident meanwhile; run again")
    return written


@contextmanager
def opened_sentinel(
    source: SourceOptions,
    store: ConfigStore,
    project: Project,
    destination: Destination,
    *,
    server: str | None,
    grace: timedelta,
    cue: str | None,
    log: Callable[[str], None],
    environ: Mapping[str, str],
) -> Iterator[Sentinel]:
    """The sentinel of a `watch`: Argo CD's API, the table's records, the Argo CD
    repository, and the same rollback as `rollback --last-known-good`."""
    lkg, incidents = guard_records(store, project)
    client = ArgoCDClient.from_environment(server, environ)
    deployed = DeployedRepository(destination.repo, destination.base, environ=environ)
    numbers = iter(range(1, 2**31))
    labels = tuple(dict.fromkeys((*destination.labels, "rollback")))
    destination = dataclasses.replace(destination, branch=None, labels=labels)

    def roll_back_to(action: RollBack) -> Reverted:
        pin = good_pin(store, project, action.good)
        with steps.child_run(f"rollback{next(numbers)}") as child:
            rolled = roll_back(
                source, store, project, action.cluster, pin, destination, run=child.run, cue=cue
            )
            report_published(rolled.published, "text")
        outcome = rolled.published.outcome
        if outcome is None:
            raise InputError("its compile found violations (above)", cluster=action.cluster)
        return Reverted(rolled.written, outcome.pull.pull.url if outcome.pull else None)

    def notify(event: Mapping[str, Any]) -> None:
        notifier = steps.current().notifier
        record = {"command": "watch", "run_id": steps.current().run.id, **event}
        notifier.alert(record)
        notifier.status(record)

    try:
        yield Sentinel(
            clusters=store.list_clusters,
            argocd=client,
            lkg=lkg,
            incidents=incidents,
            deployed_at=deployed.at,
            roll_back=roll_back_to,
            notify=notify,
            log=log,
            grace=grace,
        )
    finally:
        client.close()
        deployed.close()


def _stamp(now: datetime) -> str:
    return format_timestamp(now)
