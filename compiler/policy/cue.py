"""The organisation's CUE policies (`policies/*.cue`), run by the `cue` command.

One `cue export` per run checks every cluster: the clusters' documents go in
one JSON document under `clusters` (on stdin), and the policies compute
`violations`, a list of `{cluster, path, rule, message}` (see
`policies/policy.cue`). Exporting a computed list, rather than `cue vet`, gives
every finding at once with its rule id; `cue vet` stops at the first error of a
file.

A large fleet is split into shards of at most SHARD_BYTES of JSON each (runs of
clusters in name order), and the shards go through at most one cue process a
core at a time (`_processes`, at most MAX_PROCESSES): each shard a process of its
own, the one started early (`warm_up`) taking the first. CUE's time and memory
follow the size of its input (~1 MiB of memory a cluster of the bench's fleet,
~190 MiB a MB of JSON, for native cue v0.17.1 and the WebAssembly v0.4 alike,
plus ~25 MiB (native) or ~160 MiB (WebAssembly) a process), so the bound on a
shard bounds cue's memory at once, whatever the size of the fleet; one process
uses one core. Rules are per cluster by contract (a one-cluster compile vets that
cluster alone), so the split changes no finding. A failed shard, or the
caller's cancel, stops the running shards and starts no other; the error raised
is the first in shard order.

With a verdict cache (compiler/policy/cue_verdicts.py), a cluster whose document,
policies and cue are those of a kept verdict is not sent to cue: the kept findings
stand for it, and a run where nothing changed starts no cue at all.

A cue that is missing, dies, hangs or prints something that is not such a
list is an outside failure (exit 3), never a pass. A cue that says the
policies do not evaluate (exit 1 and a message) is bad input (exit 2).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler import proc
from compiler.cachedir import cache_root
from compiler.errors import InputError, OutsideError
from compiler.policy.cue_verdicts import VerdictCache, cue_identity

DEFAULT_TIMEOUT = 60.0  # seconds for a call, plus PER_MB_TIMEOUT for each MB of documents
# The WebAssembly cue needs ~0.5 s to start, then its time follows the size of the
# documents it reads: ~5 s a MB of compact JSON (bench/: 1000 clusters, 6.1 MB, 33 s
# on 2 cores). Allow it several times that, so that a large fleet on a busy machine
# is not a timeout.
PER_MB_TIMEOUT = 30.0
# The most JSON one cue process is given (a shard: one cluster at least). Measured on
# the bench's clusters (5.5 kB of JSON each): a shard of 0.5 MB peaks at ~120 MiB in
# native cue and ~280 MiB in the WebAssembly one; starting a process costs ~0.05 s
# (native) or ~0.3-0.5 s (WebAssembly) of a core.
SHARD_BYTES = 500_000
MAX_PROCESSES = 4  # cue processes at once, at most one a core
# Go's collector setting for native cue. A cue process reads one bounded shard and
# exits, and with the default (GOGC=100) the collector took a third of its CPU. Measured
# with cue v0.17.1, 3 runs each, CPU a run and peak RSS, on the bench's 90-cluster shard
# (0.5 MB) and on a 2.75 MB one (a cluster past SHARD_BYTES goes alone, so a shard may
# be large): GOGC=100 0.63 s, 123 MB and 2.99 s, 534 MB; GOGC=400 0.39 s, 141 MB and
# 2.22 s, 650 MB. No collection at all with a memory limit (GOGC=off, GOMEMLIMIT=192MiB)
# was cheaper on the small shard (0.34 s, 152 MB) but collected without end once the
# large one's live heap passed the limit: 10.4 s. GOGC of the caller's own (or a
# GOMEMLIMIT) wins; the WebAssembly launcher gives its Go program an environment of
# its own, so neither reaches it.
GO_RUNTIME_DEFAULTS = {"GOGC": "400"}
CUE_ERROR = 1  # cue's exit code for "the CUE does not evaluate"; a Go panic exits 2
HOW_TO_GET_CUE = (
    "install cue (https://cuelang.org/docs/introduction/installation/), or run `make` in "
    "the gitops-compiler checkout and set GITOPS_CUE=<checkout>/tools/cue-native/bin/cue "
    "(built with Go) or GITOPS_CUE=<checkout>/tools/cue-wasm/cue (without Go)"
)
_KEYS = ("cluster", "path", "rule", "message")


@dataclass(frozen=True, order=True)
class CueFinding:
    cluster: str
    path: str  # dotted path in the cluster's config, e.g. `namespaces.dev-team.labels.team`
    rule: str
    message: str


# The project's own cue (issue 17: `local up` users should not need GITOPS_CUE): a
# current cue built into the project is preferred to one on PATH, whose version nobody
# chose; the WebAssembly v0.4 launcher (`make`) is the fallback, as DESIGN.md says.
PROJECT_NATIVE_CUE = "tools/cue-native/bin/cue"
PROJECT_WASM_CUE = "tools/cue-wasm/cue"


def find_cue(flag: str | None, environ: Mapping[str, str], *, project: Path | None = None) -> Path:
    """`--cue PATH`, then `$GITOPS_CUE`, then the project's `tools/cue-native/bin/cue`,
    then `cue` on PATH, then the project's `tools/cue-wasm/cue`; only looks, runs nothing.

    A value without a slash is a command name looked up on PATH, as a shell would.
    """
    search_path = environ.get("PATH", os.defpath)
    for given, origin in ((flag, "--cue"), (environ.get("GITOPS_CUE"), "GITOPS_CUE")):
        if not given:
            continue
        if os.sep not in given:
            found = shutil.which(given, path=search_path)
            if found is None:
                raise OutsideError(
                    f"{origin} names {given}, which is not on PATH; {HOW_TO_GET_CUE}"
                )
            return Path(found).absolute()
        path = Path(given)
        if not path.is_file():
            raise OutsideError(f"{origin} names {given}, which is not a file; {HOW_TO_GET_CUE}")
        if not os.access(path, os.X_OK):
            raise OutsideError(f"{origin} names {given}, which is not executable")
        # Absolute: cue runs in a directory of its own.
        return path.absolute()
    native = _project_cue(project, PROJECT_NATIVE_CUE)
    found = (
        native or shutil.which("cue", path=search_path) or _project_cue(project, PROJECT_WASM_CUE)
    )
    if found is None:
        raise OutsideError(
            f"no cue found (--cue, GITOPS_CUE, the project's {PROJECT_NATIVE_CUE} or "
            f"{PROJECT_WASM_CUE}, or PATH): {HOW_TO_GET_CUE}"
        )
    return Path(found).absolute()


def _project_cue(project: Path | None, relative: str) -> str | None:
    if project is None:
        return None
    path = project / relative
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


# cue processes started before the compiler was imported (compiler/entry.py), by
# (binary, policy files), for the CuePolicies that warm up with the same ones.
_PRESTARTED: dict[tuple[str, tuple[str, ...]], _CueRun] = {}


def prestart(policies_dir: Path, cue: Path, files: Sequence[Path] | None = None) -> None:
    policies = CuePolicies(policies_dir, cue, files=files)
    if policies.files and policies.key not in _PRESTARTED:
        if not _PRESTARTED:
            atexit.register(_stop_prestarted)
        _PRESTARTED[policies.key] = policies._start()


def _stop_prestarted() -> None:
    while _PRESTARTED:
        _PRESTARTED.popitem()[1].close()


class CuePolicies:
    """The `*.cue` files of one directory, checked by one `cue` binary."""

    def __init__(
        self,
        policies_dir: Path,
        cue: Path,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        shard_bytes: int = SHARD_BYTES,
        version: str | None = None,
        cache: bool = False,
        files: Sequence[Path] | None = None,
    ) -> None:
        """`version`: what `cue version` said (compiler/policy/cue_binary.py); with
        `cache`, verdicts are kept and reused under it (the cache needs it)."""
        self.policies_dir = policies_dir
        self.cue = cue
        self.timeout = timeout
        self.shard_bytes = shard_bytes  # the most JSON one cue process is given
        # `files`: a project's built-in and own rule files (`Project.cue_files`); else
        # the directory's, as cue itself loads a package: `.*` and `_*` are not part of it.
        self.files = tuple(
            files
            if files is not None
            else sorted(p for p in policies_dir.glob("*.cue") if not p.name.startswith((".", "_")))
        )

        self._warm: _CueRun | None = None
        self.version = version
        self._verdicts = self._verdict_cache() if cache and version is not None else None
        self.sent: tuple[str, ...] = ()  # the clusters the last check sent to cue

    def _verdict_cache(self) -> VerdictCache | None:
        assert self.version is not None
        try:
            return VerdictCache(cache_root(), self.files, cue_identity(self.cue, self.version))
        except OSError:
            return None  # an unreadable policy file: cue says so, uncached

    def warm_up(self) -> None:
        """Start cue now, before the documents exist: node and the WebAssembly module take
        ~0.25 s to load, which then overlaps with reading and merging the layers. The
        next `check` hands it the documents; `close` stops it if no check came."""
        if self.files and self._warm is None:
            self._warm = _PRESTARTED.pop(self.key, None) or self._start()

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        return str(self.cue), tuple(str(p.absolute()) for p in self.files)

    def close(self) -> None:
        if self._warm is not None:
            self._warm.close()
            self._warm = None

    def check(
        self,
        inputs: Mapping[str, Any] | Iterable[tuple[str, Any]],
        *,
        cancel: threading.Event | None = None,
    ) -> list[CueFinding]:
        """Every finding of every cluster (name -> its input document), sorted.

        `inputs` may also be pairs that arrive while cue runs (compiler/policy/cue_stream.py:
        the merge hands each cluster over as it is done): a shard starts once it is full.
        The pipeline runs this in a worker thread, and sets `cancel` to stop cue when the
        run is interrupted (see `proc.run`).
        """
        if not self.files:
            return []
        pairs = sorted(inputs.items()) if isinstance(inputs, Mapping) else inputs
        verdicts = self._verdicts
        keys: dict[str, str] = {}
        kept: dict[str, Any] = {}
        sent: list[str] = []

        def todo() -> Iterator[tuple[str, str]]:
            for name, doc in pairs:
                # Serialised once: the cache key and the shard's input are made from it.
                text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
                if verdicts is not None:
                    keys[name] = verdicts.key(name, text)
                    hit = verdicts.lookup({name: keys[name]})
                    if hit:
                        kept.update(hit)
                        continue
                sent.append(name)
                yield name, text

        found = self._evaluate(_shards(todo(), self.shard_bytes), cancel)
        self.sent = tuple(sorted(sent))
        if verdicts:
            verdicts.store(
                {name: keys[name] for name in sent},
                ((f.cluster, f.path, f.rule, f.message) for f in found),
            )
        found += [CueFinding(name, *one) for name, verdict in kept.items() for one in verdict]
        return sorted(found)

    def _evaluate(
        self, shards: Iterator[dict[str, str]], cancel: threading.Event | None
    ) -> list[CueFinding]:
        """cue's findings on each shard (name -> document as JSON) as it comes, a shard a
        process, at most `_processes()` at a time (the one started early takes the first;
        it is stopped unused when no shard comes)."""
        warm, self._warm = self._warm, None
        stop = threading.Event()  # set when a shard failed: the others need not go on

        def check(index: int, shard: dict[str, str]) -> list[CueFinding]:
            if stop.is_set():  # not started: a shard before it failed, or a cancel
                raise proc.Cancelled(f"cue on shard {index + 1}")
            run = warm if index == 0 and warm is not None else self._start()
            try:
                return self._check_shard(run, shard, stop)
            except BaseException:
                stop.set()  # at once: the slot it frees starts no other shard
                raise
            finally:
                run.close()

        pending = []
        try:
            # The pool's queue hands shards out in order: shard 0 (the warm process's)
            # starts first, and a slot freed by a shard takes the next one.
            with ThreadPoolExecutor(self._processes(), thread_name_prefix="cue") as pool:
                try:
                    for index, shard in enumerate(shards):
                        if stop.is_set():
                            break  # a shard failed: the rest would be stopped unstarted
                        pending.append(pool.submit(check, index, shard))
                    # Until all are done (each is bounded by its timeout, a shard not yet
                    # started by `stop`), passing on the caller's `cancel`.
                    while not wait(pending, timeout=proc.POLL_SECONDS)[0].issuperset(pending):
                        if cancel is not None and cancel.is_set():
                            stop.set()
                finally:
                    stop.set()  # leaving early (an interrupt): stopped before the pool joins
        finally:
            if warm is not None:
                warm.close()  # a no-op once its shard closed it
        failures = [e for e in (f.exception() for f in pending) if e is not None]
        # The first real failure in shard order (the others were stopped for it),
        # so that the same fleet reports the same error whichever shard failed first.
        for failure in sorted(failures, key=lambda e: isinstance(e, proc.Cancelled)):
            raise failure
        return sorted(finding for f in pending for finding in f.result())

    def _processes(self) -> int:
        return max(1, min(MAX_PROCESSES, os.cpu_count() or 1))

    def _check_shard(
        self, run: _CueRun, inputs: Mapping[str, str], cancel: threading.Event | None
    ) -> list[CueFinding]:
        """`inputs`: cluster name -> its document as JSON text, in name order."""
        members = ",".join(f"{json.dumps(name)}:{text}" for name, text in inputs.items())
        document = f'{{"clusters":{{{members}}}}}'
        timeout = round(self.timeout + PER_MB_TIMEOUT * len(document) / 1e6, 1)
        ran = run.finish(document.encode(), timeout=timeout, cancel=cancel)
        stderr = self._show_policy_paths(ran.stderr, run.work)
        if ran.returncode == CUE_ERROR and ran.stderr.strip():
            # The policies do not evaluate on these documents (a syntax error, a
            # conflict): they are input, like an overlay, and cue said where.
            raise InputError(
                f"the CUE policies in {self.policies_dir} do not evaluate "
                f"(cue exited {ran.returncode}):{proc.indented(stderr)}"
            )
        if ran.returncode != 0:
            raise OutsideError(proc.failure(ran))
        return sorted(_parse(ran.stdout, inputs))

    def _start(self) -> _CueRun:
        # cue runs in an empty directory of its own (no cue.mod of the caller's around
        # it) and reads the documents from stdin: `json: -`.
        work = tempfile.TemporaryDirectory(prefix="gitops-cue-")
        policies = [p.absolute() for p in self.files]
        argv: list[str | Path] = [self.cue, "export", "--out", "json", "-e", "violations"]
        argv += [*policies, "json:", "-"]
        try:
            running = proc.start(
                argv, cwd=Path(work.name), env=cue_environment(os.environ), takes_stdin=True
            )
        except BaseException:
            work.cleanup()
            raise
        return _CueRun(running, work)

    def _show_policy_paths(self, stderr: bytes, work: Path) -> bytes:
        """cue names files relative to its working directory (our temp dir): name
        the policies as the user knows them instead."""
        text = stderr.decode("utf-8", "replace")
        for file in self.files:
            absolute = str(file.absolute())
            for shown in (os.path.relpath(absolute, work), absolute):
                text = text.replace(f"{shown}:", f"{file}:")
        return text.encode()


def cue_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Ours, with GO_RUNTIME_DEFAULTS where the caller set neither GOGC nor GOMEMLIMIT
    (one without the other is a choice of the caller's: keep it whole)."""
    if "GOGC" in environ or "GOMEMLIMIT" in environ:
        return dict(environ)
    return {**environ, **GO_RUNTIME_DEFAULTS}


def _parse(stdout: bytes, inputs: Mapping[str, Any]) -> list[CueFinding]:
    def garbage(why: str) -> OutsideError:
        shown = stdout[:200].decode("utf-8", "replace")
        return OutsideError(
            f"cue printed something that is not a list of violations ({why}): {shown!r}"
        )

    try:
        value = json.loads(stdout)
    except (ValueError, UnicodeDecodeError):
        raise garbage("not JSON") from None
    if not isinstance(value, list):
        raise garbage(f"a JSON {type(value).__name__}, not a list")
    findings = []
    for number, entry in enumerate(value, 1):
        if not isinstance(entry, dict):
            raise garbage(f"entry {number} is a {type(entry).__name__}, not an object")
        if sorted(entry) != sorted(_KEYS) or not all(isinstance(v, str) for v in entry.values()):
            raise garbage(f"entry {number} is not {{{', '.join(_KEYS)}}}, all strings")
        if entry["cluster"] not in inputs:
            raise garbage(f"entry {number} names an unknown cluster {entry['cluster']!r}")
        findings.append(CueFinding(**entry))
    return findings


class _CueRun:
    """A started cue and the directory it runs in."""

    def __init__(self, running: proc.Running, work: tempfile.TemporaryDirectory[str]) -> None:
        self.running = running
        self._work = work
        self.work = Path(work.name)

    def finish(
        self, data: bytes, *, timeout: float, cancel: threading.Event | None
    ) -> proc.Completed:
        return self.running.finish(data, timeout=timeout, cancel=cancel)

    def close(self) -> None:
        self.running.stop()
        self._work.cleanup()


def _shards(dumped: Iterable[tuple[str, str]], most: int) -> Iterator[dict[str, str]]:
    """Runs of clusters in the order they come, each of at most `most` bytes of JSON (a
    cluster larger than that alone); a shard is given out once the next would overflow it."""
    shard: dict[str, str] = {}
    filled = 0
    for name, text in dumped:
        if shard and filled + len(text) > most:
            yield shard
            shard, filled = {}, 0
        shard[name] = text
        filled += len(text)
    if shard:
        yield shard
