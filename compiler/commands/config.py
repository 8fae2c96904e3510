"""`config put`, `config approve`, `config history`, `config seed` and `table create/migrate/verify`: the
table's edge."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from compiler import review
from compiler.errors import (
    EXIT_BAD_INPUT,
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_OUTSIDE,
    InputError,
    UsageError,
)
from compiler.gate import check_environment, compile_proposed
from compiler.layers import StackLoader
from compiler.model import (
    CLUSTER_PK_PREFIX,
    DocPath,
    LayerVersion,
    pk_from_layer_name,
    shown_plainly,
    sort_key_for,
)
from compiler.operations import steps
from compiler.options import (
    SourceOptions,
    check_layer_name,
    current_author,
    open_project,
    open_store,
)
from compiler.policy.schema import ConfigSchema
from compiler.project import Project
from compiler.report import report_violations
from compiler.reversion import unknown_cluster
from compiler.sources import ConfigStore, Pin, maintenance
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.items import item_size
from compiler.sources.proposals import APPROVED, Proposal, proposal_sk
from compiler.sources.snapshot import SnapshotStore, seed
from compiler.yamlio import load_layer_json, load_layer_yaml

MAX_ITEM_BYTES = 400 * 1024  # DynamoDB's item size limit


def _check_item_size(file: Path, pk: str, config: Any, facts: Any) -> None:
    """The stored item, not the file, must fit: refused as bad input before any compile.
    A document this large is stored as a JSON string (sources.dynamodb), so count that."""
    as_json = json.dumps(config, sort_keys=True, separators=(",", ":"))
    stored = {"pk": pk, "sk": sort_key_for(1), "version": 1, "config": as_json, "cluster": facts}
    if (need := item_size(stored)) > MAX_ITEM_BYTES:
        raise InputError(
            f"{file}: item pk={pk!r}: the item would be {need} bytes, over DynamoDB's limit "
            f"of {MAX_ITEM_BYTES}; split the layer"
        )


def put_command(
    *,
    source: SourceOptions,
    layer: str,
    file: Path,
    author: str | None,
    comment: str,
    force: bool = False,
    cue: str | None = None,
) -> int:
    """Write a new version, once it passes the checks a git change passes (`--force`
    writes anyway, and the audit line says so)."""
    pk = pk_from_layer_name(check_layer_name(layer))
    project = open_project(source)
    config, facts, where, (lines, key_lines) = _read_located(file)
    size = file.stat().st_size
    if size > MAX_ITEM_BYTES:
        raise InputError(f"{file}: {size} bytes; a DynamoDB item holds at most {MAX_ITEM_BYTES}")
    _check_item_size(file, pk, config, facts)
    # A layer is a patch: check its keys and types, not completeness (nulls delete).
    patch_errors = ConfigSchema(project.definitions_dir).check_patch(config, where)
    if patch_errors:
        raise InputError("; ".join(patch_errors[:5]))
    store = open_store(source, project)
    if pk.startswith(CLUSTER_PK_PREFIX):
        facts = facts if facts is not None else _previous_facts(store, pk, file)
        record = LayerVersion(pk=pk, sk="", version=0, config={}, created_at="", cluster=facts)
        try:
            checked = StackLoader(store, project, Pin()).facts(record)  # as a compile does
        except InputError as err:
            raise InputError(f"{file}: {err.message}") from None
        if checked.name != pk.partition("#")[2]:
            raise InputError(
                f"{file}: field cluster.name must be {pk.partition('#')[2]!r}, the layer's name"
            )
        check_environment(checked.env, project, store, str(file))
    elif facts is not None:
        raise InputError(f"{file}: `cluster:` facts belong to cluster/<name> layers only")
    proposed = LayerVersion(
        pk=pk, sk="", version=0, config=config, created_at="", cluster=facts,
        file=str(file), lines=lines, key_lines=key_lines,
    )  # fmt: skip
    if project.review_required:
        review.review_store(store)  # before the compile: a snapshot cannot hold proposals
    passed, forced = _gate(store, project, proposed, action="config put", force=force, cue=cue)
    if not passed:
        return EXIT_FINDINGS
    if project.review_required:
        return _propose(store, proposed, author=author or current_author(), comment=comment)
    return _write(store, proposed, author=author, comment=comment, forced=forced)


def _gate(
    store: ConfigStore,
    project: Project,
    proposed: LayerVersion,
    *,
    action: str,
    force: bool,
    cue: str | None,
) -> tuple[bool, bool]:
    """Compile the affected clusters with `proposed` in place: (may write, findings were
    forced through)."""
    layer = proposed.layer_name
    with steps.step("policy", layer=layer, action=action) as gate:
        clusters, result = compile_proposed(store, project, proposed, cue=cue)
        gate.update(clusters=len(clusters), violations=len(result.violations), forced=force)
    if result.violations or result.notices:
        report_violations(result.violations, "text", sys.stderr, result.notices)
    done = "approved" if action == "config approve" else "written"
    if result.violations and not force:
        print(
            f"not {done}: {layer} would break {len(result.violations)} check(s) in "
            f"{', '.join(clusters)}; fix the file, or pass --force to write it anyway",
            file=sys.stderr,
        )
        return False, False
    if result.violations:
        print(f"warning: --force: writing {layer} despite the findings", file=sys.stderr)
    return True, bool(result.violations)


def _propose(store: ConfigStore, proposed: LayerVersion, *, author: str, comment: str) -> int:
    made = review.submit(store, proposed, author=author, comment=comment)
    layer = proposed.layer_name
    print(
        f"proposed {layer} as proposal {made.number} ({made.pk}/{proposal_sk(made.number)}); compiles ignore it "
        f"until another author than {author!r} runs `gitops-compiler config approve "
        f"--layer {layer} --version {made.number}`"
    )
    return EXIT_OK


def approve_command(
    *,
    source: SourceOptions,
    layer: str,
    number: int,
    author: str | None,
    force: bool = False,
    cue: str | None = None,
) -> int:
    """Write a proposal as the layer's next version, once another author approves it and
    it passes the checks `config put` runs (against the table as it is now)."""
    pk = pk_from_layer_name(check_layer_name(layer))
    project = open_project(source)
    store = open_store(source, project)
    chosen = review.proposal(store, pk, number)
    approver = author or current_author()
    review.check_approver(chosen, approver)  # before the compile: it cannot pass anyway
    version = review.as_version(chosen)
    passed, forced = _gate(store, project, version, action="config approve", force=force, cue=cue)
    if not passed:
        return EXIT_FINDINGS
    written = review.approve(store, chosen, approver=approver, forced=forced)
    print(
        f"approved {layer} proposal {number} of {chosen.author} as {approver}: wrote version "
        f"{written.version} ({written.pk}/{written.sk})"
    )
    return EXIT_OK


def _write(
    store: ConfigStore, proposed: LayerVersion, *, author: str | None, comment: str, forced: bool
) -> int:
    with steps.step("dynamodb", layer=proposed.layer_name, action="write", forced=forced) as out:
        written = store.put(
            proposed.pk,
            proposed.config,
            cluster=proposed.cluster,
            author=author or current_author(),
            comment=comment,
            retired=proposed.retired,
        )
        out["version"] = written.version
    print(f"wrote {proposed.layer_name} version {written.version} ({written.pk}/{written.sk})")
    return EXIT_OK


def retire_command(*, source: SourceOptions, layer: str, author: str | None, comment: str) -> int:
    """A tombstone version: the cluster leaves the tree (and `--all`), the history keeps it."""
    pk = pk_from_layer_name(check_layer_name(layer))
    if not pk.startswith(CLUSTER_PK_PREFIX):
        raise UsageError(f"config retire --layer {layer}: only cluster/<name> layers retire")
    project = open_project(source)
    store = open_store(source, project)
    latest = store.read(pk, Pin())
    if latest is None:
        raise unknown_cluster(store, pk.partition("#")[2])
    if latest.retired:
        raise InputError(f"{layer} is retired already ({latest.pk}/{latest.sk})")
    tombstone = LayerVersion(
        pk=pk, sk="", version=0, config={}, created_at="", cluster=latest.cluster, retired=True
    )
    return _write(store, tombstone, author=author, comment=comment or "retired", forced=False)


Where = Callable[[DocPath, bool], str]
Lines = Mapping[DocPath, int]


def _read_located(
    file: Path,
) -> tuple[dict[str, Any], dict[str, Any] | None, Where, tuple[Lines, Lines]]:
    """A layer document, or `{cluster: facts, config: document}` for a cluster record;
    where a path of the document is in the file (`name:line: `, a key at its own line;
    JSON has no lines); and the line of each path of the document and of its keys."""
    try:
        data = file.read_bytes()
    except OSError as err:
        raise UsageError(f"{file}: cannot read: {err.strerror}") from None
    loaded = None if file.suffix == ".json" else load_layer_yaml(data, str(file))
    value = load_layer_json(data, str(file)) if loaded is None else loaded.value
    if value == {} and loaded is not None and not _holds_a_document(data):
        # A version is the layer's whole content: an empty file (a save gone wrong, a
        # wrong path) would drop every value the layer sets.
        raise InputError(
            f"{file}: holds no document (empty, or comments only); a version replaces the "
            "whole layer, so this would empty it: write `{}` to mean that"
        )
    if not isinstance(value, dict):
        raise InputError(f"{file}:1: a layer document must be a map")
    prefix: DocPath = ("config",) if "cluster" in value else ()

    def where(path: DocPath, key: bool) -> str:
        at = (*prefix, *path)
        line = loaded and ((loaded.key_lines.get(at) if key else None) or loaded.lines.get(at))
        return f"{file}:{line}: " if line else f"{file}: "

    located = (
        _under(prefix, loaded.lines if loaded else {}),
        _under(prefix, loaded.key_lines if loaded else {}),
    )
    if "cluster" in value:
        if set(value) - {"cluster", "config"}:
            raise InputError(f"{file}: with `cluster:` facts, the document goes under `config:`")
        return dict(value.get("config") or {}), dict(value["cluster"]), where, located
    return value, None, where, located


def _under(prefix: DocPath, lines: Lines) -> Lines:
    """The lines of the paths below `prefix`, as paths of the document there."""
    return {path[len(prefix) :]: n for path, n in lines.items() if path[: len(prefix)] == prefix}


def _holds_a_document(data: bytes) -> bool:
    import yaml

    node = yaml.compose(data, Loader=yaml.SafeLoader)  # `---` alone, or `null`: none
    return node is not None and node.tag != "tag:yaml.org,2002:null"


def _previous_facts(store: ConfigStore, pk: str, file: Path) -> dict[str, Any]:
    latest = store.read(pk, Pin())
    if latest is None or latest.cluster is None:
        raise InputError(
            f"{file}: the first version of {pk} needs the cluster's facts: "
            "write `cluster: {name, env, server, region}` and put the layer under `config:`"
        )
    return dict(latest.cluster)


def history_command(*, source: SourceOptions, layer: str) -> int:
    pk = pk_from_layer_name(check_layer_name(layer))
    project = open_project(source)
    store = open_store(source, project)
    versions = store.history(pk)
    if not versions:
        proposals = review.proposals_of(store, pk)
        if pk.startswith(CLUSTER_PK_PREFIX) and not proposals:
            # A cluster without a single version is no cluster: most likely a typo.
            raise unknown_cluster(store, pk.partition("#")[2])
        print(f"{layer}: no versions")
        _print_proposals(proposals)
        return EXIT_OK
    print(f"{'VERSION':>7}  {'CREATED':20}  {'AUTHOR':16}  COMMENT")
    # Authors and comments are other people's text (other systems write versions too):
    # escaped, so that a line break or a terminal escape cannot forge a row.
    for v in versions:
        retired = " (retired)" if v.retired else ""
        approver = shown_plainly(v.approved_by or "")
        approved = f" (approved by {approver}, proposal {v.proposal})" if v.proposal else ""
        author, comment = shown_plainly(v.author)[:16], shown_plainly(v.comment)
        print(f"{v.version:>7}  {v.created_at:20}  {author:16}  {comment}{retired}{approved}")
    _print_proposals(review.proposals_of(store, pk))
    return EXIT_OK


def _print_proposals(proposals: list[Proposal]) -> None:
    if not proposals:
        return
    print(f"\n{'PROPOSAL':>8}  {'PROPOSED':20}  {'AUTHOR':16}  {'STATE':36}  COMMENT")
    for p in proposals:
        state = p.state
        if p.state == APPROVED:
            state = f"approved: v{p.version} by {shown_plainly(p.approved_by)[:16]} {p.approved_at}"
        author, comment = shown_plainly(p.author)[:16], shown_plainly(p.comment)
        print(f"{p.number:>8}  {p.created_at:20}  {author:16}  {state:36}  {comment}")


def seed_command(*, source: SourceOptions, directory: Path) -> int:
    """Write every version of a snapshot directory into the table; existing ones are kept."""
    project = open_project(source)
    store = open_store(source, project)
    if not directory.is_absolute():  # as --source snapshot:DIR: relative to the project
        directory = source.project_dir / directory
    written, skipped = seed(store, SnapshotStore(directory))
    print(f"seeded from {directory}: {written} version(s) written, {skipped} already there")
    return EXIT_OK


def create_table_command(*, source: SourceOptions) -> int:
    project = open_project(source)
    store = open_store(source, project)
    if not isinstance(store, DynamoDBStore):
        raise UsageError("table create works on --source dynamodb")
    created = store.create_table()
    state = "created" if created else "exists already"
    print(f"table {store.table} {state}", file=sys.stdout)
    return EXIT_OK


def _dynamodb_store(source: SourceOptions, action: str) -> tuple[DynamoDBStore, maintenance.Check]:
    """The table, and the checks of a version beyond its item's own: the cluster's facts,
    against the project's schema, as a compile checks them."""
    project = open_project(source)
    store = open_store(source, project)
    if not isinstance(store, DynamoDBStore):
        raise UsageError(f"table {action} works on --source dynamodb")
    loader = StackLoader(store, project, Pin())
    return store, lambda version: loader.facts(version) if version.cluster is not None else None


def migrate_table_command(*, source: SourceOptions) -> int:
    """Add the head items a table written before them lacks (issue 18); idempotent. A
    malformed latest version gets no head: bad input (exit 2), named."""
    store, check = _dynamodb_store(source, "migrate")
    with steps.step("dynamodb", action="table migrate") as out:
        done = maintenance.migrate(store, check)
        out.update(written=len(done.written), current=done.current, refused=len(done.refused))
        out["index"] = done.index
    for name in done.written:
        print(f"head written: {name}")
    for line in done.refused:
        print(line)
    print(done.index)
    refused = f", {len(done.refused)} refused (malformed)" if done.refused else ""
    print(
        f"table {store.table}: {len(done.written)} head(s) written, {done.current} current{refused}"
    )
    if done.refused:
        return EXIT_BAD_INPUT
    return EXIT_OUTSIDE if done.index_failed else EXIT_OK


def verify_table_command(*, source: SourceOptions) -> int:
    """Stale or missing heads, gaps in version numbers, malformed versions and sort keys
    no compile reads: exit 1 when there are any."""
    store, check = _dynamodb_store(source, "verify")
    findings = maintenance.verify(store, check)
    for line in findings:
        print(line)
    print(f"table {store.table}: {len(findings) or 'no'} finding(s)")
    return EXIT_FINDINGS if findings else EXIT_OK
