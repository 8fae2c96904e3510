"""Values the ApplicationSets and the tree carry verbatim: add-on sources and the server.

`clusters/<c>/cluster.json` and `clusters/<c>/addons/<a>.json` are the git files
generator's parameters: Argo CD puts them, as they are, into Applications
(`repoURL`, `chart`, `targetRevision`, `destination.server`, names), and the tree
is pushed to a repository many people read. So:

- no value a generator reads holds a Go template delimiter (`{{`, `}}`), a line
  break or another control or invisible (Unicode Cc, Cf, Zl, Zp) character: the
  ApplicationSet templates are Go templates, a value that looks like one is at best
  a broken Application and at worst a template in a field someone later templates;
- the API server URL and the Helm repository URL carry no user info: today
  `https://admin:pw@host` would be written into cluster.json and pushed;
- `chart` is a Helm chart name (a DNS-1123 label; for an `oci://` repository a
  repository path), `version` a SemVer 2 version or a constraint that Helm's
  Masterminds/semver v3 parses (`^1.2`, `>= 1.2, < 2`, `1.2.x`, `1.0 - 1.4`, `a || b`);
- with `policy.allowedServers` (fnmatch patterns) in the project file, a cluster
  whose server matches none is refused.

A value is reported once, for its most specific fault: delimiters and control
characters first, then its syntax.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from compiler.model import DocPath
from compiler.policy.guards.base import GuardContext, GuardFinding, Rule

_ARGO_GO_TEMPLATE = (
    "https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/GoTemplate/"
)
_ARGO_CLUSTERS = (
    "https://argo-cd.readthedocs.io/en/stable/operator-manual/declarative-setup/#clusters"
)
_ARGO_HELM = "https://argo-cd.readthedocs.io/en/stable/user-guide/helm/"
_HELM_NAMES = "https://helm.sh/docs/chart_best_practices/conventions/#chart-names"
_SEMVER = "https://github.com/Masterminds/semver#checking-version-constraints"

RULES: tuple[Rule, ...] = (
    Rule(
        "generator-value-unsafe",
        "error",
        "No value the ApplicationSet generators read (cluster name, env, region, server and "
        "labels; add-on name, chart, version, repoURL, namespace, releaseName) holds `{{`, "
        "`}}`, a line break or another control or invisible character.",
        "The ApplicationSets are Go templates fed these values verbatim: a delimiter or "
        "control character is at best a broken Application, at worst a template injected "
        "into the Argo CD repository.",
        _ARGO_GO_TEMPLATE,
        "addons: {ingress-nginx: {chart: ingress-nginx}}   # not ingress-nginx{{.x}}",
        waivable=False,
    ),
    Rule(
        "cluster-server-url",
        "error",
        "The cluster's API server is an https:// URL with a valid host and port and no user "
        "info (user:password@).",
        "The server is written into clusters/<c>/cluster.json and pushed: credentials in it "
        "are published to everyone who reads the Argo CD repository.",
        _ARGO_CLUSTERS,
        "cluster: {server: https://api.prod.example.com:6443}   # credentials in Argo CD's "
        "cluster Secret",
        waivable=False,
    ),
    Rule(
        "cluster-server-allowed",
        "error",
        "With `policy.allowedServers` in the project file, the cluster's API server matches "
        "one of its patterns.",
        "A record pointing a cluster's Applications at an unknown API server deploys the "
        "fleet's add-ons, and their secrets, there.",
        _ARGO_CLUSTERS,
        "policy: {allowedServers: ['https://*.k8s.example.com:6443']}",
    ),
    Rule(
        "cluster-server-in-cluster",
        "error",
        "The cluster's API server is not Argo CD's own in-cluster address "
        "(kubernetes.default.svc and its other names); a waiver (policies/waivers.yaml) "
        "for the one cluster that is meant to be the management cluster.",
        "Argo CD always knows that server as the cluster it runs in: a record naming it "
        "deploys its namespaces, RBAC and add-ons onto the management cluster.",
        _ARGO_CLUSTERS,
        "cluster: {server: https://api.dev.example.com:6443}",
    ),
    Rule(
        "addon-repo-url",
        "error",
        "An add-on's repoURL is an https:// or oci:// URL with a valid host and port and no "
        "user info.",
        "repoURL is written into the add-on's generator file and pushed: credentials in it "
        "are published, and Argo CD cannot use a malformed URL.",
        _ARGO_HELM,
        "repoURL: https://kubernetes.github.io/ingress-nginx   # credentials in a repository "
        "Secret",
        waivable=False,
    ),
    Rule(
        "addon-chart-name",
        "error",
        "An add-on's chart is a Helm chart name: lower-case letters, digits and dashes "
        "(a DNS-1123 label); from an oci:// repository, a repository path of such names.",
        "Helm refuses other names; Argo CD carries the value verbatim into the Application.",
        _HELM_NAMES,
        "chart: ingress-nginx",
    ),
    Rule(
        "addon-chart-version",
        "error",
        "An add-on's version is a SemVer 2 version or a range Helm accepts (Masterminds/semver "
        "v3 constraints).",
        "Argo CD passes it to Helm as the target revision: anything else never syncs.",
        _SEMVER,
        'version: "4.11.2"   # or "^4.11", ">= 4.11, < 5"',
    ),
)

_TEMPLATE = ("{{", "}}")
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})
_CHART = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# OCI distribution spec: a repository name's path components.
_OCI_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_OCI_CHART = re.compile(rf"{_OCI_COMPONENT}(?:/{_OCI_COMPONENT})*")
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?")

# Masterminds/semver v3 (constraints.go): a version in a constraint, its operators, and
# a segment of ANDs. Each part is what NewVersion then parses (digits, x, X or *), not
# the looser character class of the validating regex, which lets through what fails later.
_PART = r"(?:[0-9]+|[xX*])"
_IDS = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_CV = rf"v?{_PART}(?:\.{_PART})?(?:\.{_PART})?(?:-{_IDS})?(?:\+{_IDS})?"
_OPS = r"(?:=|!=|>=|=>|<=|=<|~>|~|\^|>|<|)"
_WS = r"[ \t]"
_AND_SEGMENT = re.compile(
    rf"{_WS}*{_OPS}{_WS}*{_CV}{_WS}*(?:(?:{_WS}+|,{_WS}*){_OPS}{_WS}*{_CV}{_WS}*)*"
)
_RANGE = re.compile(rf"{_WS}*({_CV}){_WS}+-{_WS}+({_CV}){_WS}*")


def version_accepted(version: str) -> bool:
    """What Helm accepts as a chart version: SemVer, or Masterminds/semver constraints."""
    if not version.strip():
        return False
    # NewConstraint rewrites `a - b` ranges to `>= a, <= b`, then splits on `||`.
    rewritten = _RANGE.sub(lambda m: f">= {m.group(1)}, <= {m.group(2)} ", version)
    return all(_AND_SEGMENT.fullmatch(part) for part in rewritten.split("||"))


def unsafe_character(value: str) -> str:
    """What makes a carried value unsafe ('' when nothing): delimiters, controls."""
    for delimiter in _TEMPLATE:
        if delimiter in value:
            return f"the Go template delimiter {delimiter}"
    for char in value:
        if unicodedata.category(char) in _INVISIBLE:
            return f"the control character U+{ord(char):04X}"
    return ""


def url_problem(url: str, schemes: tuple[str, ...]) -> str:
    """Why `url` is no URL Argo CD should carry ('' when fine); never quotes the URL."""
    if any(char.isspace() for char in url):
        return "holds white space"
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when out of 0..65535 or not a number
    except ValueError:
        return "is not a valid URL (host or port)"
    if parts.scheme not in schemes or not url.startswith(f"{parts.scheme}://"):
        return "does not start with " + " or ".join(f"{s}://" for s in schemes)
    if "@" in parts.netloc:
        return "carries user info (user:password@)"
    if not _valid_host(parts.hostname or "") or port == 0:
        return "has no valid host name or port"
    return ""


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


def server_matches(server: str, pattern: str) -> bool:
    """fnmatch, part by part: a `*` in the host never reaches into the path, so
    `https://evil.io/.k8s.example.com:6443` does not match `https://*.k8s.example.com:6443`."""
    got, wanted = urlsplit(server), urlsplit(pattern)
    return (
        fnmatch.fnmatchcase(got.scheme, wanted.scheme)
        and fnmatch.fnmatchcase(got.netloc.lower(), wanted.netloc.lower())
        and fnmatch.fnmatchcase(got.path, wanted.path)
        and (got.query, got.fragment) == (wanted.query, wanted.fragment)
    )


# The in-cluster Service of the API server, as pods (and Argo CD, registered as
# `in-cluster`) reach it from inside: every name its search path resolves.
_IN_CLUSTER_HOSTS = frozenset(
    {"kubernetes", "kubernetes.default", "kubernetes.default.svc"}
    | {"kubernetes.default.svc.cluster.local"}
)


def _in_cluster(server: str) -> bool:
    host = (urlsplit(server).hostname or "").rstrip(".")
    return host in _IN_CLUSTER_HOSTS


def masked(url: str) -> str:
    """A URL as a message may quote it: user info masked, cut short."""
    text = re.sub(r"(?<=://)[^/@]*@", "***@", url)
    text = "".join(c if unicodedata.category(c) not in _INVISIBLE else "?" for c in text)
    return text if len(text) <= 80 else text[:77] + "..."


def check(context: GuardContext) -> Iterator[GuardFinding]:
    yield from _cluster(context)
    for name, addon in sorted((context.config.get("addons") or {}).items()):
        yield from _addon(name, addon or {})


def _cluster(context: GuardContext) -> Iterator[GuardFinding]:
    facts = context.facts
    carried: list[tuple[DocPath, str]] = [
        (("cluster", "name"), facts.name),
        (("cluster", "env"), facts.env),
        (("cluster", "region"), facts.region),
        (("cluster", "server"), facts.server),
    ]
    for key, value in sorted(facts.labels.items()):
        carried += [(("cluster", "labels", key), key), (("cluster", "labels", key), value)]
    server_unsafe = False
    for path, value in carried:
        character = unsafe_character(value)
        if character:
            server_unsafe |= path == ("cluster", "server")
            yield GuardFinding(
                path,
                "generator-value-unsafe",
                f"cluster {facts.name}: {'.'.join(map(str, path[1:]))} holds {character}, and "
                "the ApplicationSet generators carry it verbatim into Applications; remove it",
            )
    if server_unsafe:
        return
    where: DocPath = ("cluster", "server")
    problem = url_problem(facts.server, ("https",))
    if problem:
        yield GuardFinding(
            where,
            "cluster-server-url",
            f"cluster {facts.name}: the API server {masked(facts.server)} {problem}; it is "
            "written into cluster.json and pushed: write https://host[:port], and give Argo "
            "CD credentials in its cluster Secret",
        )
        return
    patterns = context.settings.allowed_servers
    allowed = any(server_matches(facts.server, pattern) for pattern in patterns)
    if _in_cluster(facts.server) and not allowed:
        yield GuardFinding(
            where,
            "cluster-server-in-cluster",
            f"cluster {facts.name}: the API server {masked(facts.server)} is how Argo CD "
            "reaches the cluster it runs in: this record would deploy onto the management "
            "cluster; give the cluster's own server, or waive this finding for this one "
            "cluster in policies/waivers.yaml if it is the management cluster",
        )
    elif patterns and not allowed:
        yield GuardFinding(
            where,
            "cluster-server-allowed",
            f"cluster {facts.name}: the API server {masked(facts.server)} matches none of the "
            "project's policy.allowedServers; Argo CD would deploy the add-ons there: fix the "
            "server, or add a pattern for it",
        )


def _addon(name: str, addon: Mapping[str, Any]) -> Iterator[GuardFinding]:
    base: DocPath = ("addons", name)
    what = f"add-on {name}"
    checked: list[tuple[DocPath, str]] = [(base, name)]
    for key in ("chart", "version", "repoURL", "namespace", "releaseName"):
        if isinstance(addon.get(key), str):
            checked.append(((*base, key), addon[key]))
    bad: set[DocPath] = set()
    for path, value in checked:
        character = unsafe_character(value)
        if character:
            bad.add(path)
            field = "name" if path == base else str(path[-1])
            yield GuardFinding(
                path,
                "generator-value-unsafe",
                f"{what}: {field} holds {character}, and the addons ApplicationSet carries it "
                "verbatim into the Application; remove it",
            )
    yield from _addon_syntax(what, base, addon, bad)


def _addon_syntax(
    what: str, base: DocPath, addon: Mapping[str, Any], bad: set[DocPath]
) -> Iterator[GuardFinding]:
    repo, chart, version = addon.get("repoURL"), addon.get("chart"), addon.get("version")
    if isinstance(repo, str) and (*base, "repoURL") not in bad:
        problem = url_problem(repo, ("https", "oci"))
        if problem:
            yield GuardFinding(
                (*base, "repoURL"),
                "addon-repo-url",
                f"{what}: repoURL {masked(repo)} {problem}; it is written into the tree and "
                "pushed: write https://host/path or oci://host/path, and give Argo CD "
                "credentials in a repository Secret",
            )
    oci = isinstance(repo, str) and repo.startswith("oci://")
    if isinstance(chart, str) and (*base, "chart") not in bad:
        pattern = _OCI_CHART if oci else _CHART
        if not pattern.fullmatch(chart):
            kind = "a path of lower-case names" if oci else "lower-case letters, digits, dashes"
            yield GuardFinding(
                (*base, "chart"),
                "addon-chart-name",
                f"{what}: chart {chart[:80]!r} is not a Helm chart name ({kind}); Helm would "
                "not find it and Argo CD never syncs the Application",
            )
    if isinstance(version, str) and (*base, "version") not in bad and not version_accepted(version):
        yield GuardFinding(
            (*base, "version"),
            "addon-chart-version",
            f"{what}: version {version[:80]!r} is neither a SemVer version nor a range "
            'Helm accepts; write e.g. "4.11.2", "^4.11" or ">= 4.11, < 5"',
        )
