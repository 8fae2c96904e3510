"""A version's attributes as `put` writes them to DynamoDB."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

# `config` is a map only while it is small enough to read in the AWS console; past
# that it is stored as a JSON string. Every attribute of a map is typed and parsed
# one by one by the server and by botocore (a cluster record of 10 namespaces,
# ~500 attributes, took moto 50 ms to serve as a map and 2 ms as a string), a map
# may nest 32 levels at most, and the item must stay under DynamoDB's 400 KB.
_INLINE_CONFIG_ATTRIBUTES = 200
_INLINE_CONFIG_DEPTH = 16
_INLINE_CONFIG_BYTES = 300_000


def config_attribute(config: Mapping[str, Any]) -> Any:
    as_json = json.dumps(config, sort_keys=True, separators=(",", ":"))
    if len(as_json) > _INLINE_CONFIG_BYTES or not small_map(config):
        return as_json
    return to_dynamo_numbers(dict(config))


def small_map(config: Mapping[str, Any]) -> bool:
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


def to_dynamo_numbers(value: Any) -> Any:
    """boto3 takes Decimal, not float: convert through str so 0.1 stays 0.1."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: to_dynamo_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_dynamo_numbers(v) for v in value]
    return value
