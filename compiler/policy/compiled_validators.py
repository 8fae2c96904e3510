"""fastjsonschema's compiled validators, kept in the cache dir from one run to the next.

Compiling a schema costs 30 ms to 0.17 s (generating its Python source, then Python
compiling that), every run; loading the compiled code back costs about a
millisecond. So the code object is stored (`marshal`, as a `.pyc` stores one) under
a hash of everything it is derived from: the schema's JSON, the options, the
fastjsonschema version and the Python bytecode version (a `.pyc` is keyed by that
too). A changed input is a new entry, never a stale one.

An entry names its own key in its header and carries the hash of its code: a corrupt,
truncated or foreign entry (another key's, another Python's) fails to load and is
compiled again, never run.
Like a `.pyc` under `__pycache__`, an entry is code: the cache dir is the user's own
(`cachedir.cache_root`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import marshal
import re
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import Any

import fastjsonschema

from compiler.cachedir import write_atomically
from compiler.policy.fast_schema import for_fastjsonschema

KIND = "validators"  # the cache dir's sub-directory
_FORMAT = b"gitops-compiler validator 2\0"  # bump when an entry's layout or rewrite changes

Validate = Callable[[Any], Any]

# The generated code formats each map entry's path as `"...{name}".format(**locals())`,
# a dict of every local built per entry (a quarter of a valid config's check). The
# same literal as an f-string reads only the names it holds: the same string. Only
# literals of plain text and `{name}` fields are rewritten.
_FORMAT_WITH_LOCALS = re.compile(
    r'(?<=\(name_prefix or "data"\) \+ )'  # where a path literal starts, not any quote
    r'"((?:[^"\\{}\n]|\{[A-Za-z_][A-Za-z0-9_]*\})*)"\.format\(\*\*locals\(\)\)'
)


def validator_key(schema_json: str, *, use_default: bool, use_formats: bool) -> str:
    """The hash of every input the compiled code depends on."""
    parts = (
        _FORMAT,
        fastjsonschema.VERSION.encode(),
        importlib.util.MAGIC_NUMBER,  # the bytecode format marshal writes
        f"default={use_default}\0formats={use_formats}\0".encode(),
        schema_json.encode(),
    )
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


def compiled_validator(
    schema: dict[str, Any],
    schema_json: str,
    *,
    use_default: bool,
    use_formats: bool,
    cache_dir: Path | None,
) -> Validate:
    """fastjsonschema's validator of `schema` (`schema_json`: its canonical JSON, the
    key), compiled from its rewrite for speed (`fast_schema`, same verdicts): from
    `cache_dir` when an entry is there, else compiled and stored there. No cache dir:
    compiled each time."""
    key = validator_key(schema_json, use_default=use_default, use_formats=use_formats)
    path = cache_dir / KIND / f"{key}.bin" if cache_dir is not None else None
    code = _load(path, key) if path is not None else None
    if code is None:
        code = _generated(schema, key, use_default=use_default, use_formats=use_formats)
        if path is not None:
            with contextlib.suppress(OSError):
                payload = marshal.dumps(code)
                write_atomically(path, _header(key) + hashlib.sha256(payload).digest() + payload)
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # code fastjsonschema generated: here, or stored by a run before
    validate: Validate = namespace["validate"]
    return validate


def _generated(
    schema: dict[str, Any], key: str, *, use_default: bool, use_formats: bool
) -> CodeType:
    """fastjsonschema's code for the rewritten schema, else (a rewrite that does not
    compile: a `$ref` into a place it changed) for the schema as it is."""
    name = f"<fastjsonschema {key[:12]}>"
    with contextlib.suppress(fastjsonschema.JsonSchemaDefinitionException, SyntaxError, re.error):
        source = fastjsonschema.compile_to_code(
            for_fastjsonschema(schema), use_default=use_default, use_formats=use_formats
        )
        return compile(_FORMAT_WITH_LOCALS.sub(r'f"\1"', source), name, "exec")
    source = fastjsonschema.compile_to_code(
        schema, use_default=use_default, use_formats=use_formats
    )
    return compile(_FORMAT_WITH_LOCALS.sub(r'f"\1"', source), name, "exec")


def _header(key: str) -> bytes:
    return _FORMAT + key.encode() + b"\0"


def _load(path: Path, key: str) -> CodeType | None:
    """The stored code object, or None for a missing, corrupt or foreign entry."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    header = _header(key)
    digest, payload = data[len(header) : len(header) + 32], data[len(header) + 32 :]
    if not data.startswith(header) or hashlib.sha256(payload).digest() != digest:
        return None
    try:
        code = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None
