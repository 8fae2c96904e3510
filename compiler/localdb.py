"""The embedded default: moto's DynamoDB-compatible server on loopback, for demos and tests.

It listens on 127.0.0.1 only, on a free port the OS picks, and stops with the
`with` block that started it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Any credentials do for moto; set them only where none are configured, so a
# local run never picks up (or needs) real AWS credentials.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def local_dynamodb() -> Iterator[str]:
    """Start moto's server on 127.0.0.1:<free port>; yield its endpoint URL."""
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request at INFO to stderr; a demo or test wants quiet.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for key, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def serve_forever(port_file: str) -> None:
    """`python -m compiler.localdb PORT_FILE` (`local up`): serve until SIGTERM, after
    writing the port the OS picked to PORT_FILE."""
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with local_dynamodb() as endpoint:
        Path(port_file).write_text(endpoint.rsplit(":", 1)[1] + "\n", encoding="utf-8")
        stop.wait()


if __name__ == "__main__":
    import sys

    serve_forever(sys.argv[1])
