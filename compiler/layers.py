"""Resolve the layer stack of a cluster: which documents, in which order, from where."""

from __future__ import annotations

import contextvars
import json
import queue
import threading
from collections.abc import Generator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from compiler.errors import CompilerError, InputError
from compiler.model import (
    CLUSTER_PK_PREFIX,
    ClusterFacts,
    Layer,
    LayerRef,
    LayerVersion,
    cluster_pk,
    format_path,
    layer_name_from_pk,
    pk_from_layer_name,
)
from compiler.policy.schema_messages import schema_message
from compiler.policy.validator import TwoStageValidator
from compiler.project import Project
from compiler.sources import ConfigStore, Pin
from compiler.sources.files import overlay_layers
from compiler.stageclock import timed


@dataclass(frozen=True)
class ClusterInput:
    """Everything one cluster is compiled from."""

    facts: ClusterFacts
    layers: tuple[Layer, ...]


# Records checked by jsonschema alone before fastjsonschema is compiled (~20 ms).
_FACTS_COMPILE_AFTER = 16


@cache
def _facts_validator(policies: Path, cache_dir: Path | None = None) -> TwoStageValidator:
    """jsonschema for the located error, fastjsonschema (compiled once a fleet is seen,
    or read from `cache_dir`) for the valid common case: jsonschema alone took ~0.8 ms
    a cluster, and ~70 ms to import, paid only by a run that needs it."""
    schema = json.loads((policies / "cluster-facts.schema.json").read_text(encoding="utf-8"))

    def full() -> Any:
        import jsonschema

        return jsonschema.Draft202012Validator(schema)

    return TwoStageValidator(
        schema,
        full,
        compile_after=_FACTS_COMPILE_AFTER,
        cache_dir=cache_dir,
        use_default=False,  # check the record, never fill it in
        use_formats=False,  # as the jsonschema validator above, which checks no formats
    )


def layer_from_version(version: LayerVersion, store: ConfigStore) -> Layer:
    lock = {
        "pk": version.pk,
        "sk": version.sk,
        "version": version.version,
        "created_at": version.created_at,
    }
    if version.file is not None:  # proposed from a file, not written: named by its lines
        ref = LayerRef(layer=version.layer_name, source=store.source_name, file=version.file)
        return Layer(
            ref=ref,
            document=version.config,
            lines=version.lines,
            key_lines=version.key_lines,
            lock=lock,
        )
    ref = LayerRef(
        layer=version.layer_name,
        source=store.source_name,
        key=f"{version.pk}/{version.sk}",
        version=version.version,
    )
    return Layer(ref=ref, document=version.config, lock=lock)


class StackLoader:
    """Reads the layers of clusters, each shared layer (defaults, env, overlays) once per run."""

    def __init__(
        self,
        store: ConfigStore,
        project: Project,
        pin: Pin,
        *,
        content: bool = True,
        cache_dir: Path | None = None,
    ) -> None:
        """Without `content`, the layers a store reads in batches (DynamoDB's heads) come
        without their documents: enough to fingerprint a cluster, never to compile it."""
        self.store = store
        self.project = project
        self.pin = pin
        self.content = content
        self.cache_dir = cache_dir  # where the facts' compiled validator is kept; None: nowhere
        self._versions: dict[str, LayerVersion | None] = {}
        self._failed: dict[str, CompilerError] = {}
        self._facts: dict[str, ClusterFacts] = {}  # by the pk of a record read here
        self._overlays: dict[str, list[Layer]] = {}

    def prefetch(self, clusters: Sequence[str]) -> None:
        """Read the table items of these clusters' stacks at once, as many at a time as
        the store allows: first the cluster records, then the layers they name.

        Nothing is raised here: a failed read is kept and raised by `load` of the
        cluster that needs it, so errors name the same cluster as without prefetch.
        """
        self._read_all(cluster_pk(name) for name in clusters)
        shared = []
        for name in clusters:
            record = self._versions.get(cluster_pk(name))
            if record is None:
                continue
            try:
                facts = self._facts_of(record)
            except CompilerError:
                continue  # `load` of this cluster raises it
            shared.extend(self._shared_pks(facts))
        self._read_all(shared)

    def prefetch_shared(self, clusters: Iterable[ClusterFacts]) -> None:
        """Read the table layers (but the clusters' own) that these clusters' stacks name."""
        self._read_all(pk for facts in clusters for pk in self._shared_pks(facts))

    def _shared_pks(self, facts: ClusterFacts) -> list[str]:
        """The pks of the table layers of a cluster's stack, but its own record's."""
        pks = []
        for entry in self.project.stack:
            if entry.kind != "files":
                pk = pk_from_layer_name(entry.resolve(env=facts.env, cluster=facts.name))
                if pk != cluster_pk(facts.name):
                    pks.append(pk)
        return pks

    def _read_all(self, pks: Iterable[str]) -> None:
        wanted = sorted(set(pks) - self._versions.keys() - self._failed.keys())
        wanted = self._read_latest_batched(wanted)
        workers = min(len(wanted), getattr(self.store, "read_concurrency", 1))
        if workers <= 1:
            for pk in wanted:
                self._read_or_keep(pk)
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="read") as pool:
            list(pool.map(self._read_or_keep, wanted))

    def _read_latest_batched(self, pks: Sequence[str]) -> list[str]:
        """Read the layers the pin leaves at their latest version in batches, where the
        store can (DynamoDB's head items, issue 18); return the ones still to read."""
        batched = getattr(self.store, "read_latest_many", None)
        if batched is None or self.pin.as_of is not None:
            return list(pks)
        latest = [pk for pk in pks if layer_name_from_pk(pk) not in self.pin.versions]
        if self.content:
            found_by_pk = batched(latest)
        else:  # the clusters' heads without content; the few shared layers whole, checked
            own = [pk for pk in latest if pk.startswith(CLUSTER_PK_PREFIX)]
            shared = [pk for pk in latest if not pk.startswith(CLUSTER_PK_PREFIX)]
            found_by_pk = {**batched(shared), **(batched(own, content=False) if own else {})}
        for pk, found in found_by_pk.items():
            if isinstance(found, CompilerError):
                self._failed[pk] = found
            else:
                self._versions[pk] = found
        return [pk for pk in pks if pk not in self._versions and pk not in self._failed]

    def _read_or_keep(self, pk: str) -> None:
        try:
            self._versions[pk] = self.store.read(pk, self.pin)
        except CompilerError as err:
            self._failed[pk] = err

    def facts_of_clusters(self, clusters: Sequence[str]) -> list[ClusterFacts]:
        """The facts of these clusters' records (the ones that have one), in their order:
        read in batches where the store can, not one read a cluster. The first failed
        read or bad facts raise. With `content=False` (DynamoDB) a record's config is
        not read, so a broken config fails only the compile of its own cluster, not the
        search for the clusters a file affects (where a head is stale, the record is
        read whole by a Query, and checked whole)."""
        self._read_all(cluster_pk(name) for name in clusters)
        found = []
        for name in clusters:
            record = self._read(cluster_pk(name))
            if record is not None:
                found.append(self.facts(record))
        return found

    def load(self, cluster: str) -> ClusterInput:
        record = self._read(cluster_pk(cluster))
        if record is None:
            raise self._nothing_for(cluster_pk(cluster))
        if record.retired:
            raise InputError(
                f"cluster {cluster} is retired ({record.pk}/{record.sk}, by {record.author or '?'}"
                f" at {record.created_at}); `gitops-compiler rollback` or `config put` brings "
                "it back"
            )
        return self.stack_of(self._facts_of(record), record)

    def stack_of(self, facts: ClusterFacts, record: LayerVersion) -> ClusterInput:
        """The cluster's stack, given its facts and its record's version."""
        layers: list[Layer] = []
        for entry in self.project.stack:
            name = entry.resolve(env=facts.env, cluster=facts.name)
            if entry.kind == "files":
                if name not in self._overlays:
                    self._overlays[name] = overlay_layers(
                        self.project.root, name, optional=entry.optional
                    )
                layers.extend(self._overlays[name])
                continue
            pk = pk_from_layer_name(name)
            version = record if pk == record.pk else self._read(pk)
            if version is None:
                if entry.optional and name not in self.pin.versions:
                    continue  # absent is fine; a version pinned but absent is a typo
                raise self._nothing_for(pk)
            layers.append(layer_from_version(version, self.store))
        return ClusterInput(facts=facts, layers=tuple(layers))

    def facts(self, record: LayerVersion) -> ClusterFacts:
        raw: Any = record.cluster
        where = (
            f"item pk={record.pk!r} sk={record.sk!r} version {record.version}"
            if record.sk
            else f"the new version of {record.pk}"  # `config put`, before it is written
        )
        failure = _facts_validator(self.project.definitions_dir, self.cache_dir).validate(raw)
        if failure is not None:
            if not failure.errors:  # the two validators disagree: say what the fast one saw
                raise InputError(f"{where}: field cluster: {failure.fast}")
            first = min(failure.errors, key=lambda e: list(map(str, e.absolute_path)))
            field = format_path(("cluster", *first.absolute_path))
            raise InputError(f"{where}: field {field}: {schema_message(first)}")
        return ClusterFacts(
            name=raw["name"],
            env=raw["env"],
            server=raw["server"],
            region=raw.get("region", ""),
            labels=dict(raw.get("labels", {})),
            calico_api=raw.get("calicoAPI", self.project.calico_api),
        )

    def _facts_of(self, record: LayerVersion) -> ClusterFacts:
        """`facts` of a record this loader read (one per pk), checked once: prefetch
        and load both need them, and a check is not free at fleet size."""
        if record.pk not in self._facts:
            self._facts[record.pk] = self.facts(record)
        return self._facts[record.pk]

    def _nothing_for(self, pk: str) -> InputError:
        """Why `pk` gave no version: not there at all, none as of `--as-of`, or not
        the pinned version (naming the versions that exist, from both stores)."""
        name = layer_name_from_pk(pk)
        what = f"no record {pk}" if pk.startswith(CLUSTER_PK_PREFIX) else f"layer {name} (pk {pk})"
        pinned = self.pin.versions.get(name)
        if pinned is None:
            when = f" as of {self.pin.as_of.isoformat()}" if self.pin.as_of else ""
            if pk.startswith(CLUSTER_PK_PREFIX):
                return InputError(f"{what} in the config table{when}")
            return InputError(f"{what} has no version in the config table{when}")
        existing = sorted(v.version for v in self.store.history(pk))
        return InputError(
            f"--pin {name}={pinned}: {name} has no version {pinned} in the config table; "
            f"{_existing(existing)}"
        )

    def _read(self, pk: str) -> LayerVersion | None:
        if pk in self._failed:
            raise self._failed[pk]
        if pk not in self._versions:
            self._versions[pk] = self.store.read(pk, self.pin)
        return self._versions[pk]


def _existing(versions: Sequence[int], shown: int = 8) -> str:
    """`versions 1 and 3 exist`, for a message about a version that does not."""
    if not versions:
        return "it has no version at all"
    if len(versions) == 1:
        return f"only version {versions[0]} exists"
    if len(versions) > shown:
        listed = [*map(str, versions[:2]), "…", *map(str, versions[-(shown - 2) :])]
        return f"{len(versions)} versions exist: {', '.join(listed)}"
    return f"versions {', '.join(map(str, versions[:-1]))} and {versions[-1]} exist"


def clusters_reading(store: ConfigStore, project: Project, layers: Iterable[str]) -> list[str]:
    """The clusters whose stack reads any of these table layers (`defaults`, `env/dev`)
    now, sorted: the records' facts read in batches, without their configs."""
    wanted = set(layers)
    loader = StackLoader(store, project, Pin(), content=False)
    return sorted(
        facts.name
        for facts in loader.facts_of_clusters(store.list_clusters())
        if wanted & {e.resolve(env=facts.env, cluster=facts.name) for e in project.stack}
    )


def load_inputs(
    store: ConfigStore,
    project: Project,
    names: Iterable[str],
    pin: Pin,
    *,
    cache_dir: Path | None = None,
) -> list[ClusterInput]:
    """Every cluster's layer stack: the reads from the table (each shared layer once).
    `cache_dir`: where the facts' compiled validator is kept (`build_checks`)."""
    names = list(names)
    loader = StackLoader(store, project, pin, cache_dir=cache_dir)
    with timed("fetch"):
        loader.prefetch(names)
        return _load_each(loader, names)


READ_AHEAD_CLUSTERS = 100  # a BatchGetItem's worth of cluster records per round


def stream_inputs(
    store: ConfigStore,
    project: Project,
    names: Sequence[str],
    pin: Pin,
    *,
    cache_dir: Path | None = None,
) -> Generator[ClusterInput, None, None]:
    """`load_inputs`, cluster by cluster as the reads arrive: a thread reads the stacks
    `READ_AHEAD_CLUSTERS` at a time while the caller merges those already read. At
    C=1000 the reads spent ~1.4 s of their ~2.4 s waiting for the table's answers, time
    the merge now uses (issue 18). Errors are raised as `load_inputs` raises them,
    naming the same cluster; closing the iterator stops the reads after the round
    under way."""
    loader = StackLoader(store, project, pin, cache_dir=cache_dir)
    rounds = [names[i : i + READ_AHEAD_CLUSTERS] for i in range(0, len(names), READ_AHEAD_CLUSTERS)]
    if len(rounds) <= 1:
        with timed("fetch"):
            loader.prefetch(names)
            loaded = _load_each(loader, names)
        yield from loaded
        return
    # The caller's `load` reads only what finished rounds wrote into the loader; the
    # thread writes only the round under way: no key is written by both.
    arrived: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
    stop = threading.Event()

    def read_ahead() -> None:
        try:
            for part in rounds:
                if stop.is_set():
                    return
                loader.prefetch(part)  # raises nothing of the input's: `load` does
                arrived.put(None)
        except BaseException as err:  # an outside failure: the caller raises it
            arrived.put(err)

    reader = threading.Thread(
        target=contextvars.copy_context().run, args=(read_ahead,), name="read-ahead", daemon=True
    )
    reader.start()
    try:
        for part in rounds:
            with timed("fetch"):  # the wait the merge did not hide, and the stacks built
                failure = arrived.get()
                if failure is not None:
                    raise failure
                loaded = _load_each(loader, part)
            yield from loaded
    finally:
        stop.set()
        reader.join()


def _load_each(loader: StackLoader, names: Iterable[str]) -> list[ClusterInput]:
    inputs = []
    for name in names:
        try:
            inputs.append(loader.load(name))
        except CompilerError as err:
            raise err.with_cluster(name) from None
    return inputs
