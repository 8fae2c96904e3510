"""`python -m bench.moto_process PORT_FILE`: moto's server for the load run, in a process
of its own, kept from growing without bound.

moto's `BaseModel.__new__` appends every model instance to its class's
`instances_tracked` list, for moto's own introspection API and reset, and never
removes one. `TransactWriteItems` deep-copies every table it names, once per item
(its rollback copy), and a deep copy creates instances through `__new__`: so every
transaction leaves a whole copy of the table, stream records included, alive for
good. Measured with 8 writers of 2-item transactions: 400 transactions took the
process from 82 MB to 1.2 GB; the load run's 1,000 calls passed 5.6 GB in 2
minutes. This process empties the DynamoDB models' lists every second. DynamoDB's
API never reads them, so what the run measures is unchanged; moto's code is not.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from compiler.localdb import local_dynamodb


def _forget_tracked_instances() -> int:
    from moto.core.base_backend import model_data

    dropped = 0
    for model in model_data.get("dynamodb", {}).values():
        tracked = getattr(model, "instances_tracked", None)
        if tracked:
            dropped += len(tracked)
            tracked.clear()
    return dropped


def serve(port_file: str) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with local_dynamodb() as endpoint:
        Path(port_file).write_text(endpoint.rsplit(":", 1)[1] + "\n", encoding="utf-8")
        while not stop.wait(1.0):
            _forget_tracked_instances()


if __name__ == "__main__":
    serve(sys.argv[1])
