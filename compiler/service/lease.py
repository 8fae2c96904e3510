"""One actor among replicas: a lease item taken and renewed with conditional writes.

The item (pk `lease#serve`, sk `lease`) holds the owner, the expiry (Unix time)
and a fencing counter that goes up by one at every change of owner. Only the
holder consumes the stream and publishes; a replica that sees the lease
expired takes it (so a killed holder is replaced within one lease time). The
holder's writes that must not come from a stale holder (stream checkpoints)
are made conditional on the counter it took (`condition`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from compiler.errors import OutsideError

LEASE_KEY = {"pk": {"S": "lease#serve"}, "sk": {"S": "lease"}}


@dataclass
class Lease:
    client: Any
    table: str
    owner: str
    duration: float  # seconds a lease lasts unless renewed
    clock: Callable[[], float] = time.time
    fence: int | None = field(default=None)  # the counter while held; None: not held

    @property
    def held(self) -> bool:
        return self.fence is not None

    def acquire_or_renew(self) -> bool:
        """Renew a lease we hold, else take a free or expired one; True when held after."""
        now = self.clock()
        if self.fence is not None and self._renew(now):
            return True
        self.fence = None
        return self._take(now)

    def _renew(self, now: float) -> bool:
        return self._update(
            "SET expires_at = :expires",
            "#owner = :me AND fence = :fence",
            {":expires": {"N": f"{now + self.duration:.3f}"}, ":me": {"S": self.owner},
             ":fence": {"N": str(self.fence)}},
        ) is not None  # fmt: skip

    def _take(self, now: float) -> bool:
        answer = self._update(
            "SET #owner = :me, expires_at = :expires ADD fence :one",
            "attribute_not_exists(pk) OR expires_at < :now",
            {":expires": {"N": f"{now + self.duration:.3f}"}, ":me": {"S": self.owner},
             ":one": {"N": "1"}, ":now": {"N": f"{now:.3f}"}},
        )  # fmt: skip
        if answer is None:
            return False
        self.fence = int(answer["fence"]["N"])
        return True

    def release(self) -> None:
        """Let the other replica take over at once (SIGTERM), not after the lease time."""
        if self.fence is None:
            return
        self._update(
            "SET expires_at = :zero",
            "#owner = :me AND fence = :fence",
            {":zero": {"N": "0"}, ":me": {"S": self.owner}, ":fence": {"N": str(self.fence)}},
        )
        self.fence = None

    def condition(self) -> dict[str, Any]:
        """A transaction's ConditionCheck: this replica still holds the lease it took."""
        return {
            "ConditionCheck": {
                "TableName": self.table,
                "Key": LEASE_KEY,
                "ConditionExpression": "#owner = :me AND fence = :fence",
                "ExpressionAttributeNames": {"#owner": "owner"},
                "ExpressionAttributeValues": {
                    ":me": {"S": self.owner},
                    ":fence": {"N": str(self.fence if self.fence is not None else -1)},
                },
            }
        }

    def _update(
        self, expression: str, condition: str, values: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The item after a conditional update, or None when the condition failed."""
        try:
            answer = self.client.update_item(
                TableName=self.table,
                Key=LEASE_KEY,
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise OutsideError(f"DynamoDB while updating the lease: {err}") from None
        except BotoCoreError as err:
            raise OutsideError(f"DynamoDB unreachable while updating the lease: {err}") from None
        attributes: dict[str, Any] = answer.get("Attributes", {})
        return attributes
