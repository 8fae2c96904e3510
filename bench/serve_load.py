"""`python -m bench.serve_load`: a load run of `serve` on loopback (issue 21).

Starts moto's server (the table, the examples, a stream), a bare Argo CD
repository and one `serve` process; sends 1,000 provisioner calls and writes
table versions for 10,000 stream records; waits (bounded) until everything is
published; prints what was accepted and refused, the runs and publishes, the
branches and their commits (a duplicate pull request would be a second commit
of the same tree), the largest queue depth seen, and the serve process's peak
RSS at the start and at the end. Not a timed unit test: a run to read.

moto's server runs in a child process of its own (`python -m compiler.localdb`),
so its memory is reported apart from serve's. The versions are written as the
README's write protocol for other systems says (a conditional PutItem of the
version, then of its head: two stream records), not in a TransactWriteItems:
moto deep-copies the whole table, its stream records included, once per item
of every transaction, so transactional writes cost time and memory that grow
with the table (400 versions took 408 s and 10 GB in moto's process here).
serve's own transactions (a call's record, a checkpoint) still pay that copy;
the calls go first, while the table is small.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import boto3

from compiler.localdb import LOCAL_CREDENTIALS
from compiler.service.streams import enable_stream
from compiler.sources import Pin
from compiler.sources.dynamodb import DynamoDBStore, client_config
from compiler.sources.heads import head_condition
from compiler.sources.snapshot import SnapshotStore, seed
from tests.fake_github import FAKE_REPO, FAKE_TOKEN, PULLS, FakeGitHub

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"
CLUSTERS = ("dev-k3s", "test-k3s", "prod-eks-1")
DRAIN_SECONDS = 900  # the deadline: a run that has not drained by then fails


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def _bare_repository(where: Path) -> Path:
    bare, work = where / "argocd.git", where / "seed"
    _git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    _git("init", "--quiet", "--initial-branch=main", str(work))
    (work / "README.md").write_text("# Argo CD\n", encoding="utf-8")
    _git("-C", str(work), "add", "README.md")
    _git("-C", str(work), "-c", "user.name=bench", "-c", "user.email=b@example.com",
         "commit", "--quiet", "-m", "init")  # fmt: skip
    _git("-C", str(work), "push", "--quiet", str(bare), "main")
    return bare


def _rss(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB: now, and the peak so far."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


class _RssSampler:
    """serve's VmRSS once a second, in a thread, for the run's memory curve: "flat"
    means the samples after the first runs stop growing, not start == end."""

    def __init__(self, pid: int) -> None:
        self.pid, self.samples = pid, [(0.0, _rss(pid)[0])]
        self.started, self.stop = time.monotonic(), threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stop.wait(1.0):
            self.samples.append((time.monotonic() - self.started, _rss(self.pid)[0]))

    def curve(self) -> str:
        """The RSS at each tenth of the run, in MiB."""
        self.stop.set()
        self.thread.join(5)
        end = self.samples[-1][0]
        marks = []
        for tenth in range(11):
            at = end * tenth / 10
            kib = next(k for t, k in self.samples if t >= at)
            marks.append(f"{kib / 1024:.0f}")
        return " ".join(marks)


class _Service:
    def __init__(self, argv: list[str], extra_env: dict[str, str]) -> None:
        env = {**os.environ, **extra_env, "GITOPS_TRIGGER_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "compiler", *argv], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=env, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self.address = ""
        ready = threading.Event()
        self.pump = threading.Thread(target=self._pump, args=(ready,), daemon=True)
        self.pump.start()
        if not ready.wait(120):
            raise SystemExit("serve did not start:\n" + "\n".join(self.lines))

    def _pump(self, ready: threading.Event) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if "lease taken" in line:
                ready.set()
            if "listening on http://" in line:
                self.address = line.split("http://")[1].split()[0]

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(f"http://{self.address}/metrics", timeout=30) as answer:
            text = answer.read().decode()
        found = {}
        for line in text.splitlines():
            if line.startswith("gitops_") and "_created" not in line and "_bucket" not in line:
                name, _, value = line.rpartition(" ")
                found[name] = float(value)
        return found

    def call(self, cluster: str, delivery: str) -> int:
        request = urllib.request.Request(
            f"http://{self.address}/v1/clusters/{cluster}/bootstrap", data=b"{}", method="POST",
            headers={"Authorization": f"Bearer {TOKEN}", "X-Delivery-Id": delivery},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as err:
            err.close()
            return int(err.code)


_LAYERS = ("env#dev", "env#test", "env#prod", "defaults")


def _write_versions(store: DynamoDBStore, puts: int) -> float:
    """`puts` new versions, each a conditional PutItem of the version and then of its
    head (two stream records), one writer per layer (writers of one layer would race
    for its version numbers)."""
    started = time.monotonic()
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=store.endpoint_url,
                          config=client_config())  # fmt: skip

    def write(pk: str) -> None:
        latest = store.read(pk, Pin())
        assert latest is not None
        head = client.get_item(TableName=store.table, ConsistentRead=True,
                               Key={"pk": {"S": pk}, "sk": {"S": "head"}})["Item"]  # fmt: skip
        for number in range(latest.version + 1, latest.version + 1 + puts // len(_LAYERS)):
            item = {**head, "version": {"N": str(number)}, "comment": {"S": f"#{number}"},
                    "sk": {"S": f"v#{number:010d}"}}  # fmt: skip
            client.put_item(TableName=store.table, Item=item,
                            ConditionExpression="attribute_not_exists(sk)")  # fmt: skip
            client.put_item(TableName=store.table, Item={**item, "sk": {"S": "head"}},
                            **head_condition(number))  # fmt: skip

    with ThreadPoolExecutor(len(_LAYERS)) as pool:
        list(pool.map(write, _LAYERS))
    return time.monotonic() - started


@contextmanager
def _moto(workdir: Path) -> Iterator[tuple[str, int]]:
    """moto's server in a child process: (endpoint, pid); stopped with the block."""
    port_file = workdir / "moto.port"
    child = subprocess.Popen([sys.executable, "-m", "bench.moto_process", str(port_file)],
                             cwd=ROOT)  # fmt: skip
    try:
        for _ in range(600):  # 60 s
            if port_file.exists() and port_file.read_text().strip():
                break
            if child.poll() is not None:
                raise SystemExit("moto's server did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port_file.read_text().strip()}", child.pid
    finally:
        child.terminate()
        child.wait(60)


def _drain(
    service: _Service, store: DynamoDBStore, timeout: float, sample: list[float]
) -> dict[str, float]:
    """Wait until, twice in a row 5 s apart, nothing is queued, no call waits in the table
    and no shard lags (a failed run's triggers wait out a back-off, then run again)."""
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=store.endpoint_url)
    deadline, quiet = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        now = service.metrics()
        sample.append(now.get("gitops_queue_depth", 0.0))
        pending = client.query(
            TableName=store.table, KeyConditionExpression="pk = :pk", Select="COUNT",
            ExpressionAttributeValues={":pk": {"S": "trigger#pending"}}, ConsistentRead=True,
        )["Count"]  # fmt: skip
        lagging = [k for k, v in now.items() if k.startswith("gitops_stream_lag") and v > 0]
        idle = now.get("gitops_queue_depth", 0.0) == 0 and not pending and not lagging
        quiet = quiet + 1 if idle else 0
        if quiet >= 2:
            return now
        time.sleep(5)
    raise SystemExit(f"not drained within {timeout} s")


def run(calls: int, records: int, workdir: Path) -> None:
    os.environ.update(LOCAL_CREDENTIALS)
    os.environ.setdefault("GITOPS_CUE", str(ROOT / "tools/cue-wasm/cue"))
    bare = _bare_repository(workdir)
    with _moto(workdir) as (endpoint, moto_pid):
        store = DynamoDBStore("gitops-config", region="us-east-1", endpoint_url=endpoint)
        store.create_table()
        seed(store, SnapshotStore(ROOT / "examples"))
        client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint,
                              config=client_config())  # fmt: skip
        enable_stream(client, store.table)
        with FakeGitHub(repos=[FAKE_REPO]) as github:
            service = _Service(
                ["serve", "--repo", str(bare), "--forge", "github", "--forge-repo", FAKE_REPO,
                 "--listen", "127.0.0.1:0", "--project", str(ROOT), "--endpoint-url", endpoint,
                 "--debounce", "2", "--queue-size", "100"],
                {"GITHUB_API_URL": github.url, "GITOPS_GITHUB_TOKEN": FAKE_TOKEN},
            )  # fmt: skip
            try:
                _measure(service, store, calls, records, moto_pid)
            finally:
                service.process.terminate()
                code = service.process.wait(120)
                service.pump.join(30)  # read to the end of serve's output, then close it
                assert service.process.stdout is not None
                service.process.stdout.close()
                print(f"serve exited {code} on SIGTERM")
            _report_pulls(github)
    _report_branches(bare)


def _report_pulls(github: FakeGitHub) -> None:
    """What the (fake, HTTP-level) GitHub saw: a second pull request for one branch
    would be a duplicate."""
    pulls = github.pulls()
    heads = [p["head"]["ref"] for p in pulls]
    print(f"pull requests: {len(pulls)} opened for {len(set(heads))} branch(es); "
          f"{len(github.received('POST', PULLS))} create and "
          f"{len(github.received('PATCH'))} update call(s)")  # fmt: skip


def _measure(
    service: _Service, store: DynamoDBStore, calls: int, records: int, moto_pid: int
) -> None:
    rss_start, moto_start = _rss(service.process.pid), _rss(moto_pid)
    sampler = _RssSampler(service.process.pid)
    depths: list[float] = []
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:  # the calls first, while the table is small
        statuses = list(pool.map(lambda n: service.call(CLUSTERS[n % 3], f"bench-{n}"),
                                 range(calls)))  # fmt: skip
    rss_after_calls = _rss(service.process.pid)[0]
    write_seconds = _write_versions(store, records // 2)
    sent = time.monotonic() - started
    final = _drain(service, store, DRAIN_SECONDS, depths)
    rss_end, moto_end = _rss(service.process.pid), _rss(moto_pid)
    print(f"{calls} calls and {records // 2} versions ({records} stream records) sent in "
          f"{sent:.1f} s (writes {write_seconds:.1f} s); drained {time.monotonic() - started:.1f} s")  # fmt: skip
    print("call answers: " + ", ".join(f"{s}: {statuses.count(s)}" for s in sorted(set(statuses))))
    for name, value in sorted(final.items()):
        if name.startswith(("gitops_runs_total", "gitops_publishes_total", "gitops_triggers")):
            print(f"  {name} {value:g}")
    for line in service.lines:  # why a run failed, in serve's words
        if "next try in" in line or line.startswith("error"):
            print(f"  serve said: {line[:300]}")
    print(f"queue depth: largest sampled {max(depths, default=0):g} (bound 100)")
    print(f"serve RSS KiB: start {rss_start[0]} (peak {rss_start[1]}), after the calls "
          f"{rss_after_calls}, end {rss_end[0]} (peak {rss_end[1]})")  # fmt: skip
    print(f"serve RSS MiB at each tenth of the run: {sampler.curve()}")
    print(f"moto RSS KiB: start {moto_start[0]}, end {moto_end[0]} (peak {moto_end[1]})")


def _report_branches(bare: Path) -> None:
    refs = _git(f"--git-dir={bare}", "for-each-ref", "--format=%(refname:short)").split()
    for ref in sorted(r for r in refs if r != "main"):
        commits = _git(f"--git-dir={bare}", "rev-list", "--count", f"main..{ref}")
        print(f"branch {ref}: {commits} commit(s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_load", description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="serve-load-") as workdir:
        run(args.calls, args.records, Path(workdir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
