"""Proposed versions under `review: required` (issue 17): kept beside a layer's versions.

A proposal is an item of the layer's pk with sk `proposal#0000000003`, numbered in
its own sequence. Every reader of versions (a compile, `validate`, `watch`, `serve`,
the hook's freshness check) reads the `head` item and `v#` sort keys only, and
versions stay numbered consecutively with their head written in the same
TransactWriteItems: so a proposal is never a head nor "the latest", whatever reads
the table (an older compiler too). Approval writes an ordinary next version with
the proposal's content, and marks the proposal approved in the same transaction,
on the condition that it is still proposed: two approvers cannot both write it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from compiler.errors import InputError, OutsideError
from compiler.model import layer_name_from_pk
from compiler.sources.attributes import config_attribute, to_dynamo_numbers
from compiler.sources.heads import backoff, serialized
from compiler.sources.items import format_timestamp, plain

if TYPE_CHECKING:
    from compiler.sources.dynamodb import DynamoDBStore

PROPOSAL_PREFIX = "proposal#"
PROPOSED, APPROVED = "proposed", "approved"
_ATTEMPTS = 16  # concurrent proposers of one layer take the next number


def proposal_sk(number: int) -> str:
    return f"{PROPOSAL_PREFIX}{number:010d}"


@dataclass(frozen=True)
class Proposal:
    pk: str
    number: int
    config: Mapping[str, Any]
    cluster: Mapping[str, Any] | None
    author: str
    comment: str
    created_at: str
    state: str = PROPOSED
    approved_by: str = ""
    approved_at: str = ""
    version: int = 0  # the version its approval wrote

    @property
    def layer_name(self) -> str:
        return layer_name_from_pk(self.pk)


@dataclass(frozen=True)
class Approval:
    """What a version written from a proposal records: the proposal and its approver."""

    proposal: Proposal
    approver: str

    def transact_update(self, table: str, version: int, when: str) -> dict[str, Any]:
        """Mark the proposal approved, in the transaction that writes its version."""
        return {
            "Update": {
                "TableName": table,
                "Key": serialized(
                    {"pk": self.proposal.pk, "sk": proposal_sk(self.proposal.number)}
                ),
                "UpdateExpression": "SET #s = :a, approved_by = :by, approved_at = :at, "
                "approved_version = :v",
                "ConditionExpression": "#s = :p",
                "ExpressionAttributeNames": {"#s": "state"},
                "ExpressionAttributeValues": serialized(
                    {
                        ":a": APPROVED,
                        ":p": PROPOSED,
                        ":by": self.approver,
                        ":at": when,
                        ":v": version,
                    }
                ),
            }
        }


def propose(
    store: DynamoDBStore,
    pk: str,
    config: Mapping[str, Any],
    *,
    cluster: Mapping[str, Any] | None,
    author: str,
    comment: str,
) -> Proposal:
    """Write a new proposal (the next number; never over another)."""
    stamp = format_timestamp(datetime.now(UTC))
    for attempt in range(_ATTEMPTS):
        pending = history(store, pk)
        number = (pending[0].number if pending else 0) + 1
        item: dict[str, Any] = {
            "pk": pk,
            "sk": proposal_sk(number),
            "proposal": number,
            "state": PROPOSED,
            "config": config_attribute(config),
            "author": author,
            "comment": comment,
            "created_at": stamp,
        }
        if cluster is not None:
            item["cluster"] = to_dynamo_numbers(dict(cluster))
        with store.errors_while(f"writing a proposal for {pk}"):
            try:
                store.client.put_item(
                    TableName=store.table,
                    Item=serialized(item),
                    ConditionExpression="attribute_not_exists(sk)",
                )
                return _proposal(plain(item, pk))
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
        backoff(attempt)  # another proposer took this number
    raise OutsideError(f"proposing {pk}: {_ATTEMPTS} concurrent proposers took each number")


def history(store: DynamoDBStore, pk: str) -> list[Proposal]:
    """Every proposal of a layer, newest first."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    request: dict[str, Any] = {
        "TableName": store.table,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
        "ExpressionAttributeValues": {":pk": {"S": pk}, ":p": {"S": PROPOSAL_PREFIX}},
        "ScanIndexForward": False,
        "ConsistentRead": True,
    }
    found: list[Proposal] = []
    with store.errors_while(f"reading the proposals of {pk}"):
        while True:
            page = store.client.query(**request)
            for raw in page.get("Items", []):
                item = {k: deserializer.deserialize(v) for k, v in raw.items()}
                found.append(_proposal(plain(item, f"item pk={pk!r} sk={item.get('sk')!r}")))
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _proposal(item: Mapping[str, Any]) -> Proposal:
    where = f"item pk={item.get('pk')!r} sk={item.get('sk')!r}"
    config = item.get("config")
    if isinstance(config, str):
        from compiler.yamlio import load_layer_json

        config = load_layer_json(config, f"{where}: field config")
    number = item.get("proposal")
    if not isinstance(config, dict) or not isinstance(number, int) or isinstance(number, bool):
        raise InputError(f"{where}: a proposal needs a map `config` and a number `proposal`")
    state = item.get("state")
    if state not in (PROPOSED, APPROVED):
        raise InputError(f"{where}: field state must be {PROPOSED} or {APPROVED}, not {state!r}")
    return Proposal(
        pk=str(item["pk"]),
        number=number,
        config=config,
        cluster=item.get("cluster"),
        author=str(item.get("author", "")),
        comment=str(item.get("comment", "")),
        created_at=str(item.get("created_at", "")),
        state=state,
        approved_by=str(item.get("approved_by", "")),
        approved_at=str(item.get("approved_at", "")),
        version=int(item.get("approved_version", 0)),
    )


def refused_approval(err: ClientError, approval: Approval) -> InputError | None:
    """The error when a transaction failed because the proposal is no longer proposed."""
    reasons = err.response.get("CancellationReasons") or []
    codes = [str(r.get("Code", "")) for r in reasons if isinstance(r, Mapping)]
    if len(codes) > 2 and codes[2] == "ConditionalCheckFailed":
        proposal = approval.proposal
        return InputError(
            f"{proposal.layer_name} proposal {proposal.number} was approved meanwhile; "
            "see `gitops-compiler config history`"
        )
    return None
