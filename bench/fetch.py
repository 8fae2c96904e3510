"""The fetch alone at fleet sizes (issue 18): heads in batches against one Query per layer.

    .venv/bin/python -m bench.fetch [--sizes 100,1000,3000] [--query-up-to 1000]
                                    [--config-bytes 4000] [--versions 3]

Each size gets its own moto server (its own thread) and table, written directly with
BatchWriteItem: per cluster --versions versions and a head, plus defaults and three envs, each
`config` a JSON string of --config-bytes (the bench's clusters of 10 namespaces are
~4-8 KB; a Scan's pages hold 1 MB of items, so the size sets how many pages a
listing takes). The fetch is `DynamoDBStore.read_latest_many` of every cluster and
shared layer, as `StackLoader.prefetch` does; the listing is `list_clusters` as `--all`
makes it, by the table's index of sort keys, and beside it by a Scan of every
version's key (a table without the index, sources/listing.py); the Query path (16 in flight, as
before heads) is timed up to --query-up-to clusters only, since it grows
quadratically.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from compiler.localdb import LOCAL_CREDENTIALS, local_dynamodb
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.heads import serialized
from compiler.sources.listing import listed_by_scan, sk_index_active

_ENVS = ("dev", "test", "prod")


def _items(clusters: int, config_bytes: int, versions: int) -> list[dict[str, Any]]:
    # Read as a layer document only (not checked against the DSL's schema here).
    padding = {"padding": "x" * (config_bytes - 40)} if config_bytes > 40 else {}
    config = json.dumps({"namespaces": {}, **padding}, separators=(",", ":"))
    items = []
    layers: list[tuple[str, str | None]] = [("defaults", None)]
    layers += [(f"env#{e}", None) for e in _ENVS]
    layers += [(f"cluster#c{i:05d}", _ENVS[i % 3]) for i in range(clusters)]
    for pk, env in layers:
        for n in range(1, versions + 1):
            item: dict[str, Any] = {
                "pk": pk,
                "sk": f"v#{n:010d}",
                "version": n,
                "config": config,
                "created_at": "2026-01-01T00:00:00Z",
                "author": "bench",
                "comment": "",
            }
            if env:
                name = pk.partition("#")[2]
                item["cluster"] = {"name": name, "env": env, "server": "https://k8s", "region": "r"}
            items.append(item)
        items.append({**item, "sk": "head"})
    return items


def _write(store: DynamoDBStore, items: list[dict[str, Any]]) -> None:
    chunks = [items[i : i + 25] for i in range(0, len(items), 25)]

    def one(chunk: list[dict[str, Any]]) -> None:
        request = {store.table: [{"PutRequest": {"Item": serialized(i)}} for i in chunk]}
        while request:
            request = store.client.batch_write_item(RequestItems=request)["UnprocessedItems"]

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, chunks))


def measure(
    clusters: int, with_query: bool, config_bytes: int = 0, versions: int = 3
) -> dict[str, float]:
    with local_dynamodb() as endpoint:
        store = DynamoDBStore("bench-fetch", region="us-east-1", endpoint_url=endpoint)
        store.create_table()
        _write(store, _items(clusters, config_bytes, versions))
        pks = [f"cluster#c{i:05d}" for i in range(clusters)]
        pks += ["defaults", *(f"env#{e}" for e in _ENVS)]
        calls: dict[str, int] = {}
        store.client.meta.events.register(
            "before-call.dynamodb",
            lambda event_name, **_: calls.__setitem__(event_name, calls.get(event_name, 0) + 1),
        )
        start = time.perf_counter()
        found = store.read_latest_many(pks)
        heads = time.perf_counter() - start
        assert all(getattr(v, "version", None) == versions for v in found.values()), found
        result = {"heads_s": heads, "calls": float(sum(calls.values()))}
        start = time.perf_counter()
        assert sk_index_active(store) and len(store.list_clusters()) == clusters
        result["listing_s"] = time.perf_counter() - start
        start = time.perf_counter()
        assert len(listed_by_scan(store, None)) == clusters
        result["scan_s"] = time.perf_counter() - start
        if with_query:
            start = time.perf_counter()
            with ThreadPoolExecutor(store.read_concurrency) as pool:
                list(pool.map(store.query_latest, pks))
            result["query_s"] = time.perf_counter() - start
        return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fetch")
    parser.add_argument("--sizes", default="100,1000,3000")
    parser.add_argument("--query-up-to", type=int, default=1000)
    parser.add_argument("--config-bytes", type=int, default=4000)
    parser.add_argument("--versions", type=int, default=3, help="versions per layer")
    args = parser.parse_args()
    os.environ.update(LOCAL_CREDENTIALS)
    print(
        f"{'clusters':>8}  {'heads (s)':>9}  {'calls':>5}  {'listing (s)':>11}"
        f"  {'by a Scan (s)':>13}  {'query/layer (s)':>15}"
    )
    for size in map(int, args.sizes.split(",")):
        r = measure(size, size <= args.query_up_to, args.config_bytes, args.versions)
        query = f"{r['query_s']:.2f}" if "query_s" in r else "-"
        print(
            f"{size:>8}  {r['heads_s']:>9.2f}  {int(r['calls']):>5}  {r['listing_s']:>11.2f}"
            f"  {r['scan_s']:>13.2f}  {query:>15}",
            flush=True,
        )


if __name__ == "__main__":
    main()
