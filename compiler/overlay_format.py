"""`format`: the canonical text of one overlay file, every comment kept.

Only what the strict loader (compiler.yamlio) accepts is formatted, and the result is
checked against it. ruamel.yaml's round-trip emitter writes the text and the comments. Its
loader is not used for them: it hangs a comment line on the node before it, so sorting
would move it with the wrong key. Comments come from PyYAML's token stream instead: a
comment line belongs to the entry below it, an end-of-line comment to its line's entry.
"""

from __future__ import annotations

import io
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.emitter import RoundTripEmitter
from ruamel.yaml.error import CommentMark
from ruamel.yaml.events import ScalarEvent
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.tokens import CommentToken

from compiler import yamlio
from compiler.errors import EXIT_INTERNAL, CompilerError, InputError
from compiler.model import DocPath
from compiler.yamlio import load_layer_yaml
from compiler.yamlio.dumper import GO_OR_YAML12_NUMBER, SINGLE_LETTER_BOOL
from compiler.yamlio.tags import YAML11_BOOL_WORDS

_BREAK = re.compile("[\n\x85\u2028\u2029]")  # PyYAML's line breaks, once \r is normalised
_COMMENT = re.compile("#[^\n\x85\u2028\u2029]*")
_STR = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()  # PyYAML's YAML 1.1 implicit types


class FormatterError(CompilerError):
    """The canonical text would change the file's data or comments: a bug; nothing is written."""

    exit_code = EXIT_INTERNAL


def format_overlay(data: bytes, source: str) -> bytes:
    """The canonical form of one overlay document; InputError if the strict loader refuses it."""
    document = load_layer_yaml(data, source)
    text = data.decode("utf-8").removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    result = _render(text, document.value, source)
    # The safety net: a formatter bug must never rewrite what a file means.
    try:
        again = load_layer_yaml(result.encode("utf-8"), source)
    except InputError as err:
        raise _bug(source, f"the canonical text does not load ({err})") from None
    # Canonical JSON tells 1 from 1.0 and True, which `==` does not.
    if yamlio.dump_json(again.value) != yamlio.dump_json(document.value):
        raise _bug(source, "the canonical text loads to different data")
    before, after = _place(text, document.value, source), _place(result, again.value, source)
    if _owners(before) != _owners(after):
        raise _bug(source, "the canonical text lost a comment or moved one to another key")
    if _render(result, again.value, source) != result:
        raise _bug(source, "formatting the canonical text changes it again")
    return result.encode("utf-8")


def _bug(source: str, problem: str) -> FormatterError:
    return FormatterError(f"{source}: internal error in format, file left unchanged: {problem}")


# -------------------------------------------------------------------- where comments belong


class _Comment(NamedTuple):
    line: int  # 0-based, as PyYAML's marks count
    text: str  # from `#` to the end of the line, trailing blanks dropped
    eol: bool  # something precedes it on its line


class _Entry(NamedTuple):
    path: DocPath
    line: int  # of the key, or of a sequence item's dash
    is_key: bool
    end: int  # the line where its value ends


@dataclass
class _Notes:
    above: list[str] = field(default_factory=list)
    eol: str | None = None


@dataclass
class _Scanned:
    comments: list[_Comment]
    dashes: list[tuple[int, int]]  # the offset and line of every block sequence dash (`-`)
    starts: set[int] = field(default_factory=set)  # lines of an explicit `---`
    end: int | None = None  # the line of the first `...`


def _scan(text: str) -> _Scanned:
    """The comments, the block sequence dashes and the document markers."""
    found: list[re.Match[str]] = []
    scanned = _Scanned([], [])
    dashes = scanned.dashes
    covered = 0  # everything before this offset is inside a token
    for token in yaml.scan(text, Loader=yaml.SafeLoader):
        start, end = token.start_mark.index, token.end_mark.index
        if start > covered:  # between tokens there is only blank space and comments
            found.extend(_COMMENT.finditer(text, covered, start))
        if isinstance(token, yaml.BlockEntryToken):
            dashes.append((start, token.start_mark.line))
        if isinstance(token, yaml.DocumentStartToken):
            scanned.starts.add(token.start_mark.line)
        if isinstance(token, yaml.DocumentEndToken) and scanned.end is None:
            scanned.end = token.start_mark.line
        if isinstance(token, yaml.ScalarToken) and token.style in ("|", ">"):
            # The header line `key: |-  # note` is part of the block scalar's token.
            header = _BREAK.search(text, start)
            found.extend(_COMMENT.finditer(text, start, header.start() if header else end))
        covered = max(covered, end)
    starts = [0, *(m.end() for m in _BREAK.finditer(text))]
    for match in found:
        line = bisect_right(starts, match.start()) - 1
        eol = bool(text[starts[line] : match.start()].strip(" \t"))
        scanned.comments.append(_Comment(line, match.group().rstrip(" \t"), eol))
    return scanned


def _entries(root: yaml.Node | None, value: Any, dashes: list[tuple[int, int]]) -> list[_Entry]:
    """Every map key and sequence item, in document order."""
    entries: list[_Entry] = []

    def walk(node: yaml.Node, value: Any, path: DocPath) -> None:
        # Node and value agree (the strict loader read the same text); the isinstance
        # checks keep a libyaml/PyYAML disagreement for the safety net to report.
        if isinstance(node, yaml.MappingNode) and isinstance(value, dict):
            for key, child in node.value:
                if key.value in value:
                    entries.append(
                        _Entry((*path, key.value), key.start_mark.line, True, child.end_mark.line)
                    )
                    walk(child, value[key.value], (*path, key.value))
        elif isinstance(node, yaml.SequenceNode) and isinstance(value, list):
            for index, (child, item) in enumerate(zip(node.value, value, strict=False)):
                # The dash's line: an item may start on the line after its `-`.
                dash = bisect_left(dashes, (child.start_mark.index, -1)) - 1
                block = dash >= 0 and not node.flow_style
                line = dashes[dash][1] if block else child.start_mark.line
                entries.append(_Entry((*path, index), line, False, child.end_mark.line))
                walk(child, item, (*path, index))

    if root is not None:
        walk(root, value, ())
    return sorted(entries, key=lambda entry: entry.line)  # stable: in order already


def _attach(
    scanned: _Scanned, entries: list[_Entry], root_line: int | None
) -> tuple[list[str], bool, dict[DocPath, _Notes], list[str]]:
    """The header ("" for a blank line), whether a blank line ended it, each entry's
    comments, the footer."""
    notes = {entry.path: _Notes() for entry in entries}
    on_line: dict[int, list[_Entry]] = {}
    for entry in entries:
        on_line.setdefault(entry.line, []).append(entry)
    lines = [entry.line for entry in entries]
    top: list[_Comment] = []
    footer: list[str] = []
    for comment in scanned.comments:
        after = bisect_right(lines, comment.line)  # entries[after] is the first one below
        if scanned.end is not None and comment.line >= scanned.end:
            footer.append(comment.text)  # on or after `...`: about the document's end
        elif comment.eol and after and comment.line not in scanned.starts:
            # On an entry's line: about the outermost key whose value ends on it
            # (`a: {k: v}  # c` is about `a`, `- name: x  # c` about `name`), else the
            # line's last key (`a: {b: 1, # c` is about `b`: sorting may move it), else
            # the line's last entry (`- x  # c`). On a line where no entry starts
            # (`]  # c`, the `: value` of a `? key`): the entry above.
            here = on_line.get(comment.line) or [entries[after - 1]]
            keys = [entry for entry in here if entry.is_key]
            ended = [entry for entry in keys if entry.end == comment.line]
            note = notes[ended[0].path if ended else (keys or here)[-1].path]
            if note.eol is None:
                note.eol = comment.text
            else:
                note.above.append(comment.text)
        elif root_line is None or comment.line < root_line:
            top.append(comment)
        elif after < len(entries):
            notes[entries[after].path].above.append(comment.text)
        else:
            footer.append(comment.text)
    # The comments at the top up to the last blank line (or on a `---` line) are the
    # file's header and stay there, whatever key sorts first; those right above the
    # first entry are about it, like any comment above a key (issue 16).
    follows = [c.line for c in top[1:]] + [root_line or 0]
    gaps = [i + 1 for i, c in enumerate(top) if follows[i] > c.line + 1] if entries else []
    marked = [i + 1 for i, c in enumerate(top) if c.line in scanned.starts]
    split = max([*gaps, *marked], default=0) if entries else len(top)
    header: list[str] = []
    for i, comment in enumerate(top[:split]):
        if i and comment.line > top[i - 1].line + 1:
            header.append("")  # a blank line inside the header stays
        header.append(comment.text)
    if entries:
        notes[entries[0].path].above[:0] = [c.text for c in top[split:]]
    return header, bool(gaps or marked), notes, footer


def _hoist(value: Any, path: DocPath, notes: dict[DocPath, _Notes]) -> None:
    """Move the comments that ruamel cannot write where they are, children first.

    ruamel writes the end-of-line comment of a literal block after the block's text: it
    goes above its entry. A sequence item holding a map or a list shares its dash's line
    with its first entry (`- a: 1`, `- - x`): that entry's comment lines go above the
    dash, and so does the item's own end-of-line comment.
    """
    if not isinstance(value, (dict, list)):
        return
    for key, child in value.items() if isinstance(value, dict) else enumerate(value):
        here = (*path, key)
        _hoist(child, here, notes)
        note = notes.setdefault(here, _Notes())
        dash_line = isinstance(value, list) and isinstance(child, (dict, list)) and bool(child)
        literal = isinstance(child, str) and _literal_fits(child)
        if note.eol is not None and (dash_line or literal):
            note.above.append(note.eol)
            note.eol = None
        if dash_line:
            first = notes.get((*here, min(child) if isinstance(child, dict) else 0))
            if first is not None:
                note.above.extend(first.above)
                first.above = []


# ---------------------------------------------------------------------------------- writing


def _plain_is_string(text: str) -> bool:
    """Whether YAML 1.1, YAML 1.2, Go's yaml.v2 and our strict loader all read it as itself."""
    if _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) != _STR:
        return False  # null, bool, int, float, timestamp, `<<`, `=` for YAML 1.1
    if GO_OR_YAML12_NUMBER.fullmatch(text.replace("_", "")):
        return False
    # y/n for Go's yaml.v2; yEs, oN in any case for the strict loader.
    return text not in SINGLE_LETTER_BOOL and text.lower() not in YAML11_BOOL_WORDS


def _literal_fits(text: str) -> bool:
    # A literal block holds printable text only; \r and the Unicode breaks would be read
    # back as \n, so such strings stay double-quoted with escapes.
    # A line that starts with a tab cannot open a block (YAML reads the tab as
    # indentation, and indentation is spaces only): double quotes with \t (issue 16).
    if any(line.startswith("\t") for line in text.split("\n")):
        return False
    return "\n" in text and all(ch in "\n\t" or ch.isprintable() for ch in text)


class _Representer(RoundTripRepresenter):
    def represent_str(self, data: str) -> Any:
        style = "|" if _literal_fits(data) else None if _plain_is_string(data) else '"'
        return self.represent_scalar(_STR, data, style=style)

    def represent_none(self, data: Any) -> Any:
        return self.represent_scalar("tag:yaml.org,2002:null", "null")  # `null` deletes a key

    def represent_float(self, data: float) -> Any:
        # As PyYAML writes it: YAML 1.1 needs the dot in 1.0e+20 (ruamel writes 1e+20).
        text = repr(data).lower()
        if "." not in text and "e" in text:
            text = text.replace("e", ".0e", 1)
        return self.represent_scalar("tag:yaml.org,2002:float", text)


_Representer.add_representer(str, _Representer.represent_str)
_Representer.add_representer(type(None), _Representer.represent_none)
_Representer.add_representer(float, _Representer.represent_float)


class _Emitter(RoundTripEmitter):
    # ruamel writes keys of 123+ characters as `? key`; Kubernetes label and annotation
    # keys reach 253+63 characters. YAML readers take simple keys up to 1024.
    MAX_SIMPLE_KEY_LENGTH = 512

    def check_simple_key(self) -> bool:
        # A key with a line break is then written double-quoted, its breaks escaped, on
        # one line; ruamel would write `? |-` and misplace the comments around it.
        if isinstance(self.event, ScalarEvent):
            return len(self.event.value) < self.MAX_SIMPLE_KEY_LENGTH
        return bool(super().check_simple_key())

    # ruamel 0.19 sets `no_newline` after a comment and a dash, and when a scalar or `{}`
    # follows, it is still set at the next item or key, which then lands on the same
    # line (`- a   - []`). Only the first entry of a collection may share a line.
    def expect_block_sequence_item(self, first: bool = False) -> None:
        if not first:
            self.no_newline = False
        super().expect_block_sequence_item(first)

    def expect_block_mapping_key(self, first: Any = False) -> None:
        if not first:
            self.no_newline = False
        super().expect_block_mapping_key(first)

    def choose_scalar_style(self) -> Any:
        # ruamel falls back to single quotes where plain is impossible: one quoting style.
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def _build(value: Any, path: DocPath, notes: dict[DocPath, _Notes], column: int) -> Any:
    """ruamel's round-trip objects, keys sorted, comments stored as ruamel expects them."""
    if isinstance(value, dict):
        out: Any = CommentedMap()
        for key in sorted(value):
            out[key] = _build(value[key], (*path, key), notes, column + 2)
            note = notes.get((*path, key)) or _Notes()
            out.ca.items[key] = [None, _lines(note.above, column), _eol(note.eol), None]
        return out
    if isinstance(value, list):
        out = CommentedSeq()
        for index, item in enumerate(value):
            # indent(sequence=4, offset=2): a map's keys 2 past the dash, a list's dashes 4.
            step = 4 if isinstance(item, list) else 2
            out.append(_build(item, (*path, index), notes, column + step))
            note = notes.get((*path, index)) or _Notes()
            out.ca.items[index] = [_eol(note.eol), _lines(note.above, column)]
        return out
    return value


def _lines(texts: list[str], column: int) -> list[CommentToken] | None:
    return [CommentToken(text + "\n", CommentMark(column)) for text in texts] or None


def _eol(text: str | None) -> CommentToken | None:
    # The emitter puts one space before the token's text: two before `#`, as linters want.
    return None if text is None else CommentToken(" " + text, CommentMark(0))


class _Placed(NamedTuple):
    header: list[str]
    blank: bool  # a blank line ended the header
    notes: dict[DocPath, _Notes]
    footer: list[str]
    empty: bool  # no document


def _place(text: str, value: Any, source: str) -> _Placed:
    """Where every comment of `text` belongs, as the canonical text will write it."""
    try:
        scanned = _scan(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        entries = _entries(root, value, scanned.dashes)
    except yaml.YAMLError as err:  # the strict loader (libyaml) read it, PyYAML cannot
        raise _bug(source, f"PyYAML cannot re-read the file ({err})") from None
    root_line = None if root is None else root.start_mark.line
    header, blank, notes, footer = _attach(scanned, entries, root_line)
    _hoist(value, (), notes)
    return _Placed(header, blank, notes, footer, root is None)


def _owners(placed: _Placed) -> list[tuple[str, str]]:
    """Each comment with what it belongs to: the safety net compares these, so a comment
    that changed owner (not only one lost) stops the rewrite."""
    owned = [("header", c) for c in placed.header if c] + [("footer", c) for c in placed.footer]
    for path, note in placed.notes.items():
        where = ".".join(map(str, path))
        owned.extend((where, c) for c in [*note.above, *([note.eol] if note.eol else [])])
    return sorted(owned)


def _render(text: str, value: Any, source: str) -> str:
    header, blank, notes, footer, empty = _place(text, value, source)
    body = ""
    if not empty:
        writer = YAML(typ="rt", pure=True)
        writer.Representer = _Representer
        writer.Emitter = _Emitter
        writer.indent(mapping=2, sequence=4, offset=2)
        writer.width = 2**31 - 1  # never fold long strings
        stream = io.StringIO()
        writer.dump(_build(value, (), notes, 2 if isinstance(value, list) else 0), stream)
        body = stream.getvalue()
    if header and body and (blank or body.lstrip(" ").startswith("#")):
        header.append("")  # keeps the first entry's own comment out of the header next time
    return "".join(f"{line}\n" for line in header) + body + "".join(f"{c}\n" for c in footer)
