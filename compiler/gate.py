"""The gate of a table write: `config put` passes the checks a git change passes.

The proposed version is compiled, as if it were written, for every cluster it
affects (a cluster record: that cluster; `env/<env>`: the clusters of that
environment; `defaults`: all of them), with the schema, the object schemas, the
waivers and the CUE policies of a `validate`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from compiler.errors import InputError
from compiler.layers import clusters_reading, load_inputs
from compiler.model import CLUSTER_PK_PREFIX, LayerVersion, layer_name_from_pk
from compiler.pipeline import CompileResult, build_checks, compile_inputs
from compiler.policy.cue import CuePolicies, find_cue
from compiler.project import Project
from compiler.sources import ConfigStore, Pin


class ProposedStore:
    """A store that reads `proposed` as the latest version of its layer, as if written."""

    def __init__(self, inner: ConfigStore, proposed: LayerVersion) -> None:
        self.inner = inner
        self.proposed = proposed
        self.source_name = inner.source_name

    def read(self, pk: str, pin: Pin) -> LayerVersion | None:
        if pk == self.proposed.pk and not pin.versions and pin.as_of is None:
            return self.proposed
        return self.inner.read(pk, pin)

    def history(self, pk: str) -> list[LayerVersion]:
        return self.inner.history(pk)

    def list_clusters(
        self, as_of: datetime | None = None, *, known: Mapping[str, int] | None = None
    ) -> list[str]:
        if as_of is not None:  # the fleet then: a proposal is never in the past
            return self.inner.list_clusters(as_of)
        names = set(self.inner.list_clusters(known=known))
        if self.proposed.pk.startswith(CLUSTER_PK_PREFIX):
            name = self.proposed.pk.partition("#")[2]
            (names.discard if self.proposed.retired else names.add)(name)
        return sorted(names)

    def put(self, pk: str, config: Mapping[str, Any], **kwargs: Any) -> LayerVersion:
        raise AssertionError("the gate only reads")  # never called: a check writes nothing


def environments(project: Project) -> list[str]:
    """The environments the project defines: the directories of its `{env}` overlay
    layers (overlays/dev, ...), and any `env/<env>` layer the table holds."""
    found: set[str] = set()
    for entry in project.stack:
        if entry.kind == "files" and "{env}" in entry.template:
            parent = project.root / entry.template.split("{env}")[0]
            if parent.is_dir():
                found.update(p.name for p in parent.iterdir() if p.is_dir())
    return sorted(found)


def check_environment(env: str, project: Project, store: ConfigStore, where: str) -> None:
    known = environments(project)
    if env in known or store.read(f"env#{env}", Pin()) is not None:
        return
    close = difflib.get_close_matches(env, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise InputError(
        f"{where}: field cluster.env {env!r} is not an environment of this project "
        f"({', '.join(known) or 'none'}: the directories under its overlays, or an env/<env> "
        f"layer in the table){hint}"
    )


def affected(store: ConfigStore, project: Project, proposed: LayerVersion) -> list[str]:
    """The clusters whose compile reads the proposed layer."""
    if proposed.pk.startswith(CLUSTER_PK_PREFIX):
        name = proposed.pk.partition("#")[2]
        return [] if proposed.retired else [name]
    return clusters_reading(store, project, [layer_name_from_pk(proposed.pk)])


def compile_proposed(
    store: ConfigStore, project: Project, proposed: LayerVersion, *, cue: str | None
) -> tuple[list[str], CompileResult]:
    """The affected clusters and their compile with the proposed version in place."""
    view = ProposedStore(store, proposed)
    names = affected(view, project, proposed)
    if not names:
        return names, CompileResult()
    policies = CuePolicies(
        project.policies_dir,
        find_cue(cue, os.environ, project=project.root),
        files=project.cue_files,
    )
    try:
        inputs = load_inputs(view, project, names, Pin())
        result = compile_inputs(inputs, project, build_checks(project, policies=policies))
    finally:
        policies.close()
    return names, result
