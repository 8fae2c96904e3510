"""A cache of derived data on disk, keyed by the content it derives from.

Only derivations go here whose key names everything they depend on (a vendored
CRD file parsed into JSON, keyed by its bytes; a cue binary's version, keyed by its
path, size and modification time; cue's verdicts, compiler/policy/cue_verdicts.py):
an entry is never stale, and a changed source is simply a new entry. The cache is
an optimisation: any failure to read or write it is ignored and the value is
computed as if it were not there.

Where: `$GITOPS_CACHE_DIR`, else `$XDG_CACHE_HOME/gitops-compiler`, else
`~/.cache/gitops-compiler`. Off with GITOPS_NO_CACHE=1, which `--no-cache` sets for
the command it is given to (`turned_off`): then every cache here is neither read nor
written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

_FORMAT = "1"  # bump when what an entry holds changes meaning


def use_cache(environ: Mapping[str, str] = os.environ) -> bool:
    """False when the caller asked for no cache (`--no-cache`, GITOPS_NO_CACHE=1)."""
    return environ.get("GITOPS_NO_CACHE", "") in ("", "0")


@contextlib.contextmanager
def turned_off(off: bool) -> Iterator[None]:
    """GITOPS_NO_CACHE=1 while a `--no-cache` command runs, as it was after: every
    cache (some read before the command line is, by the console script) asks the
    environment, and a process may run several commands (the tests, `make demo`)."""
    if not off:
        yield
        return
    before = os.environ.get("GITOPS_NO_CACHE")
    os.environ["GITOPS_NO_CACHE"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("GITOPS_NO_CACHE", None)
        else:
            os.environ["GITOPS_NO_CACHE"] = before


def cache_root(environ: Mapping[str, str] = os.environ) -> Path:
    if environ.get("GITOPS_CACHE_DIR"):
        return Path(environ["GITOPS_CACHE_DIR"])
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gitops-compiler"


def cached_json(kind: str, source: bytes, derive: Callable[[], Any]) -> Any:
    """`derive()`, stored as JSON under a hash of `source` and read back next time."""
    if not use_cache():
        return derive()
    digest = hashlib.sha256(f"{kind}\0{_FORMAT}\0".encode() + source).hexdigest()
    path = cache_root() / kind / f"{digest}.json"
    with contextlib.suppress(OSError, ValueError):
        return json.loads(path.read_bytes())
    value = derive()
    with contextlib.suppress(OSError, TypeError, ValueError):
        write_atomically(path, json.dumps(value, separators=(",", ":")).encode())
    return value


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the whole entry or none: two runs may fill the same entry at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
