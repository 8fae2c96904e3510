"""`local up/down/status/env`: the embedded DynamoDB kept running, its data kept on disk.

moto's server keeps its tables in memory only (it has no persistence of its own), so
the data lives in the project as a snapshot directory, `.gitops/local/data/` (the
format of `examples/`): `local down` dumps every version there before it stops the
server, and `local up` seeds the new server from it (from `examples/` the first time).
Every other item of the table (proposals, last-known-good records and incidents, the
service's lease, checkpoints and triggers) is kept as it is, in DynamoDB's JSON, in
`other-items.json` beside them and put back after the seed; heads are written again
by the seed itself.
What is lost is only what was written after the last `down` if the server is killed
(the machine restarts): `local status` says when the data was last saved.

The endpoint is recorded in `.gitops/local/state.json`, where every command of the
project finds it (`project.resolve_endpoint`), so no export is needed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.errors import CompilerError, InputError, OutsideError
from compiler.localdb import LOCAL_CREDENTIALS
from compiler.project import LOCAL_STATE, Project
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.items import HEAD_SK, is_layer_pk
from compiler.sources.snapshot import SnapshotStore, seed, snapshot_files

LOCAL_DIR = str(Path(LOCAL_STATE).parent)
OTHER_ITEMS = "other-items.json"  # beside the snapshot's *.yaml, which it never reads
_START_SECONDS = 20.0


@dataclass(frozen=True)
class LocalState:
    pid: int
    endpoint: str

    @property
    def running(self) -> bool:
        return _alive(self.pid) and _answers(self.endpoint)


def state_dir(project: Project) -> Path:
    return project.root / LOCAL_DIR


def read_state(project: Project) -> LocalState | None:
    try:
        raw = json.loads((state_dir(project) / "state.json").read_text(encoding="utf-8"))
        return LocalState(pid=int(raw["pid"]), endpoint=str(raw["endpoint"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def up(project: Project) -> tuple[LocalState, str]:
    """Start the server in the background (or find it running); seed it; record it."""
    state = read_state(project)
    if state is not None and state.running:
        return state, "running already"
    directory = state_dir(project)
    directory.mkdir(parents=True, exist_ok=True)
    port_file = directory / "port"
    port_file.unlink(missing_ok=True)
    log = str(directory / "server.log")
    # posix_spawn, not Popen: the server outlives this command (its own session, no
    # terminal), and nothing here waits for it.
    pid = os.posix_spawn(
        sys.executable,
        [sys.executable, "-m", "compiler.localdb", str(port_file)],
        os.environ,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )
    endpoint = _wait_for_port(port_file, pid)
    state = LocalState(pid=pid, endpoint=endpoint)
    for key, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    store = DynamoDBStore(project.table, region=project.region, endpoint_url=endpoint)
    store.create_table()
    data = directory / "data"
    origin = data if data.is_dir() else project.root / "examples"
    written, _ = seed(store, SnapshotStore(origin))
    _restore_other_items(store, origin / OTHER_ITEMS)
    (directory / "state.json").write_text(
        json.dumps({"pid": state.pid, "endpoint": endpoint}) + "\n", encoding="utf-8"
    )
    return state, f"started, {written} version(s) loaded from {origin}"


def down(project: Project) -> str:
    """Save every version to `.gitops/local/data/`, then stop the server."""
    state = read_state(project)
    if state is None or not state.running:
        (state_dir(project) / "state.json").unlink(missing_ok=True)
        return "not running"
    try:
        saved = save(project, state)
    except CompilerError as err:
        # Nothing is stopped that could not be saved: the data stays in the server.
        raise type(err)(f"{err}; the local server keeps running at {state.endpoint}") from None
    os.kill(state.pid, signal.SIGTERM)
    for _ in range(50):  # bounded: 5 s
        if not _alive(state.pid):
            break
        time.sleep(0.1)
    (state_dir(project) / "state.json").unlink(missing_ok=True)
    return f"stopped; {saved} version(s) saved in {state_dir(project) / 'data'}"


def save(project: Project, state: LocalState) -> int:
    for key, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    store = DynamoDBStore(project.table, region=project.region, endpoint_url=state.endpoint)
    data = state_dir(project) / "data"
    layers, others = _read_table(store)
    files, count = snapshot_files(store, layers)
    files[OTHER_ITEMS] = (json.dumps({"items": others}, indent=1, sort_keys=True) + "\n").encode()
    for name, text in files.items():
        path = data / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text)
    return count


def _read_table(store: DynamoDBStore) -> tuple[set[str], list[dict[str, Any]]]:
    """One Scan of the table: the layers' pks (their versions are read in order after),
    and every item that is neither a layer's version nor its head, as DynamoDB's JSON,
    sorted by key: what the snapshot's format has no place for."""
    layers: set[str] = set()
    others = []
    request: dict[str, Any] = {"TableName": store.table, "ConsistentRead": True}
    with store.errors_while("saving the table"):
        while True:
            page = store.client.scan(**request)
            for item in page.get("Items", []):
                pk, sk = item["pk"]["S"], item["sk"]["S"]
                if is_layer_pk(pk) and (sk == HEAD_SK or sk.startswith("v#")):
                    layers.add(pk)
                else:
                    others.append(item)
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    others.sort(key=lambda item: (item["pk"]["S"], item["sk"]["S"]))
    return layers, others


def _restore_other_items(store: DynamoDBStore, path: Path) -> None:
    try:
        items = json.loads(path.read_bytes())["items"]
    except FileNotFoundError:
        return  # saved by an older version, or seeded from examples/
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path}: not a saved list of table items ({err})") from None
    with store.errors_while(f"restoring the items of {path}"):
        for item in items:
            store.client.put_item(TableName=store.table, Item=item)


def _wait_for_port(port_file: Path, pid: int) -> str:
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise OutsideError(f"the local DynamoDB exited; see {port_file.parent}/server.log")
        text = port_file.read_text().strip() if port_file.is_file() else ""
        if text.isdigit() and _answers(f"http://127.0.0.1:{text}"):
            return f"http://127.0.0.1:{text}"
        time.sleep(0.1)
    os.kill(pid, signal.SIGTERM)
    raise OutsideError(f"the local DynamoDB did not start within {_START_SECONDS:.0f} s")


def _alive(pid: int) -> bool:
    try:
        # Reap it if it is our child and has exited (a zombie still answers kill 0).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # started by another command: not ours to reap
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # an answer, even an error one: the server is up
    except OSError:
        return False
