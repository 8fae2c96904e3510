"""One `serve` process: its threads (HTTP, lease heartbeat, stream reader) and the actor
loop, started and stopped together. SIGTERM sets `stop`: the current step finishes,
the lease is released, the server closes."""

from __future__ import annotations

import contextvars
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from compiler.errors import CompilerError, UsageError
from compiler.operations.trace import new_run_id
from compiler.options import Destination, SourceOptions, open_project, open_store
from compiler.publishing.watcher import poll
from compiler.service.actor import MAX_BACKOFF, Actor
from compiler.service.health import Readiness, cue_check, dynamodb_check, git_check
from compiler.service.http import Credentials, Front, listen
from compiler.service.lease import Lease
from compiler.service.metrics import ServiceMetrics
from compiler.service.streams import StreamReader, layer_pks, stream_arn
from compiler.service.triggers import DurableTriggers, Position, Trigger, TriggerQueue
from compiler.sources.dynamodb import DynamoDBStore, client_config


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    debounce: float = 3.0
    queue_size: int = 100
    lease_seconds: float = 30.0
    poll_interval: float = 900.0  # the safety net; the stream and the provisioner come first
    ready_interval: float = 10.0
    streams: bool = True


def _owner() -> str:
    return f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(3)}"


class Replica:
    def __init__(
        self,
        source: SourceOptions,
        destination: Destination,
        cue: str | None,
        settings: ServeSettings,
        log: Callable[[str], None],
    ) -> None:
        self.settings, self.log = settings, log
        project = open_project(source)
        store = open_store(source, project)
        if not isinstance(store, DynamoDBStore):
            raise UsageError("serve reads the config table: use --source dynamodb")
        self.store = store
        self.client: Any = boto3.client(
            "dynamodb", region_name=project.region, endpoint_url=store.endpoint_url,
            config=client_config(),
        )  # fmt: skip
        self.streams: Any = boto3.client(
            "dynamodbstreams", region_name=project.region, endpoint_url=store.endpoint_url,
            config=client_config(),
        )  # fmt: skip
        self.metrics = ServiceMetrics()
        self.queue = TriggerQueue(settings.queue_size)
        durable = DurableTriggers(self.client, store.table)
        self.lease = Lease(self.client, store.table, _owner(), settings.lease_seconds)
        self.actor = Actor(
            source, destination, cue, store, project, self.queue, durable, self.lease,
            self.metrics, self.client, store.table, log, settings.debounce,
        )  # fmt: skip
        readiness = Readiness(
            {"dynamodb": dynamodb_check(self.client, store.table),
             "git": git_check(destination.repo, destination.base), "cue": cue_check(cue)},
            settings.ready_interval,
        )  # fmt: skip
        front = Front(
            store, self.queue, durable, self.metrics, readiness,
            Credentials.from_environment(os.environ), new_run_id,
        )  # fmt: skip
        self.server = listen(settings.host, settings.port, front)
        self.reader: StreamReader | None = None

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    def run(self, stop: threading.Event) -> bool:
        """Serve until `stop`; True when the lease was released (or never held)."""
        if self.settings.streams:
            arn = stream_arn(self.client, self.store.table)
            if arn is None:
                self.log("the table has no stream: `table create --stream` turns it on")
            else:
                self.reader = StreamReader(self.client, self.streams, self.store.table, arn)
        threads = [
            threading.Thread(target=self.server.serve_forever, name="http", daemon=True),
            _in_context(self._heartbeat, stop, "lease"),
        ]
        if self.reader is not None:
            threads.append(_in_context(self._read_stream, stop, "stream"))
        for thread in threads:
            thread.start()
        self.log(f"listening on http://{self.address} as {self.lease.owner}")
        try:
            self._act(stop)
        finally:
            stop.set()
            for thread in threads[1:]:
                thread.join(timeout=30)
            released = self._release()
            self.server.shutdown()
            self.server.server_close()
        return released

    def _act(self, stop: threading.Event) -> None:
        next_poll = time.monotonic()
        while not stop.is_set():
            batch = self.queue.take(self.settings.debounce, wait=1.0)
            self.metrics.queue_depth.set(self.queue.depth())
            if self.lease.held and time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.settings.poll_interval
                self._safety_poll()
            try:
                self.actor.handle(batch)
            except CompilerError as err:  # DynamoDB down: wait longer each time
                self.actor.backoff = min(max(self.actor.backoff * 2, 5.0), MAX_BACKOFF)
                self.log(f"{err}; the triggers stay; next try in {self.actor.backoff:g} s")
            if self.actor.backoff:
                stop.wait(self.actor.backoff)

    def _safety_poll(self) -> None:
        """What neither the stream nor a call brought: layers whose versions moved since
        the last publish (the first poll of a holder only notes where they are)."""
        try:
            changes = poll(self.store, self.actor.project, self.actor.baseline)
        except CompilerError as err:
            self.log(f"safety-net poll: {err}")
            return
        if not self.actor.baseline:
            self.actor.baseline.update(changes.seen)
        elif changes.clusters:
            self.queue.offer(Trigger("poll", new_run_id(), clusters=tuple(changes.clusters)))

    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.is_set():
            was = self.lease.held
            try:
                held = self.lease.acquire_or_renew()
            except CompilerError as err:
                self.log(f"lease: {err}")
                held = False
            self.metrics.lease_held.set(1 if held else 0)
            if held != was:
                self.log(f"lease {'taken' if held else 'lost'} (fence {self.lease.fence})")
                if self.reader is not None:
                    self.reader.reset()  # a new holder resumes from the checkpoints
            stop.wait(self.settings.lease_seconds / 3)

    def _read_stream(self, stop: threading.Event) -> None:
        carried: list[Position] = []  # rounds of our own items: checkpointed with the next
        while not stop.is_set():
            if self.reader is None or not self.lease.held:
                stop.wait(0.5)
                continue
            try:
                batches = self.reader.read()
            except CompilerError as err:
                self.log(f"stream: {err}")
                stop.wait(5)
                continue
            for shard, records in batches:
                pks, newest = layer_pks(records)
                last = str(records[-1]["dynamodb"]["SequenceNumber"])
                carried.append(Position(shard, last, newest, self.reader.finished(shard)))
                if not pks:
                    continue
                self.metrics.stream_lag.labels(shard).set(max(0.0, time.time() - newest))
                trigger = Trigger("stream", new_run_id(), pks=tuple(sorted(pks)),
                                  positions=tuple(carried))  # fmt: skip
                if not self.queue.put(trigger, stop):
                    return
                self.metrics.triggers.labels("stream", "accepted").inc()
                carried = []
            stop.wait(0.2 if batches else 1.0)

    def _release(self) -> bool:
        try:
            self.lease.release()
        except CompilerError as err:
            self.log(f"lease not released ({err}); the other replica waits for its expiry")
            return False
        return True


def _in_context(
    target: Callable[[threading.Event], None], stop: threading.Event, name: str
) -> threading.Thread:
    """A thread that sees the run's operations context (run id, audit log)."""
    context = contextvars.copy_context()
    return threading.Thread(target=context.run, args=(target, stop), name=name, daemon=True)
