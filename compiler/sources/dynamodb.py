"""The config table on DynamoDB (AWS, DynamoDB Local or moto's server: the endpoint decides)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from compiler.errors import CompilerError, OutsideError, UsageError
from compiler.model import LayerVersion, layer_name_from_pk, sort_key_for
from compiler.sources import Pin
from compiler.sources.attributes import config_attribute, to_dynamo_numbers
from compiler.sources.heads import (
    HeadReader,
    Outcome,
    UnsupportedOperation,
    backoff,
    head_condition,
    serialized,
)
from compiler.sources.items import (
    HEAD_SK,
    format_timestamp,
    layer_version_from_item,
    next_version,
    parse_timestamp,
    plain,
)
from compiler.sources.listing import (
    listed_by_index,
    listed_by_scan,
    sk_index_active,
    sk_index_definition,
)
from compiler.sources.proposals import Approval, refused_approval

# A concurrent writer took our version number: read again and retry after a jittered
# back-off (heads.backoff); 8 writers of one layer at once all get through (issue 18).
_PUT_ATTEMPTS = 16
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
    # A version, once written, is never rewritten (conditional puts): in one table, its
    # pk and version name its content (treerecord.py fingerprints table layers so, with
    # the table's `identity`).
    versions_immutable = True
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
        # TransactWriteItems until the endpoint says it has none (dynalite).
        self._transactions = True
        self.listed_versions: dict[str, int] = {}  # by cluster name, from list_clusters

    @property
    def client(self) -> Any:
        """The boto3 client (thread-safe): heads.py batches its reads on it."""
        return self._client

    # -- reading -------------------------------------------------------------

    def read(self, pk: str, pin: Pin) -> LayerVersion | None:
        name = layer_name_from_pk(pk)
        if name in pin.versions:
            return self._get(pk, pin.versions[name])
        if pin.as_of is None:
            return self._latest(pk)
        for version in self._iter_versions(pk):
            if parse_timestamp(version.created_at, pk) <= pin.as_of:
                return version
        return None

    def read_latest_many(self, pks: Iterable[str], *, content: bool = True) -> dict[str, Outcome]:
        """The latest version of each layer (None: it has none), or the error reading it:
        heads in batches, a Query where a head is missing or stale (heads.py). Without
        `content`, the versions come without their config (`{}`): which versions are the
        latest and the clusters' facts, for a compile that may keep them (treerecord.py)."""
        return HeadReader(self).latest(pks, content=content)

    def read_latest_numbers(self, pks: Iterable[str]) -> dict[str, int | CompilerError | None]:
        """Only the latest version number of each layer, by the same reads without the
        layers' content (heads.py)."""
        return HeadReader(self).latest_numbers(pks)

    def query_latest(self, pk: str, *, repair: bool = False) -> LayerVersion | None:
        """The latest version by a Query: right whatever the heads say. With `repair`, its
        head is put too: the version item as stored, attribute for attribute (a `config`
        stored as a JSON string stays one), so `table verify` finds them equal."""
        raw = self._query_raw(pk, limit=1)[0]
        if not raw:
            return None
        latest = version_of_item(raw[0])
        if repair:
            self.repair_head(raw[0], latest.version)
        return latest

    def _latest(self, pk: str) -> LayerVersion | None:
        found = self.read_latest_many([pk])[pk]
        if isinstance(found, CompilerError):
            raise found
        return found

    def identity(self) -> str | None:
        """Which table this is: endpoint, name and creation time (a table deleted and
        created again, or a local server seeded afresh, is another table); None when
        DynamoDB will not say (no DescribeTable permission: then nothing is known by
        version alone)."""
        try:
            table = self._client.describe_table(TableName=self.table)["Table"]
        except (ClientError, BotoCoreError, KeyError):
            return None
        created = table.get("CreationDateTime")
        if created is None:
            return None
        return f"{self.endpoint_url or 'aws'}\0{table.get('TableArn', self.table)}\0{created}"

    def history(self, pk: str) -> list[LayerVersion]:
        return list(self._iter_versions(pk))

    def list_clusters(
        self, as_of: datetime | None = None, *, known: Mapping[str, int] | None = None
    ) -> list[str]:
        """`known`: the clusters of the caller's output, with their record's version
        there (listing.py): listed unless the table has no latest version of them or
        it is a tombstone, whatever the index says."""
        if as_of is None and sk_index_active(self):
            listed = listed_by_index(self, known or {})
        else:
            listed = listed_by_scan(self, as_of)
        # What the listing saw of each cluster: its latest version, by number (read from
        # every version's key, or from its head and the key after), for a compile that
        # may keep it (run.py).
        self.listed_versions = {name: n for name, n in listed.items() if n is not None}
        return sorted(listed)

    def _get(self, pk: str, version: int) -> LayerVersion | None:
        with self.errors_while(f"reading {pk} version {version}"):
            page = self._client.get_item(
                TableName=self.table,
                Key={"pk": {"S": pk}, "sk": {"S": sort_key_for(version)}},
                ConsistentRead=True,
            )
        return version_of_item(page["Item"]) if "Item" in page else None

    def _query_page(
        self, pk: str, *, limit: int, start: Mapping[str, Any] | None = None
    ) -> tuple[list[LayerVersion], Mapping[str, Any] | None]:
        items, last = self._query_raw(pk, limit=limit, start=start)
        return [version_of_item(item) for item in items], last

    def _query_raw(
        self, pk: str, *, limit: int, start: Mapping[str, Any] | None = None
    ) -> tuple[list[Mapping[str, Any]], Mapping[str, Any] | None]:
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
        with self.errors_while(f"reading {pk}"):
            page = self._client.query(**request)
        return self.page_items(page, f"reading {pk}"), page.get("LastEvaluatedKey")

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
        approval: Approval | None = None,
    ) -> LayerVersion:
        stamp = created_at or format_timestamp(datetime.now(UTC))
        for attempt in range(_PUT_ATTEMPTS):
            number = version
            if number is None:
                # Numbered from the versions themselves (a Query), never from the head:
                # another system may have written past a gap, which the head's check
                # cannot see, and a version below it would never be the latest.
                latest = self.query_latest(pk)
                # Above the head too, where it names a later version than the versions
                # hold (`table verify` reports that): a version below it is never read.
                highest = max(latest.version if latest else 0, HeadReader(self).head_number(pk))
                number = next_version(pk, highest or None)
            item: dict[str, Any] = {
                "pk": pk,
                "sk": sort_key_for(number),
                "version": number,
                "config": config_attribute(config),
                "created_at": stamp,
                "author": author,
                "comment": comment,
            }
            if cluster is not None:
                item["cluster"] = to_dynamo_numbers(dict(cluster))
            if retired:
                item["retired"] = True
            if approval is not None:
                item.update(proposal=approval.proposal.number, approved_by=approval.approver)
            # Validate before writing: a malformed item in the table breaks every later read.
            written = layer_version_from_item(plain(item, pk))
            with self.errors_while(f"writing {pk}"):
                if self._write_version(item, number, approval):
                    return written
            if version is not None:
                raise OutsideError(
                    f"{pk} version {number} exists already; versions are never overwritten"
                )
            backoff(attempt)  # someone wrote this version first: take the next number
        raise OutsideError(f"writing {pk}: {_PUT_ATTEMPTS} concurrent writers took each version")

    def _write_version(
        self, item: Mapping[str, Any], number: int, approval: Approval | None = None
    ) -> bool:
        """Put a new version and its head at once; False when the number was taken.

        Every write is a new version: the condition never lets one be overwritten.
        An approved proposal is marked so in the same transaction (proposals.py).
        """
        version_put: dict[str, Any] = {
            "TableName": self.table,
            "Item": serialized(item),
            "ConditionExpression": "attribute_not_exists(sk)",
        }
        head_put = {
            "TableName": self.table,
            "Item": serialized({**item, "sk": HEAD_SK}),
            **head_condition(number),
        }
        if self._transactions:
            try:
                both: Any = [{"Put": version_put}, {"Put": head_put}]
                if approval is not None:
                    both.append(approval.transact_update(self.table, number, item["created_at"]))
                self._client.transact_write_items(TransactItems=both)
                return True
            except ClientError as err:
                if not self._transaction_refused(err):
                    raise
                if approval is not None and (refused := refused_approval(err, approval)):
                    raise refused from None
                if self._transactions:  # else: none at this endpoint, the plain puts below
                    reasons = _cancellation_reasons(err)
                    if reasons[:1] != ["None"] or self._exists(item["pk"], item["sk"]):
                        return False  # the version was taken (or writes conflicted): retry
                    # Only the head refused: it names a later version already (a seed
                    # writing an old version), which stays the latest; the version alone.
                    head_put = {}
        if approval is not None and not self._transactions:  # never half an approval
            raise UsageError(f"approving a proposal needs TransactWriteItems{self.at()}")
        if approval is not None:
            return False  # the head names a later version: read the latest again
        return self._put_plain(version_put, head_put)

    def _transaction_refused(self, err: ClientError) -> bool:
        """Whether a TransactWriteItems error means "write otherwise" (True) or a failure."""
        code = err.response.get("Error", {}).get("Code")
        if code == "UnknownOperationException":
            # dynalite has no transactions (README): version, then head, from now on.
            self._transactions = False
            return True
        return code in ("TransactionCanceledException", "TransactionConflictException")

    def _put_plain(self, version_put: Mapping[str, Any], head_put: Mapping[str, Any]) -> bool:
        """Without a transaction: the version, then its head. If this process dies between
        the two, the head is stale, and readers see that and repair it (heads.py)."""
        try:
            self._client.put_item(**version_put)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        if head_put:
            self._put_head(head_put)
        return True

    def repair_head(self, raw: Mapping[str, Any], version: int) -> None:
        """Point a stale head at a version, given as stored (a copy of it, checked
        already): a conditional put, never moving a head back."""
        with self.errors_while(f"repairing the head of {raw['pk']['S']}"):
            self._put_head(
                {
                    "TableName": self.table,
                    "Item": {**raw, "sk": {"S": HEAD_SK}},
                    **head_condition(version),
                }
            )

    def _put_head(self, head_put: Mapping[str, Any]) -> None:
        try:
            self._client.put_item(**head_put)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            # A later version's head is there already: nothing to do.

    def _exists(self, pk: str, sk: str) -> bool:
        page = self._client.get_item(
            TableName=self.table,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            ConsistentRead=True,
            ProjectionExpression="pk",
        )
        return "Item" in page

    def create_table(self) -> bool:
        """Create the table if it does not exist; True when it was created."""
        with self.errors_while(f"creating table {self.table}"):
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
                    GlobalSecondaryIndexes=[sk_index_definition()],  # type: ignore[list-item]
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
    def errors_while(self, doing: str) -> Iterator[None]:
        try:
            yield
        except ClientError as err:
            raise self._client_error(err, doing) from None
        except BotoCoreError as err:
            raise self._botocore_error(err, doing) from None

    def page_items(self, page: Mapping[str, Any], doing: str) -> list[Any]:
        """The items of an answer; one without them did not come from a DynamoDB."""
        items = page.get("Items")
        if not isinstance(items, list):
            raise OutsideError(
                f"DynamoDB{self.at()} answered without items while {doing}: is the "
                "endpoint a DynamoDB, not a proxy or a web server?"
            )
        return items

    def _client_error(self, err: ClientError, doing: str) -> OutsideError:
        error = err.response.get("Error", {})
        code, message = error.get("Code", "?"), error.get("Message", "")
        if code == "UnknownOperationException":
            return UnsupportedOperation(f"DynamoDB{self.at()} does not support {doing}")
        if code == "ResourceNotFoundException":
            return OutsideError(
                f"DynamoDB table {self.table!r} not found{self.at()} while {doing}; "
                "create it with `gitops-compiler table create`"
            )
        # botocore retried throttling and server errors already (client_config): say so.
        retries = err.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        tried = f" (still failing after {retries} retries with back-off)" if retries else ""
        return OutsideError(f"DynamoDB {code}{self.at()} while {doing}: {message}{tried}")

    def _botocore_error(self, err: BotoCoreError, doing: str) -> OutsideError:
        if isinstance(err, NoCredentialsError):
            return OutsideError(
                f"no AWS credentials while {doing}: set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY (any value works for a local endpoint)"
            )
        return OutsideError(f"DynamoDB unreachable{self.at()} while {doing}: {err}")

    def at(self) -> str:
        return f" at {self.endpoint_url}" if self.endpoint_url else ""


def version_of_item(raw: Mapping[str, Any]) -> LayerVersion:
    """A version item as DynamoDB answers it, checked and converted as a compile reads it."""
    pk = raw.get("pk", {}).get("S", "?")
    sk = raw.get("sk", {}).get("S", "?")
    item = {k: _deserializer.deserialize(v) for k, v in raw.items()}
    return layer_version_from_item(plain(item, f"item pk={pk!r} sk={sk!r}"))


def _cancellation_reasons(err: ClientError) -> list[str]:
    """Per item of a cancelled transaction: `None` (fine), `ConditionalCheckFailed`, ..."""
    reasons = err.response.get("CancellationReasons") or []
    return [str(r.get("Code", "?")) for r in reasons if isinstance(r, Mapping)]
