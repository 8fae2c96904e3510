"""The config table on DynamoDB (AWS, DynamoDB Local or moto's server: the endpoint decides)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from compiler.errors import OutsideError
from compiler.model import CLUSTER_PK_PREFIX, LayerVersion, layer_name_from_pk, sort_key_for
from compiler.sources import Pin
from compiler.sources.items import (
    format_timestamp,
    layer_version_from_item,
    next_version,
    parse_timestamp,
    plain,
)

# `config` is a map only while it is small enough to read in the AWS console; past
# that it is stored as a JSON string. Every attribute of a map is typed and parsed
# one by one by the server and by botocore (a cluster record of 10 namespaces,
# ~500 attributes, took moto 50 ms to serve as a map and 2 ms as a string), a map
# may nest 32 levels at most, and the item must stay under DynamoDB's 400 KB.
_INLINE_CONFIG_ATTRIBUTES = 200
_INLINE_CONFIG_DEPTH = 16
_INLINE_CONFIG_BYTES = 300_000
_PUT_ATTEMPTS = 5  # a concurrent writer took our version number: read again and retry
_PAGE = 25  # versions read per page when searching back in time
_READ_CONCURRENCY = 16

_deserializer = TypeDeserializer()
_serializer = TypeSerializer()


def client_config() -> Config:
    """Explicit retries and timeouts (DESIGN.md pitfalls): bounded, never hanging."""
    return Config(
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=5,
        read_timeout=15,
        max_pool_connections=_READ_CONCURRENCY,
    )


class DynamoDBStore:
    source_name = "dynamodb"
    # Reads in flight at once when a run loads many clusters (StackLoader.prefetch);
    # the client keeps as many connections (boto3 is thread-safe per client).
    read_concurrency = _READ_CONCURRENCY

    def __init__(
        self, table: str, *, region: str, endpoint_url: str | None, client: Any = None
    ) -> None:
        self.table = table
        self.endpoint_url = endpoint_url
        self._client = client or boto3.client(
            "dynamodb", region_name=region, endpoint_url=endpoint_url, config=client_config()
        )

    # -- reading -------------------------------------------------------------

    def read(self, pk: str, pin: Pin) -> LayerVersion | None:
        name = layer_name_from_pk(pk)
        if name in pin.versions:
            return self._get(pk, pin.versions[name])
        if pin.as_of is None:
            page = self._query(pk, limit=1)
            return page[0] if page else None
        for version in self._iter_versions(pk):
            if parse_timestamp(version.created_at, pk) <= pin.as_of:
                return version
        return None

    def history(self, pk: str) -> list[LayerVersion]:
        return list(self._iter_versions(pk))

    def list_clusters(self) -> list[str]:
        # The latest sort key of each cluster and whether it is a tombstone: a retired
        # cluster is not listed (its history stays in the table).
        latest: dict[str, tuple[str, bool]] = {}
        request: dict[str, Any] = {
            "TableName": self.table,
            "ProjectionExpression": "pk, sk, retired",
            "FilterExpression": "begins_with(pk, :prefix)",
            "ExpressionAttributeValues": {":prefix": {"S": CLUSTER_PK_PREFIX}},
            "ConsistentRead": True,
        }
        with self._errors("listing clusters"):
            while True:
                page = self._client.scan(**request)
                items = self._items(page, "listing clusters")
                for item in items:
                    name, sk = item["pk"]["S"].partition("#")[2], item["sk"]["S"]
                    if sk.startswith("v#") and sk > latest.get(name, ("", False))[0]:
                        latest[name] = (sk, item.get("retired", {}).get("BOOL", False))
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(name for name, (_, retired) in latest.items() if not retired)

    def layer_keys(self) -> list[str]:
        """Every pk in the table, sorted (retired clusters included): what a dump needs."""
        keys: set[str] = set()
        request: dict[str, Any] = {
            "TableName": self.table,
            "ProjectionExpression": "pk",
            "ConsistentRead": True,
        }
        with self._errors("listing layers"):
            while True:
                page = self._client.scan(**request)
                keys.update(item["pk"]["S"] for item in self._items(page, "listing layers"))
                if "LastEvaluatedKey" not in page:
                    return sorted(keys)
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _get(self, pk: str, version: int) -> LayerVersion | None:
        with self._errors(f"reading {pk} version {version}"):
            page = self._client.get_item(
                TableName=self.table,
                Key={"pk": {"S": pk}, "sk": {"S": sort_key_for(version)}},
                ConsistentRead=True,
            )
        return _convert(page["Item"]) if "Item" in page else None

    def _query(
        self, pk: str, *, limit: int, start: Mapping[str, Any] | None = None
    ) -> list[LayerVersion]:
        return self._query_page(pk, limit=limit, start=start)[0]

    def _query_page(
        self, pk: str, *, limit: int, start: Mapping[str, Any] | None = None
    ) -> tuple[list[LayerVersion], Mapping[str, Any] | None]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :v)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":v": {"S": "v#"}},
            "ScanIndexForward": False,  # newest first
            "ConsistentRead": True,
            "Limit": limit,
        }
        if start:
            request["ExclusiveStartKey"] = start
        with self._errors(f"reading {pk}"):
            page = self._client.query(**request)
        items = self._items(page, f"reading {pk}")
        return [_convert(item) for item in items], page.get("LastEvaluatedKey")

    def _iter_versions(self, pk: str) -> Iterator[LayerVersion]:
        start: Mapping[str, Any] | None = None
        while True:
            items, start = self._query_page(pk, limit=_PAGE, start=start)
            yield from items
            if not start:
                return

    # -- writing -------------------------------------------------------------

    def put(
        self,
        pk: str,
        config: Mapping[str, Any],
        *,
        cluster: Mapping[str, Any] | None,
        author: str,
        comment: str,
        created_at: str | None = None,
        version: int | None = None,
        retired: bool = False,
    ) -> LayerVersion:
        stamp = created_at or format_timestamp(datetime.now(UTC))
        for _attempt in range(_PUT_ATTEMPTS):
            number = version
            if number is None:
                latest = self._query(pk, limit=1)
                number = next_version(pk, latest[0].version if latest else None)
            item: dict[str, Any] = {
                "pk": pk,
                "sk": sort_key_for(number),
                "version": number,
                "config": _config_attribute(config),
                "created_at": stamp,
                "author": author,
                "comment": comment,
            }
            if cluster is not None:
                item["cluster"] = _to_dynamo_numbers(dict(cluster))
            if retired:
                item["retired"] = True
            # Validate before writing: a malformed item in the table breaks every later read.
            written = layer_version_from_item(plain(item, pk))
            try:
                self._client.put_item(
                    TableName=self.table,
                    Item={k: _serializer.serialize(v) for k, v in item.items()},
                    # Every write is a new version: never overwrite one.
                    ConditionExpression="attribute_not_exists(pk) AND attribute_not_exists(sk)",
                )
            except ClientError as err:
                code = err.response.get("Error", {}).get("Code")
                if code == "ConditionalCheckFailedException" and version is None:
                    continue  # someone wrote this version first: take the next number
                if code == "ConditionalCheckFailedException":
                    raise OutsideError(
                        f"{pk} version {number} exists already; versions are never overwritten"
                    ) from None
                raise self._client_error(err, f"writing {pk}") from None
            except BotoCoreError as err:
                raise self._botocore_error(err, f"writing {pk}") from None
            return written
        raise OutsideError(f"writing {pk}: {_PUT_ATTEMPTS} concurrent writers took each version")

    def create_table(self) -> bool:
        """Create the table if it does not exist; True when it was created."""
        with self._errors(f"creating table {self.table}"):
            try:
                self._client.create_table(
                    TableName=self.table,
                    KeySchema=[
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    AttributeDefinitions=[
                        {"AttributeName": "pk", "AttributeType": "S"},
                        {"AttributeName": "sk", "AttributeType": "S"},
                    ],
                    BillingMode="PAY_PER_REQUEST",
                )
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") == "ResourceInUseException":
                    return False
                raise
            self._client.get_waiter("table_exists").wait(
                TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
            )
        return True

    # -- errors --------------------------------------------------------------

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except ClientError as err:
            raise self._client_error(err, doing) from None
        except BotoCoreError as err:
            raise self._botocore_error(err, doing) from None

    def _items(self, page: Mapping[str, Any], doing: str) -> list[Any]:
        """The items of an answer; one without them did not come from a DynamoDB."""
        items = page.get("Items")
        if not isinstance(items, list):
            raise OutsideError(
                f"DynamoDB{self._at()} answered without items while {doing}: is the "
                "endpoint a DynamoDB, not a proxy or a web server?"
            )
        return items

    def _client_error(self, err: ClientError, doing: str) -> OutsideError:
        error = err.response.get("Error", {})
        code, message = error.get("Code", "?"), error.get("Message", "")
        if code == "ResourceNotFoundException":
            return OutsideError(
                f"DynamoDB table {self.table!r} not found{self._at()} while {doing}; "
                "create it with `gitops-compiler table create`"
            )
        # botocore retried throttling and server errors already (client_config): say so.
        retries = err.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        tried = f" (still failing after {retries} retries with back-off)" if retries else ""
        return OutsideError(f"DynamoDB {code}{self._at()} while {doing}: {message}{tried}")

    def _botocore_error(self, err: BotoCoreError, doing: str) -> OutsideError:
        if isinstance(err, NoCredentialsError):
            return OutsideError(
                f"no AWS credentials while {doing}: set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY (any value works for a local endpoint)"
            )
        return OutsideError(f"DynamoDB unreachable{self._at()} while {doing}: {err}")

    def _at(self) -> str:
        return f" at {self.endpoint_url}" if self.endpoint_url else ""


def _convert(raw: Mapping[str, Any]) -> LayerVersion:
    pk = raw.get("pk", {}).get("S", "?")
    sk = raw.get("sk", {}).get("S", "?")
    item = {k: _deserializer.deserialize(v) for k, v in raw.items()}
    return layer_version_from_item(plain(item, f"item pk={pk!r} sk={sk!r}"))


def _config_attribute(config: Mapping[str, Any]) -> Any:
    as_json = json.dumps(config, sort_keys=True, separators=(",", ":"))
    if len(as_json) > _INLINE_CONFIG_BYTES or not _small_map(config):
        return as_json
    return _to_dynamo_numbers(dict(config))


def _small_map(config: Mapping[str, Any]) -> bool:
    """At most _INLINE_CONFIG_ATTRIBUTES values, nested at most _INLINE_CONFIG_DEPTH deep."""
    count = 0
    stack: list[tuple[Any, int]] = [(config, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > _INLINE_CONFIG_DEPTH:
            return False
        if isinstance(value, Mapping):
            children = list(value.values())
        elif isinstance(value, list):
            children = value
        else:
            continue
        count += len(children)
        if count > _INLINE_CONFIG_ATTRIBUTES:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def _to_dynamo_numbers(value: Any) -> Any:
    """boto3 takes Decimal, not float: convert through str so 0.1 stays 0.1."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_dynamo_numbers(v) for v in value]
    return value
