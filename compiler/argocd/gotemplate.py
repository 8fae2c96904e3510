"""The part of Go's text/template that our ApplicationSet templates use, as Argo CD runs it.

Argo CD renders each string of an ApplicationSet template with Go's text/template
(plus Sprig functions) when `goTemplate: true`; with `missingkey=error` a field
that a generator's parameters lack fails the whole Application
(applicationset/utils/utils.go, `RenderTemplateParams`). We evaluate the same
strings to know, before the merge, which Applications the controller makes.

Supported: `{{ .a.b }}` field chains, `{{ fn .a }}` for the functions listed in
`_FUNCTIONS`, and the `{{-`/`-}}` trim markers. Anything else is reported as
unsupported rather than guessed at: a template the compiler cannot evaluate
is one it cannot vouch for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_FIELD = re.compile(r"^(\.[A-Za-z_][A-Za-z0-9_]*)+$|^\.$")


class TemplateError(Exception):
    """A template Argo CD would fail on (a missing key) or that we cannot evaluate."""

    def __init__(self, message: str, *, missing: str = "") -> None:
        super().__init__(message)
        self.missing = missing  # the field chain whose key is absent, e.g. `.cluster.name`


def _to_json(value: Any) -> str:
    # Go's encoding/json: map keys sorted, compact, and <, >, & escaped for HTML.
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def sanitize_name(value: Any) -> str:
    """Argo CD's `normalize` (utils.SanitizeName): a DNS-1123 subdomain from any string."""
    name = re.sub(r"[^-a-z0-9.]", "-", str(value).lower())[:253]
    return name.strip("-.")


_FUNCTIONS: Mapping[str, Callable[[Any], Any]] = {
    "toJson": _to_json,
    "lower": lambda v: str(v).lower(),
    "upper": lambda v: str(v).upper(),
    "normalize": sanitize_name,
}


def go_string(value: Any) -> str:
    """How text/template prints a value: fmt's %v for the JSON types a generator yields."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<no value>"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # JSON numbers arrive as float64 in Go
    if isinstance(value, Mapping):
        inner = " ".join(f"{k}:{go_string(v)}" for k, v in sorted(value.items()))
        return f"map[{inner}]"
    if isinstance(value, list):
        return "[" + " ".join(go_string(v) for v in value) + "]"
    return str(value)


def _field(chain: str, params: Mapping[str, Any]) -> Any:
    value: Any = params
    if chain == ".":
        return value
    walked = ""
    for key in chain.split(".")[1:]:
        walked += f".{key}"
        if not isinstance(value, Mapping):
            raise TemplateError(f"{walked}: {go_string(value)!r} has no field {key!r}")
        if key not in value:
            raise TemplateError(f'map has no entry for key "{key}" ({walked})', missing=walked)
        value = value[key]
    return value


def _pipeline(text: str, params: Mapping[str, Any]) -> Any:
    words = text.split()
    if len(words) == 1 and _FIELD.match(words[0]):
        return _field(words[0], params)
    if len(words) == 2 and words[0] in _FUNCTIONS and _FIELD.match(words[1]):
        return _FUNCTIONS[words[0]](_field(words[1], params))
    raise TemplateError(f"unsupported template action {{{{{text}}}}}")


def render_string(template: str, params: Mapping[str, Any]) -> str:
    """One string of a template, rendered as text/template with missingkey=error does."""
    out: list[str] = []
    last = 0
    for found in _ACTION.finditer(template):
        literal = template[last : found.start()]
        out.append(literal.rstrip() if found.group(1) else literal)
        out.append(go_string(_pipeline(found.group(2).strip(), params)))
        last = found.end()
        if found.group(3):
            rest = template[last:]
            last += len(rest) - len(rest.lstrip())
    out.append(template[last:])
    return "".join(out)


def render_value(template: Any, params: Mapping[str, Any], at: str = "template") -> Any:
    """Every string in a template structure rendered (Argo CD walks the struct the same way);
    an error names the template field it is in (`at`)."""
    if isinstance(template, str):
        if "{{" not in template:
            return template
        try:
            return render_string(template, params)
        except TemplateError as err:
            raise TemplateError(f"{at}: {err}", missing=err.missing) from None
    if isinstance(template, Mapping):
        return {k: render_value(v, params, f"{at}.{k}") for k, v in template.items()}
    if isinstance(template, list):
        return [render_value(v, params, f"{at}[{i}]") for i, v in enumerate(template)]
    return template
