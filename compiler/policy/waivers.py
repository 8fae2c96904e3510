"""Waivers: exceptions to a rule, each with an owner, a reason and an expiry.

`policies/waivers.yaml` is a list of entries:

    - rule: rbac-sensitive-grant
      match: {cluster: "prod-*", namespace: monitoring, object: "roles.metrics-reader*"}
      reason: the metrics agent reads one named secret; ticket OPS-123
      owner: platform@example.com
      expires: "2027-03-31"   # quoted: the strict loader refuses bare timestamps

`match` patterns are shell-style (`fnmatch`): `cluster` against the cluster's
name, `namespace` against the namespace the finding is in, `object` against the
finding's path in the DSL (`namespaces.monitoring.access.readers`). A missing key
matches anything. A finding covered by a live waiver is reported as waived and
does not fail; past `expires` (the day itself is still live) the finding fails
again, with a `waiver-expired` finding beside it; a waiver that covers nothing
in the clusters it names is reported as stale. Rules whose entry says
`waivable: False` (cluster-admin bindings, `system:` subjects, ...) cannot be
waived: such a waiver is itself an error.
"""

from __future__ import annotations

import contextlib
import datetime
import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from compiler.errors import InputError
from compiler.policy import Violation
from compiler.policy.guards.base import Rule

WAIVERS_FILE = "waivers.yaml"
_KEYS = {"rule", "match", "reason", "owner", "expires"}
_MATCH_KEYS = {"cluster", "namespace", "object"}


@dataclass(frozen=True)
class Waiver:
    rule: str
    match: Mapping[str, str]
    reason: str
    owner: str
    expires: datetime.date
    where: str  # policies/waivers.yaml:3

    def covers(self, violation: Violation) -> bool:
        if violation.rule != self.rule:
            return False
        namespace = _namespace_of(violation.path)
        wanted = {"cluster": violation.cluster, "namespace": namespace, "object": violation.path}
        return all(
            fnmatch.fnmatchcase(wanted[key] or "", pattern) for key, pattern in self.match.items()
        )

    def names_cluster(self, cluster: str) -> bool:
        return fnmatch.fnmatchcase(cluster, self.match.get("cluster", "*"))

    def describe(self) -> str:
        return f"{self.where} (owner {self.owner}, expires {self.expires.isoformat()})"


@dataclass
class WaiverOutcome:
    failing: list[Violation] = field(default_factory=list)
    notices: list[Violation] = field(default_factory=list)  # waived findings, warnings


def load_waivers(policies_dir: Path, rules: Sequence[Rule]) -> tuple[Waiver, ...]:
    path = policies_dir / WAIVERS_FILE
    if not path.is_file():
        return ()
    from compiler.yamlio import load_layer_yaml

    shown = f"policies/{WAIVERS_FILE}"
    doc = load_layer_yaml(path.read_bytes(), shown)
    if doc.value is None:
        return ()
    if not isinstance(doc.value, list):
        raise InputError(f"{shown}:1: a list of waivers is expected")
    known = {r.id: r for r in rules}
    return tuple(
        _waiver(entry, f"{shown}:{doc.lines.get((i,), 1)}", known)
        for i, entry in enumerate(doc.value)
    )


def _waiver(entry: Any, where: str, known: Mapping[str, Rule]) -> Waiver:
    if not isinstance(entry, dict):
        raise InputError(f"{where}: a waiver is a map with {', '.join(sorted(_KEYS))}")
    missing, unknown = _KEYS - set(entry), set(entry) - _KEYS
    if missing or unknown:
        what = f"missing {sorted(missing)}" if missing else f"unknown keys {sorted(unknown)}"
        raise InputError(f"{where}: waiver {what}")
    match = entry["match"] or {}
    if not isinstance(match, dict) or set(match) - _MATCH_KEYS:
        raise InputError(f"{where}: match takes {', '.join(sorted(_MATCH_KEYS))}")
    expires = entry["expires"]
    if isinstance(expires, str):
        with contextlib.suppress(ValueError):
            expires = datetime.date.fromisoformat(expires)
    if not isinstance(expires, datetime.date):
        raise InputError(f"{where}: expires: a date YYYY-MM-DD, not {entry['expires']!r}")
    for key in ("rule", "reason", "owner"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise InputError(f"{where}: {key}: a non-empty string is required")
    return Waiver(
        rule=entry["rule"],
        match={k: str(v) for k, v in match.items()},
        reason=entry["reason"],
        owner=entry["owner"],
        expires=expires,
        where=where,
    )


def apply_waivers(
    violations: Iterable[Violation],
    waivers: Sequence[Waiver],
    *,
    rules: Mapping[str, Rule],
    clusters: Iterable[str],
    today: datetime.date,
) -> WaiverOutcome:
    """Split findings into those that fail the run and those only reported."""
    outcome = WaiverOutcome()
    for waiver in waivers:
        rule = rules.get(waiver.rule)
        if rule is None or not rule.waivable:
            why = "no such rule" if rule is None else "this rule cannot be waived"
            outcome.failing.append(
                Violation("(project)", waiver.where, "waiver-invalid", f"{waiver.rule}: {why}")
            )
    usable = [w for w in waivers if w.rule in rules and rules[w.rule].waivable]
    used: set[int] = set()
    for violation in violations:
        if violation.severity != "error":
            outcome.notices.append(violation)
            continue
        covering = [i for i, w in enumerate(usable) if w.covers(violation)]
        used.update(covering)
        live = [usable[i] for i in covering if usable[i].expires >= today]
        if live:
            outcome.notices.append(replace(violation, severity="waived", waiver=live[0].describe()))
            continue
        outcome.failing.append(violation)
        for i in covering:
            outcome.failing.append(_expired(violation, usable[i]))
    names = sorted(set(clusters))
    for i, waiver in enumerate(usable):
        if i not in used and any(waiver.names_cluster(c) for c in names):
            message = f"waiver for {waiver.rule} covers no finding; remove it"
            outcome.notices.append(
                Violation("(project)", waiver.where, "waiver-stale", message, severity="warning")
            )
    outcome.failing.sort()
    outcome.notices.sort()
    return outcome


def _expired(violation: Violation, waiver: Waiver) -> Violation:
    message = (
        f"the waiver for {violation.rule} at {waiver.where} expired on "
        f"{waiver.expires.isoformat()} (owner {waiver.owner}); fix the finding or renew it"
    )
    return Violation(violation.cluster, violation.path, "waiver-expired", message)


def _namespace_of(path: str) -> str:
    """`namespaces.dev-team.quotas.q.cpu` -> `dev-team`; "" outside a namespace."""
    head, _, rest = path.partition(".")
    return rest.partition(".")[0] if head == "namespaces" else ""
