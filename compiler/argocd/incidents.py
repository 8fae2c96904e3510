"""What the Argo CD guard did about a cluster, as items of the config table.

Beside the cluster's good states (`lkg#<cluster>`, `v#…`, `compiler/argocd/lastgood.py`)
the same partition holds its incidents, sk `e#<10 digits>`: a rollback it opened
(for which failing revision, to which good state), a stop (it will not act on the
cluster again until a person clears it or Argo CD reports a new good revision) and
a person's clear. Each is a new item written with a conditional put at the next
number, never an overwrite, so a restarted watch reads what it already did, and of
two watchers racing for the same number only one acts (`append` answers None to the
other, which decides again at its next poll).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from compiler.argocd.lastgood import PK_PREFIX
from compiler.errors import InputError, OutsideError
from compiler.sources.dynamodb import client_config

SK_PREFIX = "e#"
Kind = Literal["rollback", "stop", "clear"]
KINDS: tuple[Kind, ...] = ("rollback", "stop", "clear")


@dataclass(frozen=True)
class Incident:
    kind: Kind
    number: int
    revision: str  # the failing revision it answers ("" for a clear)
    good_version: int  # the good state current then (0: none recorded)
    reason: str
    created_at: str


class Incidents:
    def __init__(
        self, table: str, *, region: str, endpoint_url: str | None, client: Any = None
    ) -> None:
        self.table = table
        self._client = client or boto3.client(
            "dynamodb", region_name=region, endpoint_url=endpoint_url, config=client_config()
        )

    def history(self, cluster: str) -> list[Incident]:
        """Every incident of the cluster, oldest first."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :e)",
            "ExpressionAttributeValues": {
                ":pk": {"S": PK_PREFIX + cluster},
                ":e": {"S": SK_PREFIX},
            },
            "ConsistentRead": True,
        }
        found: list[Incident] = []
        while True:
            try:
                page = self._client.query(**request)
            except (ClientError, BotoCoreError) as err:
                raise OutsideError(
                    f"reading the incidents of {PK_PREFIX}{cluster} from {self.table}: {err}"
                ) from None
            found.extend(_incident(cluster, item) for item in page.get("Items") or [])
            if not page.get("LastEvaluatedKey"):
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def append(
        self,
        cluster: str,
        after: int,
        *,
        kind: Kind,
        revision: str,
        good_version: int,
        reason: str,
        created_at: str,
    ) -> Incident | None:
        """Incident number `after + 1`; None when another writer took that number."""
        incident = Incident(kind, after + 1, revision, good_version, reason, created_at)
        item: dict[str, Any] = {
            "pk": {"S": PK_PREFIX + cluster},
            "sk": {"S": f"{SK_PREFIX}{incident.number:010d}"},
            "kind": {"S": kind},
            "revision": {"S": revision},
            "good_version": {"N": str(good_version)},
            "reason": {"S": reason},
            "created_at": {"S": created_at},
        }
        try:
            self._client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) AND attribute_not_exists(sk)",
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise OutsideError(f"writing an incident of {PK_PREFIX}{cluster}: {err}") from None
        except BotoCoreError as err:
            raise OutsideError(f"writing an incident of {PK_PREFIX}{cluster}: {err}") from None
        return incident


def _incident(cluster: str, item: Mapping[str, Any]) -> Incident:
    where = f"item pk={PK_PREFIX}{cluster} sk={item.get('sk', {}).get('S')}"
    try:
        kind = item["kind"]["S"]
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
        return Incident(
            kind=kind,
            number=int(item["sk"]["S"].removeprefix(SK_PREFIX)),
            revision=item["revision"]["S"],
            good_version=int(item["good_version"]["N"]),
            reason=item["reason"]["S"],
            created_at=item["created_at"]["S"],
        )
    except (KeyError, ValueError, TypeError) as err:
        raise InputError(f"{where}: malformed incident record ({err})") from None
