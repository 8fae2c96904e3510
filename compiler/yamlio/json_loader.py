"""Strict loading of JSON layer documents: what `json.loads` accepts and a layer must not."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from compiler.errors import InputError
from compiler.model import DocPath
from compiler.yamlio.text import decode, path_prefix, quoted


def load_layer_json(data: bytes | str, source: str, *, max_depth: int = 200) -> Any:
    """One JSON layer document: duplicate keys, NaN/Infinity and deep nesting refused."""
    text = decode(data, source)
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_pairs,
            parse_constant=_no_constant,
            parse_int=_json_int,
            parse_float=_json_float,
        )
    except json.JSONDecodeError as err:
        raise InputError(f"{source}:{err.lineno}:{err.colno}: {err.msg}") from None
    except _Refused as err:
        problem = str(err)
    except RecursionError:
        problem = "nested too deeply"
    else:
        # Every container opens with its own `{` or `[`, so a text with no more of them
        # than max_depth nests no deeper: counting is C-fast, walking the value is not
        # (0.2 s of a fleet's 1,000 documents).
        if text.count("{") + text.count("[") > max_depth and _json_depth(value) > max_depth:
            problem = f"nested deeper than {max_depth} levels"
        elif _SURROGATE_ESCAPE.search(text) and _has_surrogate(value):
            problem = "a \\u escape names half of a UTF-16 surrogate pair, not a character"
        else:
            return value
    # The fast C parser cannot say where the problem is; find it the slow way.
    raise _locate_json_problem(text, source, max_depth, problem)


class _Refused(Exception):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Refused("duplicate key")
    return out


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _json_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # past sys.get_int_max_str_digits()
        raise _Refused(f"a number of {len(text)} digits is too long") from None


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 is valid JSON, and inf to Python
        raise _Refused(f"{quoted(text)} is not a finite number")
    return value


def _json_depth(value: Any) -> int:
    """How many containers deep `value` nests (a scalar is 0); iterative, any depth."""
    deepest = 0
    todo = [(value, 1)] if isinstance(value, (dict, list)) else []
    while todo:
        item, depth = todo.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        todo.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


# json.loads turns a lone "\\ud800" (half a surrogate pair) into a str that no encoder
# writes, so the dump of the tree would fail: refuse it here, as the YAML reader does.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(value: Any) -> bool:
    """Whether a key or string of `value` holds a lone surrogate; iterative, any depth."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            todo.extend(item)
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return False


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+')


def _locate_json_problem(text: str, source: str, max_depth: int, fallback: str) -> InputError:
    """Where a document refused by a json.loads hook is wrong; only on the error path."""

    def error(pos: int, path: DocPath, message: str) -> InputError:
        line = text.count("\n", 0, pos) + 1
        column = pos - text.rfind("\n", 0, pos)
        return InputError(f"{source}:{line}:{column}: {path_prefix(path)}{message}")

    # Each open container: its path, its keys and their offsets (None for a list),
    # and the key or index of the value being read.
    stack: list[tuple[DocPath, dict[str, int] | None, list[str | int]]] = []
    expect_key = False
    for match in _JSON_TOKEN.finditer(text):
        token, pos = match.group(), match.start()
        keys = stack[-1][1] if stack else None
        path: DocPath = (*stack[-1][0], stack[-1][2][0]) if stack else ()
        if token in ("{", "["):
            if len(stack) >= max_depth:
                return error(pos, path, f"nested deeper than {max_depth} levels")
            stack.append((path, {} if token == "{" else None, [0]))
            expect_key = token == "{"
        elif token in ("}", "]"):
            if not stack:  # a stray closer: json.loads met a refused number before it
                break
            stack.pop()
        elif token == ",":
            if keys is None and stack:
                stack[-1][2][0] = int(stack[-1][2][0]) + 1
            expect_key = keys is not None
        elif token.startswith('"') and expect_key and keys is not None:
            key = json.loads(token)
            if key in keys:
                first = text.count("\n", 0, keys[key]) + 1
                return error(
                    pos, (*stack[-1][0], key), f"duplicate key {key!r} (first at line {first})"
                )
            keys[key] = pos
            stack[-1][2][0] = key
            expect_key = False
        elif token in ("NaN", "Infinity", "-Infinity"):
            return error(pos, path, f"{token} is not a JSON number")
        elif token[0] in "-0123456789" and (refused := _refused_number(token)):
            return error(pos, path, refused)
    return InputError(f"{source}: {fallback}")


def _refused_number(token: str) -> str | None:
    """Why the JSON number `token` is refused (too long, not finite), or None."""
    try:
        if any(c in token for c in ".eE"):
            _json_float(token)
        else:
            _json_int(token)
    except _Refused as err:
        return str(err)
    except ValueError:
        return None  # not a number at all: json.loads said so already
    return None
