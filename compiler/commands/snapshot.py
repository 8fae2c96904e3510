"""`snapshot --out DIR`: the DynamoDB layers a project needs, as files, for offline hooks.

The files have the layout `SnapshotStore` reads (`defaults.yaml`,
`env/<env>.yaml`, `cluster/<name>.yaml`, every version of each layer), so a
compile from the snapshot gives the same bytes as one from the table, and
findings still name `dynamodb:pk/sk@version`: the items are the table's.
"""

from __future__ import annotations

from pathlib import Path

from compiler.emit import write_tree
from compiler.errors import EXIT_OK, InputError
from compiler.layers import StackLoader
from compiler.model import cluster_pk, pk_from_layer_name
from compiler.options import Selection, SourceOptions, open_project, open_store
from compiler.pipeline import select_clusters
from compiler.sources import Pin
from compiler.sources.snapshot import snapshot_files

_OWNED = ("defaults.yaml", "env", "cluster")  # what a snapshot directory holds, and only that


def snapshot_command(*, source: SourceOptions, selection: Selection, out: Path) -> int:
    project = open_project(source)
    store = open_store(source, project)
    names = select_clusters(store, selection.clusters, all_clusters=selection.all_clusters)
    loader = StackLoader(store, project, Pin())
    pks: set[str] = set()
    for name in names:
        record = store.read(cluster_pk(name), Pin())
        if record is None:
            raise InputError(f"no record cluster#{name} in the config table", cluster=name)
        facts = loader.facts(record)
        for entry in project.stack:
            if entry.kind == "dynamodb":
                pks.add(pk_from_layer_name(entry.resolve(env=facts.env, cluster=facts.name)))
    files, versions = snapshot_files(store, pks)
    stats = write_tree(out, files, owned=list(_OWNED))
    print(
        f"snapshot of {len(files)} layer(s), {versions} version(s), for {len(names)} "
        f"cluster(s) in {out} ({stats.written} file(s) written, {stats.unchanged} unchanged, "
        f"{stats.removed} removed)"
    )
    return EXIT_OK
