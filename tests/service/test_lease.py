"""The lease against moto's DynamoDB server: conditional writes, expiry, fencing."""

from __future__ import annotations

import boto3
import pytest

from compiler.service.lease import Lease
from compiler.sources.dynamodb import DynamoDBStore, client_config
from tests.conftest import REGION


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pair(server_store: DynamoDBStore) -> tuple[Lease, Lease, Clock]:
    client = boto3.client(
        "dynamodb", region_name=REGION, endpoint_url=server_store.endpoint_url,
        config=client_config(),
    )  # fmt: skip
    clock = Clock()
    table = server_store.table
    return Lease(client, table, "a", 10, clock), Lease(client, table, "b", 10, clock), clock


def test_one_holder_until_it_expires_then_the_other_with_a_higher_fence(
    pair: tuple[Lease, Lease, Clock],
) -> None:
    a, b, clock = pair
    assert a.acquire_or_renew() and a.fence == 1
    assert not b.acquire_or_renew() and not b.held
    clock.now += 9
    assert a.acquire_or_renew()  # renewed: good for 10 s from now
    clock.now += 9
    assert not b.acquire_or_renew()
    clock.now += 2  # a died: its lease ran out
    assert b.acquire_or_renew() and b.fence == 2
    assert not a.acquire_or_renew() and not a.held  # a came back: too late, fenced out


def test_release_lets_the_other_take_it_at_once(pair: tuple[Lease, Lease, Clock]) -> None:
    a, b, _ = pair
    assert a.acquire_or_renew()
    a.release()
    assert not a.held
    assert b.acquire_or_renew() and b.fence == 2


def test_a_stale_holders_transaction_is_refused(
    pair: tuple[Lease, Lease, Clock], server_store: DynamoDBStore
) -> None:
    a, b, clock = pair
    assert a.acquire_or_renew()
    stale = a.condition()
    clock.now += 11
    assert b.acquire_or_renew()
    put = {"Put": {"TableName": server_store.table,
                   "Item": {"pk": {"S": "stream#s"}, "sk": {"S": "checkpoint"}}}}  # fmt: skip
    with pytest.raises(a.client.exceptions.TransactionCanceledException):
        a.client.transact_write_items(TransactItems=[stale, put])
    b.client.transact_write_items(TransactItems=[b.condition(), put])
