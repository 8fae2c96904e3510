"""The one YAML/JSON module: strict loading of layer documents, deterministic dumping.

Loading walks the parser's event stream rather than calling `safe_load`, so that it
records the line of every value and refuses what `safe_load` silently accepts:
duplicate keys, aliases (billion laughs), `on`/`no` read as booleans, timestamps,
Python tags (DESIGN.md, "Pitfalls known upstream" / YAML). Walking events instead of
composed nodes also keeps the depth and node budgets ahead of any recursion.

Dumping writes the same bytes on any machine, and quotes every string that a YAML 1.1
or 1.2 reader, or Go's yaml.v2 (kubectl, Argo CD), would read as something else.
"""

from __future__ import annotations

import json
import math
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from compiler.errors import InputError
from compiler.model import format_path

try:
    from yaml import CSafeDumper as _BaseDumper
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # no libyaml: the pure classes behave the same, only slower
    from yaml import SafeDumper as _BaseDumper  # type: ignore[assignment]
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

Path_ = tuple[str | int, ...]  # a path into a document: keys and list indexes

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_SCALAR_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL})
_QUOTE_IT = {
    "tag:yaml.org,2002:timestamp": "a timestamp",
    "tag:yaml.org,2002:binary": "binary",
    "tag:yaml.org,2002:value": "the YAML 1.1 value key",
}
_KIND = {_INT: "an int", _FLOAT: "a float", _BOOL: "a boolean", _NULL: "null", _MERGE: "a merge"}
# YAML 1.1 booleans besides true/false. PyYAML resolves all but y/n; Go's yaml.v2 all.
_YAML11_BOOL_WORDS = frozenset({"yes", "no", "on", "off", "y", "n"})
_ALIASES = "aliases and anchors are not allowed in layer documents; write the values out"
# Plain numbers that YAML 1.1 (this loader, Go's yaml.v2) and YAML 1.2 read differently:
# 0755 is 493 (octal) or 755, and 0b1, 1:30 (base 60) and 1_000 are numbers or strings.
# Hexadecimal means the same to both.
_AMBIGUOUS_NUMBER = re.compile(r"[-+]?0[0-9bB_]|.*[_:]")
_SHOWN = 60  # characters of a scalar quoted in a message


@dataclass(frozen=True)
class LoadedDocument:
    value: Any  # plain data: dict/list/str/int/float/bool/None
    lines: Mapping[Path_, int]  # 1-based line of every node's value, root = ()


# ---------------------------------------------------------------------------- load


def load_layer_yaml(
    data: bytes, source: str, *, max_nodes: int = 1_000_000, max_depth: int = 200
) -> LoadedDocument:
    """One YAML layer document; every refusal is an InputError at `source:line`."""
    text = _decode(data, source)
    try:
        loader = _BaseLoader(text)  # the pure reader checks the characters right here
        try:
            return _Walk(loader, source, max_nodes, max_depth).run()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = err.problem or err.context or "invalid YAML"
        context = f" ({err.context})" if err.problem and err.context else ""
        raise InputError(f"{where}: {problem}{context}") from None
    except yaml.reader.ReaderError as err:
        # libyaml counts the offset in bytes of the UTF-8 text, the pure reader in
        # characters; the line is right either way for what matters here (ASCII).
        line = text.count("\n", 0, err.position) + 1
        # libyaml gives the character as an int, the pure reader as a str.
        code = err.character if isinstance(err.character, int) else ord(err.character)
        raise InputError(f"{source}:{line}: {err.reason} (character #x{code:04x})") from None


def _decode(data: bytes | str, source: str) -> str:
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


@dataclass
class _Open:
    """A mapping or sequence whose end event has not come yet."""

    path: Path_
    value: dict[str, Any] | list[Any]
    key: str | None = None  # a mapping's key waiting for its value
    key_lines: dict[str, int] = field(default_factory=dict)


class _Walk:
    """Builds plain data from the event stream, one event at a time (no recursion)."""

    def __init__(self, loader: Any, source: str, max_nodes: int, max_depth: int) -> None:
        self.loader = loader
        self.source = source
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self.open: list[_Open] = []
        self.lines: dict[Path_, int] = {}
        self.root: Any = {}
        self.nodes = 0

    def run(self) -> LoadedDocument:
        documents = 0
        while self.loader.check_event():
            event = self.loader.get_event()
            line = event.start_mark.line + 1
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise self.error(line, (), "a layer file holds one document, found a second")
            elif isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise self.error(line, self.child_path(), _ALIASES)
            elif isinstance(event, yaml.CollectionEndEvent):
                self.open.pop()
            elif isinstance(event, yaml.NodeEvent):
                self.node(event, line)
        if documents == 0:  # empty, or only comments
            self.lines[()] = 1
        return LoadedDocument(value=self.root, lines=self.lines)

    def node(self, event: yaml.NodeEvent, line: int) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise self.error(line, self.child_path(), f"more than {self.max_nodes} nodes")
        parent = self.open[-1] if self.open else None
        if parent is not None and isinstance(parent.value, dict) and parent.key is None:
            self.key(parent, event, line)
            return
        path = self.child_path()
        value: Any
        if isinstance(event, yaml.ScalarEvent):
            value = self.scalar(event, line, path)
            if parent is None and value is None and event.value == "" and event.tag is None:
                value = {}  # a document with no content, such as `---` alone
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(self.open) >= self.max_depth:
                raise self.error(line, path, f"nested deeper than {self.max_depth} levels")
            tag = event.tag
            is_map = isinstance(event, yaml.MappingStartEvent)
            if tag not in (None, "!", _MAP if is_map else _SEQ):
                raise self.error(line, path, f"tag {tag} is not allowed")
            value = {} if is_map else []
        self.lines[path] = line
        if parent is None:
            self.root = value
        elif isinstance(parent.value, list):
            parent.value.append(value)
        elif parent.key is not None:
            parent.value[parent.key] = value
            parent.key = None
        if isinstance(event, yaml.CollectionStartEvent):
            self.open.append(_Open(path, value))

    def key(self, parent: _Open, event: yaml.NodeEvent, line: int) -> None:
        if not isinstance(event, yaml.ScalarEvent):
            what = "a map" if isinstance(event, yaml.MappingStartEvent) else "a list"
            raise self.error(line, parent.path, f"a key is {what}; keys must be strings")
        tag = self.tag_of(event)
        if tag == _MERGE:
            raise self.error(line, parent.path, f"merge keys (<<): {_ALIASES}")
        if tag != _STR:
            kind = _KIND.get(tag) or _QUOTE_IT.get(tag) or f"tag {tag}"
            raise self.error(
                line,
                parent.path,
                f"key {_shown(event.value)} is read as {kind}; keys must be strings, quote it",
            )
        key = event.value
        self.refuse_bool_word(event, line, (*parent.path, key))
        first = parent.key_lines.get(key)
        if first is not None:
            raise self.error(
                line, (*parent.path, key), f"duplicate key {key!r} (first at line {first})"
            )
        parent.key_lines[key] = line
        parent.key = key

    def scalar(self, event: yaml.ScalarEvent, line: int, path: Path_) -> Any:
        tag = self.tag_of(event)
        explicit = event.tag not in (None, "!")
        if tag in _QUOTE_IT:
            raise self.error(line, path, f"{_shown(event.value)} is {_QUOTE_IT[tag]}; quote it")
        if tag not in _SCALAR_TAGS:
            if explicit:
                raise self.error(line, path, f"tag {tag} is not allowed")
            raise self.error(
                line, path, f"{_shown(event.value)} is read as {_KIND.get(tag, tag)}; quote it"
            )
        self.refuse_bool_word(event, line, path)
        if tag == _STR:
            return event.value
        node = yaml.ScalarNode(tag, event.value)
        try:
            value = self.loader.yaml_constructors[tag](self.loader, node)
        except (ValueError, KeyError):
            raise self.error(line, path, f"{_shown(event.value)} is not {_KIND[tag]}") from None
        if isinstance(value, float) and not math.isfinite(value):
            # JSON and the merge cannot carry NaN or infinities; refused as in load_layer_json.
            raise self.error(line, path, f"{_shown(event.value)} is not a finite number; quote it")
        if not explicit and tag in (_INT, _FLOAT) and _AMBIGUOUS_NUMBER.match(event.value):
            raise self.error(
                line,
                path,
                f"{_shown(event.value)} is read as {value} by YAML 1.1 and differently by "
                "other readers; quote it, or write the number in decimal",
            )
        return value

    def tag_of(self, event: yaml.ScalarEvent) -> str:
        if event.tag is None:
            tag: str = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
            return tag
        # `!` is the YAML non-specific tag: a string (PyYAML would resolve it as plain).
        return _STR if event.tag == "!" else event.tag

    def refuse_bool_word(self, event: yaml.ScalarEvent, line: int, path: Path_) -> None:
        plain = event.style in (None, "")  # libyaml says "", the pure parser None
        if plain and event.tag is None and event.value.lower() in _YAML11_BOOL_WORDS:
            raise self.error(
                line,
                path,
                f"{event.value!r} is read as a boolean by YAML 1.1; "
                "write true/false, or quote it if you meant the string",
            )

    def child_path(self) -> Path_:
        if not self.open:
            return ()
        parent = self.open[-1]
        if isinstance(parent.value, list):
            return (*parent.path, len(parent.value))
        return (*parent.path, parent.key) if parent.key is not None else parent.path

    def error(self, line: int, path: Path_, message: str) -> InputError:
        message = message.replace("tag:yaml.org,2002:", "!!")  # as the user wrote it
        return InputError(f"{self.source}:{line}: {_where(path)}{message}")


def _shown(text: str) -> str:
    """A scalar as a message quotes it: a very long one is cut, as the line says where."""
    if len(text) <= _SHOWN:
        return repr(text)
    return f"{text[:_SHOWN]!r}... ({len(text)} characters)"


def _where(path: Path_, shown: int = 16) -> str:
    """The path for a message; a very deep one is cut, as the line already says where."""
    if not path:
        return ""
    return format_path(path[:shown]) + ("..." if len(path) > shown else "") + ": "


def load_layer_json(data: bytes | str, source: str, *, max_depth: int = 200) -> Any:
    """One JSON layer document: duplicate keys, NaN/Infinity and deep nesting refused."""
    text = _decode(data, source)
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
        if _json_depth(value) > max_depth:
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
        raise _Refused(f"{_shown(text)} is not a finite number")
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

    def error(pos: int, path: Path_, message: str) -> InputError:
        line = text.count("\n", 0, pos) + 1
        column = pos - text.rfind("\n", 0, pos)
        return InputError(f"{source}:{line}:{column}: {_where(path)}{message}")

    # Each open container: its path, its keys and their offsets (None for a list),
    # and the key or index of the value being read.
    stack: list[tuple[Path_, dict[str, int] | None, list[str | int]]] = []
    expect_key = False
    for match in _JSON_TOKEN.finditer(text):
        token, pos = match.group(), match.start()
        keys = stack[-1][1] if stack else None
        path: Path_ = (*stack[-1][0], stack[-1][2][0]) if stack else ()
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


# ---------------------------------------------------------------------------- dump

# Strings that a reader other than PyYAML takes for a number or a boolean:
# - Go's yaml.v2 (kubectl, Argo CD via sigs.k8s.io/yaml) drops every `_` and then
#   tries strconv.ParseInt(s, 0) (0x1f, 0o755, 0b1, 08) and YAML 1.2 floats;
# - YAML 1.2 core floats such as 1e3, 1E-5, .5e1, which YAML 1.1 reads as strings;
# - the YAML 1.1 booleans y/Y/n/N, which yaml.v2 honours and PyYAML does not.
_GO_OR_YAML12_NUMBER = re.compile(
    r"[-+]?0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)"
    r"|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
)
_SINGLE_LETTER_BOOL = frozenset({"y", "Y", "n", "N"})


class _Dumper(_BaseDumper):
    """Block style, no aliases, quoting for every reader of the output."""

    def ignore_aliases(self, data: Any) -> bool:
        # A list shared by two objects after a merge must be written twice, never as
        # &id001/*id001: kubectl and reviewers expect plain manifests.
        return True

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # The emitter writes a string plain only when this says "str" for it; saying
        # "int", "float" or "bool" makes it quote the string.
        tag = super().resolve(kind, value, implicit)
        if kind is yaml.ScalarNode and implicit[0] and tag == _STR:
            if _GO_OR_YAML12_NUMBER.fullmatch(value.replace("_", "")):
                return _FLOAT
            if value in _SINGLE_LETTER_BOOL or value.lower() in _YAML11_BOOL_WORDS:
                # PyYAML resolves yes/Yes/YES but not yEs; the strict loader refuses all
                # cases of them unquoted, so the dumper quotes all cases.
                return _BOOL
        return tag


def _represent_str(dumper: _Dumper, data: str) -> yaml.ScalarNode:
    # Multi-line text (scripts, certificates) reads best as a literal block; the
    # emitter falls back to quoting where a block cannot hold the text exactly.
    return dumper.represent_scalar(_STR, data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _represent_str)


def _dump(data: Any) -> bytes:
    text = yaml.dump(
        data,
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,  # the callers order keys; PyYAML's sort hides TypeErrors
        allow_unicode=True,
        width=2**31 - 1,  # never fold long strings
        indent=2,
        line_break="\n",
    )
    return text.encode("utf-8")


def _sorted(obj: Any) -> Any:
    """A copy with every mapping's keys sorted; also breaks any shared references."""
    if isinstance(obj, Mapping):
        return {key: _sorted(obj[key]) for key in sorted(obj)}
    if isinstance(obj, (list, tuple)):
        return [_sorted(item) for item in obj]
    return obj


def _ordered(obj: Mapping[str, Any], first: tuple[str, ...]) -> dict[str, Any]:
    head = [key for key in first if key in obj]
    rest = sorted(key for key in obj if key not in first)
    return {key: _sorted(obj[key]) for key in (*head, *rest)}


# Most objects of a fleet repeat from cluster to cluster (a namespace's LimitRange,
# Role and default-deny policy come from the same layers everywhere; kustomize adds
# the cluster labels later), so each distinct object is serialised once. The key is
# the object's pickle: equal bytes mean equal types, values and key order, hence
# equal YAML; an equal object pickled differently is only a miss.
_MANIFEST_CACHE: dict[bytes, bytes] = {}
_MANIFEST_CACHE_SIZE = 20_000


def dump_manifest(obj: Mapping[str, Any]) -> bytes:
    """One Kubernetes object: apiVersion, kind, metadata (name, namespace first), rest sorted."""
    try:
        key = pickle.dumps(obj, protocol=5)
    except (pickle.PicklingError, TypeError, AttributeError):
        return _dump_manifest(obj)
    found = _MANIFEST_CACHE.get(key)
    if found is None:
        found = _dump_manifest(obj)
        if len(_MANIFEST_CACHE) >= _MANIFEST_CACHE_SIZE:
            _MANIFEST_CACHE.clear()
        _MANIFEST_CACHE[key] = found
    return found


def _dump_manifest(obj: Mapping[str, Any]) -> bytes:
    out = _ordered(obj, ("apiVersion", "kind", "metadata"))
    if isinstance(obj.get("metadata"), Mapping):
        out["metadata"] = _ordered(obj["metadata"], ("name", "namespace"))
    return _dump(out)


def dump_yaml(obj: Any) -> bytes:
    """Any plain data as YAML, every mapping's keys sorted."""
    return _dump(_sorted(obj))


def dump_json(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, two-space indent, UTF-8, trailing newline."""
    text = json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")
