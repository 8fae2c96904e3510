"""Config values in the PR body render as their text only (issue 15, class 8).

The produced Markdown is parsed with a CommonMark parser (markdown-it-py, with
GFM's table rule): a hostile value must give only text and code tokens, the
body's structure (its token types, in order) must be that of the same body
with harmless values, and each value must show whole in one code span.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from compiler.publishing.markdown import MAX_CHARS, code, text
from compiler.publishing.prbody import ReviewContext, render_body
from compiler.publishing.publisher import rollback_intro
from compiler.publishing.treediff import ClusterDiff, FieldChange, ObjectChange, TreeDiff

HOSTILE = [
    "a``b ![x](https://evil.example/x.png) ``c",  # a run as long as the old delimiter
    "```` ![x](https://evil.example/x.png) ````",
    "`starts with a backtick ![x](https://evil.example/x.png)",
    "ends with a backtick <img src=x>`",
    " ` padded both ends ` ",
    "![x](https://evil.example/x.png)",
    "<img src=x onerror=alert(1)>",
    "<details><summary>open me</summary>",
    "[a](javascript:alert(1))",
    "[a]: https://evil.example/ref",
    "a | b <img src=x> | c",
    "a\\|<img src=x>|b",  # a backslash before a pipe
    "line\n<details>\n# heading\n|---|",
    "cr\r<img src=x>",
    "`" * 500 + "<img src=x>",  # a long run: cut, so no longer delimiter
    "*" * 400 + "_" * 400,
    "&lt;img src=x&gt; &#60;b&#62;",
    "https://evil.example/autolink www.evil.example",
]
BENIGN = "ok.value"  # not a plain word either: it takes the same code-span path
FORBIDDEN = {"image", "link_open", "html_inline", "html_block"}


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def _tokens(markdown: str) -> Iterator[Token]:
    for token in _parser().parse(markdown):
        yield token
        yield from token.children or ()


def _shown(value: str) -> str:
    """What a code span shows for `value`: one line, cut at MAX_CHARS."""
    one_line = value.replace("\r\n", "␤").replace("\r", "␤").replace("\n", "␤")
    return one_line if len(one_line) <= MAX_CHARS else one_line[: MAX_CHARS - 1] + "…"


@pytest.mark.parametrize("value", [*HOSTILE, "plain", "`", "``", " ", "a b", "|"])
@pytest.mark.parametrize("where", ["paragraph", "cell"])
def test_a_code_span_shows_exactly_its_value(value: str, where: str) -> None:
    if where == "cell":
        markdown = f"| a | b |\n|---|---|\n| x | {code(value, cell=True)} |\n"
    else:
        markdown = f"- item {code(value)} after\n"
    inline = [t for t in _tokens(markdown) if t.type not in ("inline",) and t.nesting == 0]
    codes = [t.content for t in inline if t.type == "code_inline"]
    assert codes == [_shown(value)], markdown
    markup = {t.type for t in inline} - {"text", "code_inline", "softbreak"}
    assert markup == set(), markdown  # no emphasis, link, image, HTML


@pytest.mark.parametrize(
    ("value", "expected"),
    [("prod-eks-1", "prod-eks-1"), ("ResourceQuota", "ResourceQuota"), ("a.b", "`a.b`"),
     ("www.evil.example", "`www.evil.example`"), ("x_y", "`x_y`"), ("", "")],
)  # fmt: skip
def test_plain_words_stay_plain_and_the_rest_is_code(value: str, expected: str) -> None:
    assert text(value) == expected


def _diff(value: str) -> TreeDiff:
    """A diff with `value` in every slot a config author or a tree can reach."""
    quota = ObjectChange(
        value, "f1", "ResourceQuota", f"ns/{value}", "changed",
        (FieldChange(f"metadata.annotations.{value}", value, f"{value}2", value),),
        security=True,
    )  # fmt: skip
    binding = ObjectChange(
        value, "f2", "RoleBinding", value, "added",
        (
            FieldChange("roleRef.kind", None, value),
            FieldChange("roleRef.name", None, value),
            FieldChange("subjects[0].kind", None, value),
            FieldChange("subjects[0].name", None, value),
        ),
        set_by=value, security=True,
    )  # fmt: skip
    other = ObjectChange(
        value, "f3", value, value, "changed", (FieldChange(value, value, 1, value),)
    )
    gone = ObjectChange(value, "f4", "ConfigMap", value, "removed", set_by=value)
    versions = (f"cluster/{value}@1", value)
    return TreeDiff(
        (
            ClusterDiff(value, "changed", (quota, binding, other, gone), versions, (value,)),
            ClusterDiff(f"{value}-gone", "removed", (), (value,), ()),
        ),
        (),
    )


def _body(value: str, limit: int = 65_536) -> str:
    diff = _diff(value)
    context = ReviewContext(
        title="Cluster config",
        trace_id="ms-test-git-e40",
        base=value,
        checks=["a check"],
        objects=3,
        diff_command=f"gitops-compiler diff --against {value}",
        intro=rollback_intro(diff),
    )
    return render_body(diff, context, limit=limit)


def _structure(markdown: str) -> list[str]:
    return [t.type for t in _tokens(markdown)]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_in_a_pr_body_render_as_their_text(value: str) -> None:
    body = _body(value)
    types = _structure(body)
    assert set(types) & FORBIDDEN == set(), body
    assert types == _structure(_body(BENIGN)), "a value changed the body's structure"
    codes = {t.content for t in _tokens(body) if t.type == "code_inline"}
    assert _shown(value) in codes and _shown(f"ns/{value}") in codes
    texts = " ".join(t.content for t in _tokens(body) if t.type == "text")
    for word in ("evil", "img", "javascript", "details", "&lt;", "&#60;"):
        assert word not in texts or word in _body(BENIGN), word


@pytest.mark.parametrize("value", ["<img src=x>", "`" * 40 + "<img src=x>"])
def test_a_body_cut_hard_never_cuts_inside_a_code_span(value: str) -> None:
    body = _body(value, limit=1500)
    assert len(body) <= 1500 and "Truncated" in body
    assert set(_structure(body)) & FORBIDDEN == set(), body
