"""jsonschema's valid verdicts, kept in the cache dir from one run to the next.

A schema too large to compile (the ApplicationSet CRD: 0.4 M characters) is run by
jsonschema alone, in every run, on the same few documents; and jsonschema takes
~70 ms to import. So a document jsonschema found valid is remembered under a hash of
everything the verdict depends on: the validator (`label`: its draft and format
checker), jsonschema's version, Python's (the `pattern` keyword is Python's `re`),
the schema and the document. Only valid verdicts are kept: an invalid document is
validated again, for its errors. A changed input is a new entry, never a stale one.

The document is keyed by its `repr`, which tells apart what JSON would not (a tuple
from a list, `1` from `1.0` from `True`); a document that reads the same but
differs otherwise is at worst not found.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import sys
from pathlib import Path
from typing import Any

from compiler.cachedir import write_atomically

KIND = "verdicts"  # the cache dir's sub-directory
_FORMAT = "gitops-compiler verdict 1"  # bump when what an entry means changes


def key(label: str, schema_json: str, document: Any) -> str:
    """The hash of every input jsonschema's verdict on `document` depends on."""
    parts = (
        _FORMAT,
        label,
        importlib.metadata.version("jsonschema"),
        sys.version,
        schema_json,
        repr(document),
    )
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def seen_valid(cache_dir: Path, verdict: str) -> bool:
    """Whether the document behind `verdict` (a `key`) was found valid before."""
    return _path(cache_dir, verdict).is_file()


def keep_valid(cache_dir: Path, verdict: str) -> None:
    """Remember a valid verdict; best effort, as every cache entry."""
    with contextlib.suppress(OSError):
        write_atomically(_path(cache_dir, verdict), b"valid\n")


def _path(cache_dir: Path, verdict: str) -> Path:
    return cache_dir / KIND / verdict[:2] / verdict
