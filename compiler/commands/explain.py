"""`explain --cluster C PATH`: where a merged value came from."""

from __future__ import annotations

from compiler.errors import EXIT_OK, CompilerError
from compiler.explanation import explain, format_explanation
from compiler.layers import StackLoader
from compiler.options import Selection, SourceOptions, build_pin, open_project, open_store
from compiler.pipeline import merge_cluster
from compiler.provenance import resolve_path
from compiler.run import check_clusters


def explain_command(*, source: SourceOptions, selection: Selection, path: str, fmt: str) -> int:
    project = open_project(source)
    store = open_store(source, project)
    (cluster,) = selection.clusters
    check_clusters(store, [cluster])  # a typo gets the closest names (issue 17)
    try:
        loaded = StackLoader(store, project, build_pin(selection)).load(cluster)
        merged = merge_cluster(loaded, project)
        doc_path = resolve_path(merged, path)
    except CompilerError as err:
        raise err.with_cluster(cluster) from None
    entries = explain(merged, doc_path)
    print(format_explanation(entries, as_json=fmt == "json"))
    return EXIT_OK
