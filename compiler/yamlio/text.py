"""What both strict loaders share: reading the bytes as text, and quoting a value or a
path in a message."""

from __future__ import annotations

from compiler.errors import InputError
from compiler.model import DocPath, format_path

_SHOWN = 60  # characters of a scalar quoted in a message


def decode(data: bytes | str, source: str) -> str:
    """UTF-8 text without a BOM; bytes that are not UTF-8 are an InputError at their line."""
    if isinstance(data, str):
        text = data
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = data.count(b"\n", 0, err.start) + 1
            raise InputError(
                f"{source}:{line}: not valid UTF-8 (byte offset {err.start})"
            ) from None
    # Editors on Windows write a BOM; json.loads refuses it, libyaml skips it.
    return text.removeprefix("\ufeff")


def quoted(text: str) -> str:
    """A scalar as a message quotes it: a very long one is cut, as the line says where."""
    if len(text) <= _SHOWN:
        return repr(text)
    return f"{text[:_SHOWN]!r}... ({len(text)} characters)"


def path_prefix(path: DocPath, shown: int = 16) -> str:
    """The path for a message; a very deep one is cut, as the line already says where."""
    if not path:
        return ""
    return format_path(path[:shown]) + ("..." if len(path) > shown else "") + ": "
