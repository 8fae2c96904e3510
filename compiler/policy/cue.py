"""The organisation's CUE policies (`policies/*.cue`), run by the `cue` command.

One `cue export` per run checks every cluster: the clusters' documents go in
one data file under `clusters`, and the policies compute `violations`, a list
of `{cluster, path, rule, message}` (see `policies/policy.cue`). Exporting a
computed list, rather than `cue vet`, gives every finding at once with its
rule id; `cue vet` stops at the first error of a file.

A cue that is missing, dies, hangs or prints something that is not such a
list is an outside failure (exit 3), never a pass. A cue that says the
policies do not evaluate (exit 1 and a message) is bad input (exit 2).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler import proc
from compiler.errors import InputError, OutsideError

DEFAULT_TIMEOUT = 60.0  # seconds for a call, plus PER_MB_TIMEOUT for each MB of documents
# The WebAssembly cue needs ~0.5 s to start, then its time follows the size of the
# documents it reads: ~5 s a MB of compact JSON (bench/: 1000 clusters, 6.1 MB, 33 s
# on 2 cores). Allow it several times that, so that a large fleet on a busy machine
# is not a timeout.
PER_MB_TIMEOUT = 30.0
CUE_ERROR = 1  # cue's exit code for "the CUE does not evaluate"; a Go panic exits 2
HOW_TO_GET_CUE = (
    "install cue (https://cuelang.org/docs/introduction/installation/), or run `make` in "
    "the gitops-compiler checkout and set GITOPS_CUE=<checkout>/tools/cue-wasm/cue"
)
_KEYS = ("cluster", "path", "rule", "message")


@dataclass(frozen=True, order=True)
class CueFinding:
    cluster: str
    path: str  # dotted path in the cluster's config, e.g. `namespaces.dev-team.labels.team`
    rule: str
    message: str


def find_cue(flag: str | None, environ: Mapping[str, str]) -> Path:
    """`--cue PATH`, then `$GITOPS_CUE`, then `cue` on PATH; only looks, runs nothing.

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
    found = shutil.which("cue", path=search_path)
    if found is None:
        raise OutsideError(f"no cue found (--cue, GITOPS_CUE or PATH): {HOW_TO_GET_CUE}")
    return Path(found).absolute()


def cue_version(cue: Path, *, timeout: float = 30.0) -> str:
    """The first line of `cue version`, e.g. `cue version v0.4.0-beta.1 js/wasm`."""
    ran = proc.run([cue, "version"], cwd=None, env=None, timeout=timeout)
    if ran.returncode != 0:
        raise OutsideError(proc.failure(ran))
    lines = ran.stdout.decode("utf-8", "replace").strip().splitlines()
    if not lines:
        raise OutsideError(f"{proc.describe(ran.argv)} printed nothing")
    return lines[0]


class CuePolicies:
    """The `*.cue` files of one directory, checked by one `cue` binary."""

    def __init__(self, policies_dir: Path, cue: Path, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.policies_dir = policies_dir
        self.cue = cue
        self.timeout = timeout
        # As cue itself loads a package: files named `.*` or `_*` are not part of it.
        self.files = tuple(
            sorted(p for p in policies_dir.glob("*.cue") if not p.name.startswith((".", "_")))
        )

        self._warm: _CueRun | None = None

    def warm_up(self) -> None:
        """Start cue now, before the documents exist: node and the WebAssembly module take
        ~0.25 s to load, which then overlaps with reading and merging the layers. The
        next `check` hands it the documents; `close` stops it if no check came."""
        if self.files and self._warm is None:
            self._warm = self._start()

    def close(self) -> None:
        if self._warm is not None:
            self._warm.close()
            self._warm = None

    def check(
        self, inputs: Mapping[str, Any], *, cancel: threading.Event | None = None
    ) -> list[CueFinding]:
        """Every finding of every cluster (name -> its input document), sorted; one cue call.

        The pipeline runs this in a worker thread beside the rendering, and sets
        `cancel` to stop cue when the run is interrupted (see `proc.run`).
        """
        if not self.files or not inputs:
            return []
        run, self._warm = self._warm or self._start(), None
        document = json.dumps({"clusters": inputs}, sort_keys=True, separators=(",", ":"))
        timeout = round(self.timeout + PER_MB_TIMEOUT * len(document) / 1e6, 1)
        try:
            ran = run.finish(document.encode(), timeout=timeout, cancel=cancel)
        finally:
            run.close()
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
            running = proc.start(argv, cwd=Path(work.name), env=None, takes_stdin=True)
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
