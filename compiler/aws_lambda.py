"""`compiler.aws_lambda:handler`: DynamoDB Streams → Lambda, for teams that prefer it to
`serve` (issue 21).

The event is the batch AWS sends (`Records`, each with `eventName`, `dynamodb.Keys`,
`dynamodb.SequenceNumber`); the handler does what one `serve` trigger does: the
layers that got a new version become the clusters they affect (as `watch`
computes them), compiled at the versions seen and published as one pull
request. With `ReportBatchItemFailures` on the event source mapping, a failed
publish reports the batch's first record (`batchItemFailures`), so Lambda
retries the batch from there; records of our own items are not layers and
never fail. Lambda runs one batch per shard at a time: no lease is needed.

Configured by environment: `GITOPS_PROJECT` (the project directory in the
image), `GITOPS_REPO`, `GITOPS_BASE` (default main), `GITOPS_FORGE` (default
auto), `GITOPS_FORGE_REPO`, `GITOPS_TABLE` and the usual AWS and forge variables.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compiler.errors import CompilerError, UsageError
from compiler.operations import steps
from compiler.operations.trace import new_run_id
from compiler.options import Destination, Selection, SourceOptions, open_project, open_store
from compiler.publishing.publication import publish_tree, report_published
from compiler.secrets import redact, register_from_environment
from compiler.service.actor import affected_by
from compiler.service.streams import layer_pks


def handler(event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    records = [r for r in event.get("Records", []) if isinstance(r, Mapping)]
    if not records:
        return {"batchItemFailures": []}
    register_from_environment(os.environ)
    source, destination = _configuration(os.environ)
    pks, _ = layer_pks(records)
    try:
        if _publish(source, destination, pks):
            return {"batchItemFailures": []}
    except CompilerError as err:
        print(f"error: {redact(str(err))}", file=sys.stderr)
    first = str(records[0].get("dynamodb", {}).get("SequenceNumber", ""))
    return {"batchItemFailures": [{"itemIdentifier": first}]}


def _publish(source: SourceOptions, destination: Destination, pks: set[str]) -> bool:
    """True when published or nothing was affected; False on violations."""
    if not pks:
        return True
    project = open_project(source)
    changes = affected_by(open_store(source, project), project, pks, set())
    if changes is None:
        return True
    selection = Selection(clusters=tuple(changes.clusters), pin=changes.pin())
    with steps.run_as(new_run_id()) as run:
        published = publish_tree(source, selection, destination, run=run.run)
    report_published(published, "text")
    return published.outcome is not None


def _configuration(environ: Mapping[str, str]) -> tuple[SourceOptions, Destination]:
    repo = environ.get("GITOPS_REPO")
    if not repo:
        raise UsageError("GITOPS_REPO is not set: the Argo CD repository to publish to")
    source = SourceOptions(
        project_dir=Path(environ["GITOPS_PROJECT"]) if "GITOPS_PROJECT" in environ else Path.cwd(),
        table=environ.get("GITOPS_TABLE") or None,
    )
    destination = Destination(
        repo=repo,
        base=environ.get("GITOPS_BASE", "main"),
        forge=environ.get("GITOPS_FORGE", "auto"),
        forge_repo=environ.get("GITOPS_FORGE_REPO") or None,
    )
    return source, destination
