"""Strict loading of YAML layer documents, and plain loading of vendored YAML.

Loading walks the parser's event stream rather than calling `safe_load`, so that it
records the line of every value and refuses what `safe_load` silently accepts:
duplicate keys, aliases (billion laughs), `on`/`no` read as booleans, timestamps,
Python tags (DESIGN.md, "Pitfalls known upstream" / YAML). Walking events instead of
composed nodes also keeps the depth and node budgets ahead of any recursion.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from compiler.errors import InputError
from compiler.model import DocPath
from compiler.yamlio import tags
from compiler.yamlio.text import decode, path_prefix, quoted

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # no libyaml: the pure class behaves the same, only slower
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

_SCALAR_TAGS = frozenset({tags.STR, tags.INT, tags.FLOAT, tags.BOOL, tags.NULL})
_QUOTE_IT = {
    "tag:yaml.org,2002:timestamp": "a timestamp",
    "tag:yaml.org,2002:binary": "binary",
    "tag:yaml.org,2002:value": "the YAML 1.1 value key",
}
_KIND = {
    tags.INT: "an int",
    tags.FLOAT: "a float",
    tags.BOOL: "a boolean",
    tags.NULL: "null",
    tags.MERGE: "a merge",
}
_ALIASES = "aliases and anchors are not allowed in layer documents; write the values out"
# Plain numbers that YAML 1.1 (this loader, Go's yaml.v2) and YAML 1.2 read differently:
# 0755 is 493 (octal) or 755, and 0b1, 1:30 (base 60) and 1_000 are numbers or strings.
# Hexadecimal means the same to both.
_AMBIGUOUS_NUMBER = re.compile(r"[-+]?0[0-9bB_]|.*[_:]")
# Plain scalars that YAML 1.1 (this loader) reads as strings and YAML 1.2 (kubectl, Argo
# CD, Go's yaml.v3) as numbers: 1e3, 1.5E3, 0o17 (issue 16). Refused, not guessed.
_YAML12_ONLY_NUMBER = re.compile(r"[-+]?(0o[0-7]+|(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)")


@dataclass(frozen=True)
class LoadedDocument:
    value: Any  # plain data: dict/list/str/int/float/bool/None
    lines: Mapping[DocPath, int]  # 1-based line of every node's value, root = ()
    # The line of each map entry's key: where a block map or list value starts on the
    # next line, what a message about the key itself (unknown, misnamed) points at.
    key_lines: Mapping[DocPath, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------- load


def load_layer_yaml(
    data: bytes, source: str, *, max_nodes: int = 1_000_000, max_depth: int = 200
) -> LoadedDocument:
    """One YAML layer document; every refusal is an InputError at `source:line`."""
    text = decode(data, source)
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


def load_vendored_yaml(data: bytes) -> Any:
    """Vendored YAML (the CRDs under policies/schemas/), not a layer: the safe loader
    as it is, without the layer rules, which upstream files need not follow."""
    return yaml.load(data, Loader=_BaseLoader)


@dataclass
class _Open:
    """A mapping or sequence whose end event has not come yet."""

    path: DocPath
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
        self.lines: dict[DocPath, int] = {}
        self.key_lines: dict[DocPath, int] = {}
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
        return LoadedDocument(value=self.root, lines=self.lines, key_lines=self.key_lines)

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
            if value is None and event.value == "" and event.tag is None:
                if parent is None:
                    value = {}  # a document with no content, such as `---` alone
                else:
                    raise self.empty_value(parent, path, line)
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(self.open) >= self.max_depth:
                raise self.error(line, path, f"nested deeper than {self.max_depth} levels")
            tag = event.tag
            is_map = isinstance(event, yaml.MappingStartEvent)
            if tag not in (None, "!", tags.MAP if is_map else tags.SEQ):
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
        if tag == tags.MERGE:
            raise self.error(line, parent.path, f"merge keys (<<): {_ALIASES}")
        if tag != tags.STR:
            kind = _KIND.get(tag) or _QUOTE_IT.get(tag) or f"tag {tag}"
            raise self.error(
                line,
                parent.path,
                f"key {quoted(event.value)} is read as {kind}; keys must be strings, quote it",
            )
        key = event.value
        self.refuse_bool_word(event, line, (*parent.path, key))
        first = parent.key_lines.get(key)
        if first is not None:
            raise self.error(
                line, (*parent.path, key), f"duplicate key {key!r} (first at line {first})"
            )
        parent.key_lines[key] = line
        self.key_lines[(*parent.path, key)] = line
        parent.key = key

    def scalar(self, event: yaml.ScalarEvent, line: int, path: DocPath) -> Any:
        tag = self.tag_of(event)
        explicit = event.tag not in (None, "!")
        if tag in _QUOTE_IT:
            raise self.error(line, path, f"{quoted(event.value)} is {_QUOTE_IT[tag]}; quote it")
        if tag not in _SCALAR_TAGS:
            if explicit:
                raise self.error(line, path, f"tag {tag} is not allowed")
            raise self.error(
                line, path, f"{quoted(event.value)} is read as {_KIND.get(tag, tag)}; quote it"
            )
        self.refuse_bool_word(event, line, path)
        if tag == tags.STR:
            self.refuse_yaml12_number(event, line, path)
            return event.value
        node = yaml.ScalarNode(tag, event.value)
        try:
            value = self.loader.yaml_constructors[tag](self.loader, node)
        except (ValueError, KeyError):
            raise self.error(line, path, f"{quoted(event.value)} is not {_KIND[tag]}") from None
        if isinstance(value, float) and not math.isfinite(value):
            # JSON and the merge cannot carry NaN or infinities; refused as in load_layer_json.
            raise self.error(line, path, f"{quoted(event.value)} is not a finite number; quote it")
        if not explicit and tag in (tags.INT, tags.FLOAT) and _AMBIGUOUS_NUMBER.match(event.value):
            raise self.error(
                line,
                path,
                f"{quoted(event.value)} is read as {value} by YAML 1.1 and differently by "
                "other readers; quote it, or write the number in decimal",
            )
        return value

    def tag_of(self, event: yaml.ScalarEvent) -> str:
        if event.tag is None:
            tag: str = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
            return tag
        # `!` is the YAML non-specific tag: a string (PyYAML would resolve it as plain).
        return tags.STR if event.tag == "!" else event.tag

    def refuse_bool_word(self, event: yaml.ScalarEvent, line: int, path: DocPath) -> None:
        plain = event.style in (None, "")  # libyaml says "", the pure parser None
        if plain and event.tag is None and event.value.lower() in tags.YAML11_BOOL_WORDS:
            raise self.error(
                line,
                path,
                f"{event.value!r} is read as a boolean by YAML 1.1; "
                "write true/false, or quote it if you meant the string",
            )

    def empty_value(self, parent: _Open, path: DocPath, line: int) -> InputError:
        """An implicit null: in a merge patch it deletes, and it is most often a key whose
        lines below lost their indentation (issue 17). Only an explicit null deletes."""
        if isinstance(parent.value, dict) and parent.key is not None:
            line = parent.key_lines.get(parent.key, line)
        return self.error(
            line,
            path,
            "empty value: it would delete this key from the layers below; write `null` "
            "(or `~`) to delete it, or indent the lines below if they belong to it",
        )

    def refuse_yaml12_number(self, event: yaml.ScalarEvent, line: int, path: DocPath) -> None:
        plain = event.style in (None, "") and event.tag is None
        if not plain or not _YAML12_ONLY_NUMBER.fullmatch(event.value):
            return
        text = event.value
        digits = text.lstrip("+-")
        number: float = int(digits[2:], 8) if digits.startswith("0o") else float(digits)
        number = -number if text.startswith("-") else number
        raise self.error(
            line,
            path,
            f"{text} is the string {text!r} in YAML 1.1 and the number {number:g} in YAML 1.2 "
            "(kubectl, Argo CD); quote it for the string, or write the number in decimal",
        )

    def child_path(self) -> DocPath:
        if not self.open:
            return ()
        parent = self.open[-1]
        if isinstance(parent.value, list):
            return (*parent.path, len(parent.value))
        return (*parent.path, parent.key) if parent.key is not None else parent.path

    def error(self, line: int, path: DocPath, message: str) -> InputError:
        message = message.replace("tag:yaml.org,2002:", "!!")  # as the user wrote it
        return InputError(f"{self.source}:{line}: {path_prefix(path)}{message}")
