"""Head items: the latest version of many layers in a few `BatchGetItem` calls (issue 18).

Beside its versions (`v#0000000042`), a layer keeps a head item (sk `head`), a copy
of its latest version written in the same `TransactWriteItems` as that version. A
compile reads the heads 100 keys a call instead of one `Query` per layer: on moto's
server a Query's time grows with the table, so one per layer made the fetch grow
quadratically with the fleet.

Other writers (the cluster provisioner, older compilers) may write versions without
touching the head. Their versions are never skipped: after the heads, one more batch
asks for the key of the version right after each head's (versions are numbered
consecutively, README "The table's write protocol"); where it exists the head is
stale, and that layer is read by a Query and its head repaired. A layer without a
head (a table from before heads) is read by a Query too.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from compiler.errors import CompilerError, OutsideError
from compiler.model import LayerVersion, sort_key_for
from compiler.sources.items import HEAD_SK, MAX_VERSION, layer_version_from_head, plain

if TYPE_CHECKING:
    from compiler.sources.dynamodb import DynamoDBStore

BATCH_KEYS = 100  # BatchGetItem's limit per call
_UNPROCESSED_ATTEMPTS = 8  # rounds of back-off while DynamoDB leaves keys unprocessed
_BACKOFF_BASE = 0.05  # seconds; doubled per round, at most _BACKOFF_CAP, full jitter
_BACKOFF_CAP = 2.0

Key = tuple[str, str]  # pk, sk
Outcome = LayerVersion | None | CompilerError  # per layer: the latest, none, or why not
State = tuple[int, bool]  # a layer's latest version number, and whether it is a tombstone

# What `latest(content=False)` reads of a head: its identity and the cluster's facts
# (the stack depends on the env). Each attribute asked costs moto's server ~0.1 ms a
# head, so no more than that: a retired cluster's message is read whole later.
_WITHOUT_CONTENT = ("pk", "sk", "version", "created_at", "cluster", "retired")

_deserializer = TypeDeserializer()
_serializer = TypeSerializer()


def backoff(attempt: int, sleep: Callable[[float], None] = time.sleep) -> None:
    """Full-jitter exponential back-off: concurrent writers and throttled reads spread out
    instead of retrying in step (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/)."""
    sleep(random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt)))


def head_condition(version: int) -> dict[str, Any]:
    """Put a head only over an older one: a slower writer never moves a head back. A head
    that names no version (another system's, or one copied from a version without it)
    is replaced too, or no write could ever head its layer again."""
    return {
        "ConditionExpression": "attribute_not_exists(sk) OR attribute_not_exists(#v) OR #v < :v",
        "ExpressionAttributeNames": {"#v": "version"},
        "ExpressionAttributeValues": {":v": {"N": str(version)}},
    }


def serialized(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items()}


class UnsupportedOperation(OutsideError):
    """The endpoint does not know an operation (dynalite has no transactions; a partial
    fake may lack BatchGetItem): callers fall back to plainer calls."""


class HeadReader:
    """The latest versions of many layers from one store, batched."""

    def __init__(self, store: DynamoDBStore) -> None:
        self.store = store

    def latest(self, pks: Iterable[str], *, content: bool = True) -> dict[str, Outcome]:
        """Without `content`, each version comes without its config (`{}`): what a
        no-change compile needs to tell which clusters changed (treerecord.py), a
        fraction of the bytes to send and parse. A layer read by a Query (no head, or a
        stale one) comes whole either way."""
        wanted = sorted(set(pks))
        found = self._current_heads(wanted, projection=None if content else _WITHOUT_CONTENT)
        if isinstance(found, CompilerError):
            return dict.fromkeys(wanted, found)
        heads, fallback, stale = found
        out: dict[str, Outcome] = {}
        for pk, raw in heads.items():
            try:
                item = plain(_plain(raw), f"item pk={pk!r} sk='head'")
                out[pk] = layer_version_from_head(item, content=content)
            except CompilerError as err:
                out[pk] = err
        out.update(self._by_query(fallback, repair=stale))
        return out

    def latest_numbers(self, pks: Iterable[str]) -> dict[str, int | CompilerError | None]:
        """Only the number of each layer's latest version (a hook's freshness check): the
        heads are read without their content, a fraction of the bytes to send and parse."""
        return {
            pk: state[0] if isinstance(state, tuple) else state
            for pk, state in self.latest_states(pks).items()
        }

    def latest_states(self, pks: Iterable[str]) -> dict[str, State | CompilerError | None]:
        """Each layer's latest version number and whether it is a tombstone (what the
        listing of clusters needs of each), read like `latest_numbers`."""
        wanted = sorted(set(pks))
        found = self._current_heads(wanted, projection=("pk", "sk", "version", "retired"))
        if isinstance(found, CompilerError):
            return dict.fromkeys(wanted, found)
        heads, fallback, stale = found
        out: dict[str, State | CompilerError | None] = {
            pk: (_head_number(raw), raw.get("retired", {}).get("BOOL") is True)
            for pk, raw in heads.items()
        }
        for pk, latest in self._by_query(fallback, repair=stale).items():
            out[pk] = (
                (latest.version, latest.retired) if isinstance(latest, LayerVersion) else latest
            )
        return out

    def head_number(self, pk: str) -> int:
        """The version the layer's head names (0: no head, or none readable)."""
        with self.store.errors_while(f"reading the head of {pk}"):
            page = self.store.client.get_item(
                TableName=self.store.table,
                Key={"pk": {"S": pk}, "sk": {"S": HEAD_SK}},
                ProjectionExpression="version",
                ConsistentRead=True,
            )
        return _head_number(page.get("Item", {}))

    def _current_heads(
        self, wanted: Sequence[str], *, projection: Sequence[str] | None
    ) -> tuple[dict[str, Mapping[str, Any]], list[str], set[str]] | CompilerError:
        """The raw heads that name their layer's latest version, by pk; the layers to
        read by a Query instead (no head, or a stale one); and the stale ones (to repair:
        a head followed by a version, or one naming no version)."""
        try:
            heads = self.batch_get([(pk, HEAD_SK) for pk in wanted], projection=projection)
        except CompilerError as err:
            if not isinstance(err, UnsupportedOperation):
                return err
            heads = {}  # a DynamoDB-compatible server without BatchGetItem: Query each
        numbers = {pk: _head_number(raw) for (pk, _), raw in heads.items()}
        after = [(pk, sort_key_for(n + 1)) for pk, n in numbers.items() if n and n < MAX_VERSION]
        try:
            stale = {pk for pk, _ in self.batch_get(after, projection=("pk", "sk"))}
        except CompilerError as err:
            return err
        stale |= {pk for pk, n in numbers.items() if not n}  # a head naming no version
        current: dict[str, Mapping[str, Any]] = {}
        fallback = []
        for pk in wanted:
            raw = heads.get((pk, HEAD_SK))
            if raw is None or pk in stale:
                fallback.append(pk)
            else:
                current[pk] = raw
        return current, fallback, stale

    def batch_get(
        self, keys: Sequence[Key], *, projection: Sequence[str] | None = None
    ) -> dict[Key, Mapping[str, Any]]:
        """The items of these keys that exist (raw), BATCH_KEYS a call, several in flight."""
        unique = sorted(set(keys))
        chunks = [unique[i : i + BATCH_KEYS] for i in range(0, len(unique), BATCH_KEYS)]
        found: dict[Key, Mapping[str, Any]] = {}
        if not chunks:
            return found
        workers = min(len(chunks), self.store.read_concurrency)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch") as pool:
            for items in pool.map(lambda chunk: self._chunk(chunk, projection), chunks):
                found.update({(i["pk"]["S"], i["sk"]["S"]): i for i in items})
        return found

    def _chunk(
        self, keys: Sequence[Key], projection: Sequence[str] | None
    ) -> list[Mapping[str, Any]]:
        table = self.store.table
        request: dict[str, Any] = {
            "Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys],
            "ConsistentRead": True,
        }
        if projection:
            # Every name through a placeholder: `comment` and others are reserved words.
            names = {f"#a{i}": name for i, name in enumerate(projection)}
            request["ProjectionExpression"] = ", ".join(names)
            request["ExpressionAttributeNames"] = names
        items: list[Mapping[str, Any]] = []
        doing = f"reading {len(keys)} head(s) in a batch"
        for attempt in range(_UNPROCESSED_ATTEMPTS):
            with self.store.errors_while(doing):
                page = self.store.client.batch_get_item(RequestItems={table: request})
            responses = page.get("Responses")
            if not isinstance(responses, dict):
                raise OutsideError(
                    f"DynamoDB{self.store.at()} answered a BatchGetItem without Responses"
                )
            items.extend(responses.get(table, []))
            request = page.get("UnprocessedKeys", {}).get(table) or {}
            if not request.get("Keys"):
                return items
            backoff(attempt)  # throttled or over 16 MB: the rest, after a pause
        raise OutsideError(
            f"DynamoDB{self.store.at()} left {len(request['Keys'])} key(s) unprocessed "
            f"after {_UNPROCESSED_ATTEMPTS} rounds of back-off while {doing}"
        )

    def _by_query(self, pks: Sequence[str], *, repair: set[str]) -> dict[str, Outcome]:
        def one(pk: str) -> Outcome:
            try:
                return self.store.query_latest(pk, repair=pk in repair)
            except CompilerError as err:
                return err

        if len(pks) <= 1:
            return {pk: one(pk) for pk in pks}
        workers = min(len(pks), self.store.read_concurrency)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="read") as pool:
            return dict(zip(pks, pool.map(one, pks), strict=True))


def _plain(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in raw.items()}


def _head_number(raw: Mapping[str, Any]) -> int:
    """The version a head names, 0 when it names none readable (then: a Query)."""
    text = raw.get("version", {}).get("N", "")
    return int(text) if isinstance(text, str) and text.isdigit() else 0
