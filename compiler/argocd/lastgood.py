"""Each cluster's last known good: a git revision Argo CD reported Synced and Healthy for
all of the cluster's Applications, with the config versions it was compiled from.

Items of the config table (DESIGN.md "DynamoDB table"): pk `lkg#<cluster>`, sk
`v#<10 digits>`, written with a conditional put, never overwritten; the latest is a
Query with `ScanIndexForward=False, Limit=1` and `ConsistentRead`. A record repeats
no revision: the same good report twice writes one item.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from compiler.errors import InputError, OutsideError
from compiler.model import sort_key_for
from compiler.sources.dynamodb import client_config

PK_PREFIX = "lkg#"
_ATTEMPTS = 5


@dataclass(frozen=True)
class GoodState:
    cluster: str
    version: int
    revision: str  # the git commit Argo CD reported good
    lock: Mapping[str, Any]  # the cluster's config-lock.json at that revision
    report: Mapping[str, Any]  # what Argo CD said: app -> {health, sync}
    recorded_at: str

    def pins(self) -> dict[str, int]:
        """The layer versions to compile from (`rollback --pin` form): DynamoDB layers only;
        overlay files are in git at `revision`."""
        return {
            str(layer["layer"]): int(layer["version"])
            for layer in self.lock.get("layers", [])
            if "version" in layer
        }


class LastKnownGood:
    def __init__(
        self, table: str, *, region: str, endpoint_url: str | None, client: Any = None
    ) -> None:
        self.table = table
        self._client = client or boto3.client(
            "dynamodb", region_name=region, endpoint_url=endpoint_url, config=client_config()
        )

    def latest(self, cluster: str) -> GoodState | None:
        try:
            page = self._client.query(
                TableName=self.table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
                ExpressionAttributeValues={":pk": {"S": PK_PREFIX + cluster}, ":v": {"S": "v#"}},
                ScanIndexForward=False,
                Limit=1,
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as err:
            raise OutsideError(f"reading {PK_PREFIX}{cluster} from {self.table}: {err}") from None
        items = page.get("Items") or []
        return _state(cluster, items[0]) if items else None

    def require(self, cluster: str) -> GoodState:
        """The latest good state; bad input (exit 2) saying what to do when there is none."""
        found = self.latest(cluster)
        if found is None:
            raise InputError(
                f"cluster {cluster}: no last known good is recorded ({PK_PREFIX}{cluster} in "
                f"{self.table} is empty): run `watch --argocd-server URL` until Argo CD reports "
                "the cluster Synced and Healthy, or roll back to explicit versions with "
                "`rollback --cluster C --as-of T` or `--versions LAYER=N,...`"
            )
        return found

    def record(
        self,
        cluster: str,
        revision: str,
        lock: Mapping[str, Any],
        report: Mapping[str, Any],
        recorded_at: str,
    ) -> GoodState | None:
        """A new version for a newly good revision; None when it is the latest already."""
        for _ in range(_ATTEMPTS):
            latest = self.latest(cluster)
            if latest is not None and latest.revision == revision:
                return None
            number = latest.version + 1 if latest else 1
            item = {
                "pk": {"S": PK_PREFIX + cluster},
                "sk": {"S": sort_key_for(number)},
                "version": {"N": str(number)},
                "revision": {"S": revision},
                "lock": {"S": json.dumps(lock, sort_keys=True)},
                "report": {"S": json.dumps(report, sort_keys=True)},
                "created_at": {"S": recorded_at},
            }
            try:
                self._client.put_item(
                    TableName=self.table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk) AND attribute_not_exists(sk)",
                )
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    continue  # another watcher recorded this version first: look again
                raise OutsideError(f"writing {PK_PREFIX}{cluster}: {err}") from None
            except BotoCoreError as err:
                raise OutsideError(f"writing {PK_PREFIX}{cluster}: {err}") from None
            return _state(cluster, item)
        raise OutsideError(f"writing {PK_PREFIX}{cluster}: {_ATTEMPTS} concurrent writers")


def _state(cluster: str, item: Mapping[str, Any]) -> GoodState:
    where = f"item pk={PK_PREFIX}{cluster} sk={item.get('sk', {}).get('S')}"
    try:
        return GoodState(
            cluster=cluster,
            version=int(item["version"]["N"]),
            revision=item["revision"]["S"],
            lock=json.loads(item["lock"]["S"]),
            report=json.loads(item["report"]["S"]),
            recorded_at=item["created_at"]["S"],
        )
    except (KeyError, ValueError, TypeError) as err:
        raise InputError(f"{where}: malformed last-known-good record ({err!r})") from None
