"""The organisation's CUE policies (`policies/*.cue`), run by the `cue` command.

One `cue export` per run checks every cluster: the clusters' documents go in
one data file under `clusters`, and the policies compute `violations`, a list
of `{cluster, path, rule, message}` (see `policies/policy.cue`). Exporting a
computed list, rather than `cue vet`, gives every finding at once with its
rule id; `cue vet` stops at the first error of a file.

A cue that is missing, dies, hangs or prints something that is not such a
list is an outside failure (exit 3), never a pass.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler import proc
from compiler.errors import InputError, OutsideError

DEFAULT_TIMEOUT = 120.0  # seconds; the WebAssembly cue needs ~1 s for a small fleet
_HOW_TO_GET_CUE = (
    "install cue (https://cuelang.org/docs/introduction/installation/), or run `make` in "
    "the gitops-compiler checkout and set GITOPS_CUE=<checkout>/tools/cue-wasm/cue"
)
_FINDING_KEYS = {"cluster", "path", "rule", "message"}


@dataclass(frozen=True, order=True)
class CueFinding:
    cluster: str
    path: str
    rule: str
    message: str


def find_cue(flag: str | None, environ: Mapping[str, str]) -> Path:
    """`--cue PATH`, then `$GITOPS_CUE`, then `cue` on PATH."""
    for given, origin in ((flag, "--cue"), (environ.get("GITOPS_CUE"), "GITOPS_CUE")):
        if given:
            path = Path(given)
            if not path.is_file():
                raise OutsideError(
                    f"{origin} names {given}, which is not a file; {_HOW_TO_GET_CUE}"
                )
            if not os.access(path, os.X_OK):
                raise OutsideError(f"{origin} names {given}, which is not executable")
            return path
    found = shutil.which("cue", path=environ.get("PATH"))
    if found is None:
        raise OutsideError(f"no cue found (--cue, GITOPS_CUE or PATH): {_HOW_TO_GET_CUE}")
    return Path(found)


def cue_version(cue: Path, *, timeout: float = 30.0) -> str:
    ran = proc.run([cue, "version"], timeout=timeout)
    if ran.returncode != 0:
        raise OutsideError(f"`{cue} version` exited {ran.returncode}{proc.indented(ran.stderr)}")
    return ran.stdout.decode("utf-8", "replace").strip().splitlines()[0]


class CuePolicies:
    def __init__(self, policies: Path, cue: Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.policies = policies
        self.cue = cue
        self.timeout = timeout
        self.files = sorted(p.resolve() for p in policies.glob("*.cue"))

    def check(self, documents: Mapping[str, Any]) -> list[CueFinding]:
        """Every finding of every cluster in `documents` (name -> cue document), sorted."""
        if not self.files or not documents:
            return []
        with tempfile.TemporaryDirectory(prefix="gitops-cue-") as work:
            data = Path(work) / "clusters.json"
            data.write_text(json.dumps({"clusters": documents}, sort_keys=True), "utf-8")
            argv = [self.cue, "export", "--out", "json", "-e", "violations", *self.files, data]
            ran = proc.run([str(a) for a in argv], cwd=Path(work), timeout=self.timeout)
        if ran.returncode != 0:
            if ran.stderr.strip():
                # cue said what is wrong: the policies do not evaluate (a syntax error,
                # a conflict). They are input, like an overlay.
                raise InputError(
                    f"the CUE policies in {self.policies} do not evaluate "
                    f"(cue exited {ran.returncode}):{proc.indented(ran.stderr)}"
                )
            raise OutsideError(f"cue exited {ran.returncode} without a message")
        return sorted(_parse(ran.stdout, set(documents)))


def _parse(stdout: bytes, clusters: set[str]) -> list[CueFinding]:
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
    for entry in value:
        if (
            not isinstance(entry, dict)
            or set(entry) != _FINDING_KEYS
            or not all(isinstance(v, str) for v in entry.values())
        ):
            raise garbage(f"an entry is not {{{', '.join(sorted(_FINDING_KEYS))}}}")
        if entry["cluster"] not in clusters:
            raise garbage(f"unknown cluster {entry['cluster']!r}")
        findings.append(CueFinding(**entry))
    return findings
