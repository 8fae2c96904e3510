"""The service's Prometheus metrics, on a registry of its own (one per service, so
tests can run several in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
# A compile of one cluster takes ~1 s with the WebAssembly cue; a fleet, minutes.
_STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter(
            "gitops_runs", "Compile-and-publish runs, by trigger and outcome",
            ("trigger", "outcome"), registry=r,
        )  # fmt: skip
        self.triggers = Counter(
            "gitops_triggers", "Triggers received, by source and what became of them",
            ("source", "result"), registry=r,
        )  # fmt: skip
        self.step_seconds = Histogram(
            "gitops_step_duration_seconds", "Duration of a run's steps",
            ("step",), buckets=_STEP_BUCKETS, registry=r,
        )  # fmt: skip
        self.violations = Counter(
            "gitops_violations", "Policy violations found, by rule id", ("rule",), registry=r
        )
        self.publishes = Counter(
            "gitops_publishes", "Publishes, by outcome (pushed, up-to-date, no-change, failed)",
            ("outcome",), registry=r,
        )  # fmt: skip
        self.queue_depth = Gauge(
            "gitops_queue_depth", "Triggers waiting for the next run", registry=r
        )
        self.stream_lag = Gauge(
            "gitops_stream_lag_seconds", "Age of the oldest unpublished stream record, per shard",
            ("shard",), registry=r,
        )  # fmt: skip
        self.last_success = Gauge(
            "gitops_last_successful_publish_timestamp_seconds",
            "Unix time of the last successful publish", registry=r,
        )  # fmt: skip
        self.lease_held = Gauge(
            "gitops_lease_held", "1 while this replica holds the lease and may publish", registry=r
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
