"""Quotas and limits as the API server reads them: Kubernetes quantities within range.

The grammar is k8s.io/apimachinery `resource.Quantity`: an optional sign, digits
with an optional fraction, then a binary suffix (Ki..Ei), a decimal one
(n u m "" k M G T P E) or a decimal exponent (`e`/`E`, an integer).

The range: at most 2^63-1 of the base unit (cores, bytes, objects), and no
non-zero amount under 1n. `ParseQuantity` does not refuse what lies outside: it
rounds anything under 1n up to 1n and silently clamps anything over 2^63-1 (its
int64 limit, also the largest value inf.Dec is canonicalised to), so `1E+125` or
a 126-digit number becomes a quota of 9223372036854775807, which is no quota at
all. An exponent is parsed as int64 and then cast to int32, so one beyond int32
is read as another number, and one beyond int64 is refused: both are refused here.

An environment that `policies/quotas.cue` gives no ceiling of its own gets the
project's default ceiling (`policy.defaultQuotaCeiling`), compared exactly.
Amounts are `decimal.Decimal`, never floats: a float cannot hold 16000m exactly.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact
from typing import Any

from compiler.model import DocPath
from compiler.policy.guards.base import GuardContext, GuardFinding, Rule

_QUANTITY_DOC = "https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/"
_QUOTA_DOC = "https://kubernetes.io/docs/concepts/policy/resource-quotas/"

RULES: tuple[Rule, ...] = (
    Rule(
        "quantity-invalid",
        "error",
        "Every quota and limit value is a Kubernetes quantity (apimachinery's grammar: "
        "digits, optional fraction, a suffix Ki..Ei or n u m k M G T P E, or an integer "
        "exponent).",
        "The API server refuses the object (`1e1.5`, `.inf`, `.nan`), so Argo CD never syncs it; "
        "an exponent past int32 is read as another number.",
        _QUANTITY_DOC,
        'quotas: {team-quota: {cpu: "1500m"}}   # not 1e1.5, not .inf',
        waivable=False,
    ),
    Rule(
        "quantity-negative",
        "error",
        "No quota or limit value is negative.",
        "A negative quota or limit admits no workload, or breaks the LimitRange's min <= max.",
        _QUANTITY_DOC,
        'limits: {min: {cpu: "100m"}}   # not -100m',
        waivable=False,
    ),
    Rule(
        "quantity-out-of-range",
        "error",
        "Every quota and limit value is at most 2^63-1 of its base unit and, unless zero, "
        "at least 1n.",
        "Kubernetes silently clamps a larger value to 2^63-1 (an unlimited quota: `1E+125` "
        "passes a ceiling check that compares what was written) and rounds a smaller one up "
        "to 1n: the cluster enforces another number than the config says.",
        _QUANTITY_DOC,
        "quotas: {team-quota: {memory: 64Gi}}   # not 1E+125",
        waivable=False,
    ),
    Rule(
        "quota-default-ceiling",
        "error",
        "In an environment that policies/quotas.cue gives no ceiling, no quota is over the "
        "project's default ceiling (`policy.defaultQuotaCeiling`: cpu 16, memory 32Gi, pods "
        "200 unless set); `requests.cpu`, `requests.memory` and `count/pods` count as cpu, "
        "memory and pods.",
        "A new environment (stage, perf) would otherwise have no ceiling at all: a quota "
        "promising capacity the cluster does not have lets one namespace starve the others.",
        _QUOTA_DOC,
        'quotas: {stage-quota: {cpu: "8"}}   # or give env stage a ceiling in policies/quotas.cue',
    ),
)

# The environments policies/quotas.cue gives a ceiling of their own (`_quotaCeilings`);
# tests/policy/guards/test_quantities.py checks that this stays in step with the file.
CUE_CEILING_ENVS = frozenset({"dev", "test", "prod"})

# ResourceQuota names that count against one ceiling (the quota docs: `cpu` is
# `requests.cpu`, `memory` is `requests.memory`; `count/pods` counts pods).
CEILING_ALIASES: Mapping[str, str] = {
    "cpu": "cpu",
    "requests.cpu": "cpu",
    "memory": "memory",
    "requests.memory": "memory",
    "pods": "pods",
    "count/pods": "pods",
}

MAX_AMOUNT = Decimal(2**63 - 1)  # base units: apimachinery's int64 limit
MIN_AMOUNT = Decimal("1e-9")  # 1n: the smallest amount apimachinery keeps
_MAX_EXPONENT = 2**31 - 1  # apimachinery casts the parsed exponent to int32

_DECIMAL_SUFFIX = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12}
_DECIMAL_SUFFIX |= {"P": 15, "E": 18}
_BINARY_SUFFIX = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_GRAMMAR = re.compile(
    r"([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:[eE]([+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?"
)


@dataclass(frozen=True)
class Quantity:
    """A parsed quantity: its exact amount in base units, or why it is refused."""

    amount: Decimal | None
    problem: str = ""  # "invalid", "negative" or "out-of-range"; "" when fine
    detail: str = ""


def parse_quantity(value: Any) -> Quantity:
    """`value` (a DSL string, int or float) as apimachinery reads it, range included.

    A fleet repeats a few quantities ("2", "4Gi") across every namespace, and each is
    read by the guards and the CUE input: a short string is parsed once a process.
    """
    if type(value) is str and len(value) <= _CACHED_LENGTH:
        return _parse_short(value)
    return _parse(value)


_CACHED_LENGTH = 64


@functools.lru_cache(maxsize=4096)
def _parse_short(value: str) -> Quantity:
    return _parse(value)


def _parse(value: Any) -> Quantity:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return Quantity(None, "invalid", "is not a string or a number")
    if isinstance(value, int):
        if value.bit_length() > 64:  # before any conversion: a 10,000-digit int is cheap here
            return _sized(Decimal(1 if value > 0 else -1) * (MAX_AMOUNT + 1))
        return _sized(Decimal(value))
    # A float is the author's number as YAML read it; its repr is what render writes.
    text = repr(value) if isinstance(value, float) else value
    match = _GRAMMAR.fullmatch(text)
    if match is None:
        return Quantity(None, "invalid", "is not a Kubernetes quantity")
    sign, number, exponent, suffix = match.groups()
    mantissa = Decimal(sign + number)  # exact: the constructor never rounds
    if exponent is not None:
        if len(exponent.lstrip("+-")) > 12 or abs(int(exponent)) > _MAX_EXPONENT:
            return Quantity(None, "invalid", "has an exponent Kubernetes cannot read")
        return _scaled(mantissa, int(exponent), 0)
    if suffix in _BINARY_SUFFIX:
        return _scaled(mantissa, 0, _BINARY_SUFFIX[suffix])
    return _scaled(mantissa, _DECIMAL_SUFFIX[suffix or ""], 0)


def _scaled(mantissa: Decimal, power_of_ten: int, power_of_two: int) -> Quantity:
    if mantissa.is_zero():
        return Quantity(Decimal(0))
    # Decided on the exponent alone when far out, so `1e2000000000` costs nothing.
    magnitude = mantissa.adjusted() + power_of_ten + (power_of_two * 31 + 99) // 100
    if magnitude > 20:
        return _sized((MAX_AMOUNT + 1).copy_sign(mantissa))
    if magnitude < -12:
        return _sized((MIN_AMOUNT / 10).copy_sign(mantissa))
    exact = Context(prec=len(mantissa.as_tuple().digits) + 40, traps=[Inexact])
    amount = exact.multiply(exact.scaleb(mantissa, power_of_ten), Decimal(2**power_of_two))
    return _sized(amount)


def _sized(amount: Decimal) -> Quantity:
    if amount < 0:
        return Quantity(amount, "negative", "is negative")
    if amount > MAX_AMOUNT:
        return Quantity(amount, "out-of-range", "is over 2^63-1 (Kubernetes clamps it)")
    if 0 < amount < MIN_AMOUNT:
        return Quantity(amount, "out-of-range", "is under 1n (Kubernetes rounds it up)")
    return Quantity(amount)


def shown(value: Any) -> str:
    """A quantity as the message quotes it: as written, a long one cut short."""
    text = repr(value) if isinstance(value, float) else value if isinstance(value, str) else ""
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value) if value.bit_length() <= 64 else f"a {value.bit_length()}-bit number"
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"


def check(context: GuardContext) -> Iterator[GuardFinding]:
    for ns_name, ns in sorted((context.config.get("namespaces") or {}).items()):
        ns = ns or {}
        for quota_name, hard in sorted((ns.get("quotas") or {}).items()):
            base: DocPath = ("namespaces", ns_name, "quotas", quota_name)
            what = f"quota {quota_name} in namespace {ns_name}"
            for resource, value in sorted((hard or {}).items()):
                path = (*base, resource)
                parsed = parse_quantity(value)
                if parsed.problem:
                    yield _refused(path, what, resource, value, parsed)
                elif parsed.amount is not None:
                    yield from _over_default_ceiling(context, path, what, resource, value, parsed)
        for kind, values in sorted((ns.get("limits") or {}).items()):
            what = f"the LimitRange of namespace {ns_name} ({kind})"
            for resource, value in sorted((values or {}).items()):
                parsed = parse_quantity(value)
                if parsed.problem:
                    path = ("namespaces", ns_name, "limits", kind, resource)
                    yield _refused(path, what, resource, value, parsed)


def _refused(path: DocPath, what: str, resource: str, value: Any, q: Quantity) -> GuardFinding:
    fix = {
        "invalid": 'write a quantity such as "500m", "4", "8Gi" or "1e3"',
        "negative": "a quota or limit is never negative",
        "out-of-range": "write the amount meant, within 1n..2^63-1 of the base unit",
    }[q.problem]
    return GuardFinding(
        path,
        f"quantity-{q.problem}",
        f"{what} sets {resource} {shown(value)}, which {q.detail}; {fix}",
    )


def _over_default_ceiling(
    context: GuardContext, path: DocPath, what: str, resource: str, value: Any, q: Quantity
) -> Iterator[GuardFinding]:
    env = context.facts.env
    limited = CEILING_ALIASES.get(resource)
    if env in CUE_CEILING_ENVS or limited is None or q.amount is None:
        return
    written = context.settings.default_quota_ceiling.get(limited)
    ceiling = parse_quantity(written) if written is not None else None
    if ceiling is None or ceiling.amount is None or ceiling.problem:
        return  # the project file's own values are checked when it is loaded
    if q.amount > ceiling.amount:
        yield GuardFinding(
            path,
            "quota-default-ceiling",
            f"{what}: {resource} {shown(value)} is over the default ceiling {written} for env "
            f"{env}; lower it, or give env {env} a ceiling of its own in policies/quotas.cue",
        )
