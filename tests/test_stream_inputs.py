"""Reading ahead (issue 18): `stream_inputs` gives each cluster as soon as its round of
reads is in, while a thread reads the next rounds, so the merge uses the time the
compile otherwise spent waiting for the table.

The store is the examples' snapshot with a gate on one cluster's record: its read
waits (bounded) until the test opens the gate, which tells whether a cluster was
given before every read was done.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from compiler import layers
from compiler.errors import InputError
from compiler.layers import load_inputs, stream_inputs
from compiler.model import LayerVersion, cluster_pk
from compiler.project import load_project
from compiler.sources import Pin
from compiler.sources.snapshot import SnapshotStore
from tests.conftest import ROOT

NAMES = ["dev-k3s", "prod-eks-1", "test-k3s"]
GATE_SECONDS = 20  # a gate never opened means the stream waited for every read


class GatedStore(SnapshotStore):
    """The examples, the read of `gated`'s record held until `gate` opens."""

    def __init__(self, root: Path, gated: str, fail: bool = False) -> None:
        super().__init__(root)
        self.gated, self.fail = cluster_pk(gated), fail
        self.gate = threading.Event()
        self.waited_out = False  # the gate stayed shut for all of GATE_SECONDS
        self.reads: list[str] = []

    def read(self, pk: str, pin: Pin) -> LayerVersion | None:
        self.reads.append(pk)
        if pk == self.gated:
            self.waited_out = not self.gate.wait(GATE_SECONDS)
            if self.fail:
                raise RuntimeError("the connection broke")
        return super().read(pk, pin)


@pytest.fixture(autouse=True)
def one_cluster_a_round(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layers, "READ_AHEAD_CLUSTERS", 1)


def _threads_reading() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "read-ahead"]


def test_the_stream_gives_what_load_inputs_gives_in_order() -> None:
    project, store = load_project(ROOT), SnapshotStore(ROOT / "examples")
    streamed = list(stream_inputs(store, project, NAMES, Pin()))
    assert [c.facts.name for c in streamed] == NAMES
    assert streamed == load_inputs(store, project, NAMES, Pin())
    assert not _threads_reading()


def test_a_cluster_is_given_before_the_later_reads_are_done() -> None:
    store = GatedStore(ROOT / "examples", gated=NAMES[-1])
    stream = stream_inputs(store, load_project(ROOT), NAMES, Pin())
    first = next(stream)
    given_while_reading = not store.gate.is_set()
    store.gate.set()
    rest = list(stream)
    assert first.facts.name == NAMES[0] and given_while_reading
    assert not store.waited_out  # without reading ahead, `next` waits for every read
    assert [c.facts.name for c in rest] == NAMES[1:]


def test_closing_the_stream_stops_the_reads() -> None:
    store = GatedStore(ROOT / "examples", gated=NAMES[1])
    stream = stream_inputs(store, load_project(ROOT), NAMES, Pin())
    next(stream)
    # The gate opens once `close` has asked the reads to stop (the stream's own stop
    # event, set first thing) and waits for the round under way, the second cluster's:
    # no later round may start.
    stop: threading.Event = stream.gi_frame.f_locals["stop"]
    opener = threading.Thread(target=lambda: stop.wait(GATE_SECONDS) and store.gate.set())
    opener.start()
    stream.close()
    opener.join()
    assert not store.waited_out
    assert not _threads_reading()
    assert cluster_pk(NAMES[2]) not in store.reads


def test_a_bad_cluster_later_in_the_stream_is_named_as_load_inputs_names_it() -> None:
    project, store = load_project(ROOT), SnapshotStore(ROOT / "examples")
    names = [*NAMES[:2], "nowhere", NAMES[2]]
    given = []
    with pytest.raises(InputError) as streamed:
        for cluster in stream_inputs(store, project, names, Pin()):
            given.append(cluster.facts.name)
    with pytest.raises(InputError) as loaded:
        load_inputs(store, project, names, Pin())
    assert str(streamed.value) == str(loaded.value)
    assert "nowhere" in str(streamed.value)
    assert given == NAMES[:2]  # those before it were merged meanwhile
    assert not _threads_reading()


def test_a_failure_of_the_reading_thread_reaches_the_caller() -> None:
    store = GatedStore(ROOT / "examples", gated=NAMES[1], fail=True)
    store.gate.set()
    stream = stream_inputs(store, load_project(ROOT), NAMES, Pin())
    assert next(stream).facts.name == NAMES[0]
    with pytest.raises(RuntimeError, match="the connection broke"):
        next(stream)
    assert not _threads_reading()
