"""The actor: what one debounce window of triggers becomes (one compile, one pull request).

Only while this replica holds the lease. Changed layers become clusters as
`watch` computes them (`fleet_uses`), compiled pinned to the versions seen;
the provisioner's calls recorded in the table join the batch. After a publish
that succeeded, one transaction (conditional on the lease still being ours)
advances the stream checkpoints and deletes the calls it served; a publish
that failed puts its triggers back for the next window, after a back-off.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from compiler.errors import CompilerError, OutsideError
from compiler.operations import steps
from compiler.operations.audit import AuditLog
from compiler.options import Destination, Selection, SourceOptions
from compiler.project import Project
from compiler.publishing.publication import Published, publish_tree, report_published
from compiler.publishing.watcher import Changes, fleet_uses
from compiler.service.lease import Lease
from compiler.service.metrics import ServiceMetrics
from compiler.service.streams import checkpoint_items
from compiler.service.triggers import DurableTriggers, Trigger, TriggerQueue
from compiler.sources import ConfigStore

_TRANSACTION_ITEMS = 100  # DynamoDB's limit per TransactWriteItems
MAX_BACKOFF = 300.0


class _ObservedAudit(AuditLog):
    """The run's audit log, and every step's duration into the histogram."""

    def __init__(self, inner: AuditLog, observe: Callable[[str, float], None]) -> None:
        super().__init__(None)
        self._inner, self._observe = inner, observe

    def record(self, **entry: Any) -> None:
        self._observe(str(entry["step"]), float(entry["duration"]))
        self._inner.record(**entry)


@dataclass
class Actor:
    source: SourceOptions
    destination: Destination
    cue: str | None
    store: ConfigStore
    project: Project
    queue: TriggerQueue
    durable: DurableTriggers
    lease: Lease
    metrics: ServiceMetrics
    client: Any  # the table's DynamoDB client, for the completing transaction
    table: str
    log: Callable[[str], None]
    debounce: float = 0.0
    backoff: float = 0.0
    baseline: dict[str, int] = field(default_factory=dict)  # versions last published

    def handle(self, batch: list[Trigger]) -> None:
        """One window's triggers: publish them if we hold the lease."""
        if not self.lease.held:
            # The provisioner's calls wait in the table for the holder; streams and
            # polls run only on the holder.
            return
        pending = self.durable.pending(self.queue.capacity)
        if pending and not batch:
            # Calls another replica recorded: let the rest of their window arrive too.
            time.sleep(self.debounce)
            pending = self.durable.pending(self.queue.capacity)
        batch = _unique([*batch, *pending])
        if not batch:
            return
        kinds = sorted({t.source for t in batch})
        trigger = kinds[0] if len(kinds) == 1 else "mixed"
        run_id = next((t.run_id for t in batch if t.source == "http"), batch[0].run_id)
        try:
            ok = self._publish(batch, run_id, trigger)
        except CompilerError as err:
            self.metrics.runs.labels(trigger, "failed").inc()
            self.metrics.publishes.labels("failed").inc()
            self.log(f"run {run_id}: {err}")
            ok = False
        if ok:
            self.backoff = 0.0
            return
        self.backoff = min(max(self.backoff * 2, 5.0), MAX_BACKOFF)
        self.log(f"run {run_id}: {len(batch)} trigger(s) kept; next try in {self.backoff:g} s")
        for item in batch:
            if item.source != "http":  # the calls stay in the table anyway
                self.queue.offer(item)

    def _publish(self, batch: Sequence[Trigger], run_id: str, trigger: str) -> bool:
        started = time.perf_counter()
        changes = affected_by(
            self.store, self.project, {pk for t in batch for pk in t.pks},
            {c for t in batch for c in t.clusters},
        )  # fmt: skip
        self.metrics.step_seconds.labels("resolve").observe(time.perf_counter() - started)
        if changes is None:
            self._complete(batch)
            self.metrics.runs.labels(trigger, "nothing-affected").inc()
            return True
        affected = changes.clusters
        self.log(f"run {run_id}: {len(batch)} trigger(s), {len(affected)} cluster(s) affected")
        published = self._publish_changes(changes, run_id)
        if published.outcome is None:
            for violation in published.violations:
                self.metrics.violations.labels(violation.rule).inc()
            self.metrics.runs.labels(trigger, "violations").inc()
            self.metrics.publishes.labels("blocked").inc()
            return False
        self._complete(batch)
        self.baseline.update(changes.seen)
        self.metrics.runs.labels(trigger, "success").inc()
        self.metrics.publishes.labels(published.outcome.status).inc()
        self.metrics.last_success.set(time.time())
        return True

    def _publish_changes(self, changes: Changes, run_id: str) -> Published:
        selection = Selection(clusters=tuple(changes.clusters), pin=changes.pin())
        observed = _ObservedAudit(
            steps.current().audit,
            lambda step, seconds: self.metrics.step_seconds.labels(step).observe(seconds),
        )
        with steps.run_as(run_id, audit=observed) as run:
            published = publish_tree(
                self.source, selection, self.destination, run=run.run, cue=self.cue
            )
        report_published(published, "text")
        sys.stdout.flush()
        return published

    def _complete(self, batch: Sequence[Trigger]) -> None:
        """Checkpoints forward and served calls gone, only if the lease is still ours."""
        positions = [p for t in batch for p in t.positions]
        writes: list[Mapping[str, Any]] = [
            *checkpoint_items(self.table, positions),
            *(
                {"Delete": {"TableName": self.table,
                            "Key": {"pk": {"S": "trigger#pending"}, "sk": {"S": t.delivery}}}}
                for t in batch if t.delivery
            ),
        ]  # fmt: skip
        step = _TRANSACTION_ITEMS - 1
        for start in range(0, len(writes), step):
            chunk = [self.lease.condition(), *writes[start : start + step]]
            try:
                self.client.transact_write_items(TransactItems=chunk)
            except (ClientError, BotoCoreError) as err:
                raise OutsideError(f"DynamoDB while checkpointing (lease lost?): {err}") from None
        for position in positions:
            self.metrics.stream_lag.labels(position.shard).set(0)


def affected_by(
    store: ConfigStore, project: Project, changed: set[str], named: set[str]
) -> Changes | None:
    """The clusters changed layers (pks) affect as `watch` computes them, plus the named
    clusters that have a record; pinned to the versions seen. None: no cluster."""
    seen, uses = fleet_uses(store, project)
    affected = sorted(
        {c for c in named if c in uses}
        | {c for c, pks in uses.items() if changed.intersection(pks)}
    )
    if not affected:
        return None
    return Changes(affected, {pk: v for pk, v in seen.items() if v})


def _unique(batch: Sequence[Trigger]) -> list[Trigger]:
    """A call recorded in the table and also queued here counts once."""
    seen: set[str] = set()
    kept = []
    for trigger in batch:
        if trigger.delivery is not None:
            if trigger.delivery in seen:
                continue
            seen.add(trigger.delivery)
        kept.append(trigger)
    return kept
