"""Config values inside Markdown that GitHub renders: shown as their text, never as markup.

A PR body quotes names, paths, values and layers that a config author wrote;
rendered, a value that closes its code span early becomes an image from any
host, a link or inline HTML (issue 15, class 8). Every value goes through
`code` (an inline code span) or `text` (plain when it is a plain word, a code
span otherwise). The rules, from CommonMark 0.31 §6.1 (code spans) and the GFM
table extension:

- a code span ends at the first backtick run as long as its opener, so the
  delimiter is one backtick longer than the longest run in the value;
- one space is stripped from both ends of a span's content when both ends are
  spaces, so a value that starts or ends with a backtick or a space is padded
  with one space on each side (all-space values are shown as they are);
- line endings are parsed before inlines (a newline would end a table row, or
  start a block such as `<details>` or a heading), so they are replaced by ␤;
- in a table a `|` splits the cell even inside a code span; `\\|` does not
  (cmark-gfm and markdown-it both drop the backslash before the cell's inlines
  are parsed), so cells escape every `|`;
- a value is cut at MAX_CHARS, so a long backtick run cannot make a longer
  delimiter (nor a long name swell the body).
"""

from __future__ import annotations

import re

MAX_CHARS = 300
_BACKTICKS = re.compile(r"`+")
_LINE_ENDING = re.compile(r"\r\n|\r|\n")
# A word that no Markdown or GFM rule reads as markup: no punctuation that opens
# emphasis, links, HTML or entities, and no dot or colon (GFM's autolinks need one).
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def code(value: str, *, cell: bool = False) -> str:
    """`value` as an inline code span that shows exactly its text (one line, at most
    MAX_CHARS); `cell` for a GFM table cell. The empty value is the empty string."""
    if not value:
        return ""
    text = _LINE_ENDING.sub("␤", value)
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS - 1] + "…"
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    ends = text[0] + text[-1]
    pad = " " if ("`" in ends or " " in ends) and text.strip(" ") else ""
    if cell:
        text = text.replace("|", "\\|")
    return f"{fence}{pad}{text}{pad}{fence}"


def text(value: str, *, cell: bool = False) -> str:
    """`value` as it is when it is a plain word (cluster names, kinds), else as `code`."""
    return value if _PLAIN.fullmatch(value) else code(value, cell=cell)
