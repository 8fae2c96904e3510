"""Validation of versioned items at the source edge: plain data in, `LayerVersion` out.

Every store converts its raw items here, so a malformed item gets the same
clear error (naming pk/sk and the field) whichever store it came from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from compiler.errors import InputError
from compiler.model import CLUSTER_PK_PREFIX, LayerVersion, sort_key_for

_PK = re.compile(r"^(defaults|(env|cluster)#[a-z0-9]([-a-z0-9]*[a-z0-9])?)$")
_KNOWN = {
    "pk", "sk", "version", "config", "created_at", "author", "comment", "cluster", "retired",
    "proposal", "approved_by",
}  # fmt: skip
MAX_ITEM_BYTES = 400 * 1024  # DynamoDB refuses larger items; a snapshot must not hold one
# Sort keys hold ten digits (v#0000000042) so that their order is the version order.
MAX_VERSION = 9_999_999_999
# The sort key of a layer's head item: a copy of its latest version (issue 18), read in
# batches. It sorts before every `v#` key, so Queries on `begins_with(sk, "v#")` skip it.
HEAD_SK = "head"


def plain(value: Any, where: str) -> Any:
    """DynamoDB's Decimal to int (when integral) or float; refuse what JSON cannot hold."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InputError(f"{where}: number {value} is not finite")
        integral = value == value.to_integral_value()
        return int(value) if integral else float(value)
    if isinstance(value, dict):
        return {str(k): plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset, bytes, bytearray)) or type(value).__name__ == "Binary":
        raise InputError(f"{where}: sets and binary values are not allowed, use lists and strings")
    return value


def parse_timestamp(text: str, where: str) -> datetime:
    """An ISO 8601 time; one without a zone is UTC."""
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {text!r} is not an ISO 8601 timestamp") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def format_timestamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_version_key(sk: str) -> bool:
    """Whether a sort key names a version: `v#` and ten ASCII digits (`v#2` does not;
    `table verify` reports such keys, and no read takes them for a version)."""
    digits = sk[2:]
    return sk.startswith("v#") and len(digits) == 10 and digits.isascii() and digits.isdigit()


def next_version(pk: str, latest: int | None) -> int:
    """The number of the version written after `latest` (None: the first)."""
    number = (latest or 0) + 1
    if number > MAX_VERSION:
        raise InputError(
            f"{pk} is at version {latest}, the last one the table can hold (sort keys have "
            f"ten digits, v#{MAX_VERSION}): no version can follow it; start a new layer"
        )
    return number


def layer_version_from_item(item: Mapping[str, Any], *, content: bool = True) -> LayerVersion:
    """Check one item of the table (plain data) and convert it; read without `content`,
    it has no config (and the version has `{}`)."""
    pk, sk = item.get("pk"), item.get("sk")
    where = f"item pk={pk!r} sk={sk!r}"
    if not isinstance(pk, str) or not _PK.match(pk):
        raise InputError(f"{where}: field pk must look like defaults, env#<env> or cluster#<name>")
    version = item.get("version")
    if isinstance(version, int) and version > MAX_VERSION:
        raise InputError(f"{where}: field version {version} is over the limit of {MAX_VERSION}")
    if not isinstance(sk, str) or not is_version_key(sk):
        raise InputError(f"{where}: field sk must look like v#0000000042")
    if content and (size := item_size(item)) > MAX_ITEM_BYTES:
        raise InputError(
            f"{where}: the item is {size} bytes, over DynamoDB's limit of {MAX_ITEM_BYTES}; "
            "split the layer"
        )
    unknown = sorted(set(item) - _KNOWN)
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InputError(f"{where}: field version must be a whole number >= 1, not {version!r}")
    if sort_key_for(version) != sk:
        raise InputError(f"{where}: field version {version} does not match the sort key")
    config = _config(item.get("config"), where) if content else {}
    created_at = item.get("created_at")
    if not isinstance(created_at, str):
        raise InputError(f"{where}: field created_at must be an ISO 8601 string")
    created_at = format_timestamp(parse_timestamp(created_at, f"{where}: field created_at"))
    for name in ("author", "comment", "approved_by"):
        if not isinstance(item.get(name, ""), str):
            raise InputError(f"{where}: field {name} must be a string")
    retired = item.get("retired", False)
    if not isinstance(retired, bool) or (retired and not pk.startswith(CLUSTER_PK_PREFIX)):
        raise InputError(f"{where}: field retired is true or false, on cluster# records only")
    proposal = item.get("proposal", 0)
    if isinstance(proposal, bool) or not isinstance(proposal, int) or proposal < 0:
        raise InputError(f"{where}: field proposal must be a whole number >= 1, not {proposal!r}")
    cluster = item.get("cluster")
    if pk.startswith(CLUSTER_PK_PREFIX):
        if not isinstance(cluster, dict):
            raise InputError(f"{where}: field cluster (name, env, server, region) is missing")
        if cluster.get("name") != pk.partition("#")[2]:
            raise InputError(f"{where}: field cluster.name must be {pk.partition('#')[2]!r}")
    elif cluster is not None:
        raise InputError(f"{where}: field cluster belongs on cluster# records only")
    return LayerVersion(
        pk=pk,
        sk=sk,
        version=version,
        config=config,
        created_at=created_at,
        author=item.get("author", ""),
        comment=item.get("comment", ""),
        cluster=cluster,
        retired=retired,
        proposal=proposal,
        approved_by=item.get("approved_by", ""),
    )


def is_layer_pk(pk: str) -> bool:
    """`defaults`, `env#<env>` or `cluster#<name>`: a pk that holds layer versions (the
    table also holds other records: last-known-good, leases, stream checkpoints)."""
    return bool(_PK.match(pk))


def layer_version_from_head(item: Mapping[str, Any], *, content: bool = True) -> LayerVersion:
    """Check a head item (plain data) and convert it to the version it copies (without
    its config, when read without `content`)."""
    pk, version = item.get("pk"), item.get("version")
    where = f"item pk={pk!r} sk={HEAD_SK!r}"
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise InputError(f"{where}: field version must be a whole number >= 1, not {version!r}")
    try:
        return layer_version_from_item({**item, "sk": sort_key_for(version)}, content=content)
    except InputError as err:
        # Name the head, not the version it copies: that is the item to fix.
        copied = f"item pk={pk!r} sk={sort_key_for(version)!r}: "
        detail = err.message.removeprefix(copied)
        raise InputError(f"{where} (a copy of version {version}): {detail}") from None


def item_size(item: Mapping[str, Any]) -> int:
    """An item's size by DynamoDB's rules, from plain data: names and strings in UTF-8
    bytes, numbers 1 byte per two digits plus 1, maps and lists 3 bytes plus 1 per entry.

    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
    """
    return sum(len(str(name).encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | float):
        # Significant digits, leading and trailing zeros trimmed; DynamoDB keeps at most 38.
        if isinstance(value, int):
            text = str(abs(value)).strip("0") if value.bit_length() < 128 else "9" * 38
        else:
            text = repr(abs(value)).partition("e")[0].replace(".", "").strip("0")
        return (max(len(text), 1) + 1) // 2 + 1
    if isinstance(value, dict):
        return 3 + sum(1 + len(str(k).encode()) + _value_size(v) for k, v in value.items())
    if isinstance(value, list):
        return 3 + sum(1 + _value_size(v) for v in value)
    return 0


def _config(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        raise InputError(f"{where}: field config is missing")
    if isinstance(raw, str):
        # Large documents are stored as a JSON string (an item holds at most 400 KB).
        from compiler.yamlio import load_layer_json

        raw = load_layer_json(raw, f"{where}: field config")
    if not isinstance(raw, dict):
        raise InputError(
            f"{where}: field config must be a map (or a string holding a JSON object), "
            f"not {type(raw).__name__}"
        )
    return raw
