"""The document the CUE policies read: regular shape, quantities in milli-units."""

from __future__ import annotations

import pytest

from compiler.model import ClusterFacts
from compiler.policy.cue_input import cue_document, milli_units


@pytest.mark.parametrize(
    ("quantity", "milli"),
    [
        ("4", 4000),
        (4, 4000),
        ("500m", 500),
        ("0.5", 500),
        (0.5, 500),
        ("1.5", 1500),
        ("8Gi", 8 * 2**30 * 1000),
        ("1k", 1_000_000),
        ("1M", 10**9),
        ("1e3", 1_000_000),
        ("1E-3", 1),
        ("100n", 1),  # rounded up, as Kubernetes rounds
        ("1Ki", 1024_000),
        (".5", 500),
    ],
)
def test_quantities_in_milli_units(quantity: object, milli: int) -> None:
    assert milli_units(quantity) == milli


@pytest.mark.parametrize("bad", ["", "lots", "4 Gi", "-1", "1x", "Gi", True, None, [1]])
def test_non_quantities_are_none(bad: object) -> None:
    assert milli_units(bad) is None


def test_every_collection_is_present_and_defaults_are_filled() -> None:
    facts = ClusterFacts(name="c1", env="dev", server="https://c1:6443", region="r")
    config = {
        "namespaces": {"a": {}, "b": {"access": {"x": {"clusterRole": "view"}}}},
        "roles": {"r": {}},
    }
    document = cue_document(facts, config)
    assert document["cluster"] == {"name": "c1", "env": "dev", "region": "r"}
    assert document["namespaces"]["a"] == {
        "labels": {},
        "defaultDeny": False,
        "quotas": {},
        "access": {},
    }
    assert document["namespaces"]["b"]["access"]["x"] == {
        "role": "",
        "clusterRole": "view",
        "users": [],
        "groups": [],
        "serviceAccounts": [],
    }
    assert document["roles"] == {"r": {"rules": []}}
    assert document["calico"] == {"ipPools": {}}
    assert cue_document(facts, {}) == {
        "cluster": {"name": "c1", "env": "dev", "region": "r"},
        "namespaces": {},
        "roles": {},
        "calico": {"ipPools": {}},
    }
