"""The carried-values guard: what the ApplicationSets and the tree carry verbatim."""

from __future__ import annotations

from typing import Any

import pytest

from compiler.model import ClusterFacts
from compiler.policy.guards import carried
from compiler.policy.guards.base import GuardContext, GuardSettings

SERVER = "https://c1.example.internal:6443"
GOOD_ADDON = {
    "repoURL": "https://kubernetes.github.io/ingress-nginx",
    "chart": "ingress-nginx",
    "version": "4.11.2",
    "namespace": "ingress-nginx",
}


def run(
    addon: dict[str, Any] | None = None,
    *,
    server: str = SERVER,
    facts: dict[str, Any] | None = None,
    allowed: tuple[str, ...] = (),
    name: str = "web",
) -> list[tuple[str, tuple[Any, ...]]]:
    cluster = ClusterFacts(**{"name": "c1", "env": "dev", "server": server, **(facts or {})})
    config = {"addons": {name: {**GOOD_ADDON, **(addon or {})}}}
    context = GuardContext(cluster, config, GuardSettings(allowed_servers=allowed))
    return [(f.rule, f.path) for f in carried.check(context)]


A = ("addons", "web")
HOSTILE: list[tuple[str, dict[str, Any], tuple[str, tuple[Any, ...]]]] = [
    # add-on values the addons ApplicationSet reads
    (
        "template in chart",
        {"chart": "nginx{{.cluster.server}}"},
        ("generator-value-unsafe", (*A, "chart")),
    ),
    (
        "closing delimiter in version",
        {"version": "1.0.0}}"},
        ("generator-value-unsafe", (*A, "version")),
    ),
    (
        "newline in version",
        {"version": "4.11.2\nfoo: bar"},
        ("generator-value-unsafe", (*A, "version")),
    ),
    ("NUL in chart", {"chart": "nginx\x00"}, ("generator-value-unsafe", (*A, "chart"))),
    ("bidi override in chart", {"chart": "nginx\u202e"}, ("generator-value-unsafe", (*A, "chart"))),
    (
        "template in repoURL",
        {"repoURL": "https://charts.example.com/{{.x}}"},
        ("generator-value-unsafe", (*A, "repoURL")),
    ),
    # syntax
    ("upper-case chart", {"chart": "Ingress-Nginx"}, ("addon-chart-name", (*A, "chart"))),
    ("chart with a dot", {"chart": "my.chart"}, ("addon-chart-name", (*A, "chart"))),
    ("chart with a path from https", {"chart": "../../etc"}, ("addon-chart-name", (*A, "chart"))),
    ("chart ending with a dash", {"chart": "nginx-"}, ("addon-chart-name", (*A, "chart"))),
    ("chart of 64 characters", {"chart": "a" * 64}, ("addon-chart-name", (*A, "chart"))),
    ("version latest", {"version": "latest"}, ("addon-chart-version", (*A, "version"))),
    ("four-part version", {"version": "1.2.3.4"}, ("addon-chart-version", (*A, "version"))),
    ("version with a pipe", {"version": "1|2"}, ("addon-chart-version", (*A, "version"))),
    ("version blank", {"version": "  "}, ("addon-chart-version", (*A, "version"))),
    (
        "repo with user info",
        {"repoURL": "https://bot:hunter22@charts.example.com"},
        ("addon-repo-url", (*A, "repoURL")),
    ),
    (
        "repo over http",
        {"repoURL": "http://charts.example.com"},
        ("addon-repo-url", (*A, "repoURL")),
    ),
    (
        "repo with a bad port",
        {"repoURL": "https://charts.example.com:99999/x"},
        ("addon-repo-url", (*A, "repoURL")),
    ),
    (
        "repo with an empty label",
        {"repoURL": "https://charts..example.com"},
        ("addon-repo-url", (*A, "repoURL")),
    ),
    (
        "repo with white space",
        {"repoURL": "https://charts.example.com/a b"},
        ("addon-repo-url", (*A, "repoURL")),
    ),
    (
        "oci repo with user info",
        {"repoURL": "oci://u:p@ghcr.io/org"},
        ("addon-repo-url", (*A, "repoURL")),
    ),
]
BENIGN: list[tuple[str, dict[str, Any]]] = [
    ("the example add-on", {}),
    ("caret range", {"version": "^4.11"}),
    ("and range", {"version": ">= 4.11, < 5"}),
    ("space-separated and", {"version": ">=1.2 <2"}),
    ("x range", {"version": "4.11.x"}),
    ("hyphen range", {"version": "1.0 - 1.4"}),
    ("or range", {"version": "^1.2 || ^2.0"}),
    ("wildcard", {"version": "*"}),
    ("pre-release and build", {"version": "1.2.3-rc.1+build.5"}),
    ("v prefix", {"version": "v1.2.3"}),
    ("tilde", {"version": "~1.2"}),
    ("oci path chart", {"repoURL": "oci://ghcr.io/org/charts", "chart": "team/web-app"}),
    ("ip repo with port", {"repoURL": "https://10.0.0.5:8443/charts"}),
    ("at sign in a path", {"repoURL": "https://charts.example.com/team@x/stable"}),
]


@pytest.mark.parametrize(("why", "addon", "expected"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_addon_values_are_refused(
    why: str, addon: dict[str, Any], expected: tuple[str, tuple[Any, ...]]
) -> None:
    assert run(addon) == [expected]


@pytest.mark.parametrize(("why", "addon"), BENIGN, ids=[c[0] for c in BENIGN])
def test_ordinary_addon_values_pass(why: str, addon: dict[str, Any]) -> None:
    assert run(addon) == []


def test_an_addon_name_with_a_template_is_refused() -> None:
    assert run(name="web{{x}}") == [("generator-value-unsafe", ("addons", "web{{x}}"))]


SERVERS = [
    ("https://admin:pw@api.example.com:6443", "cluster-server-url"),
    ("https://token@api.example.com", "cluster-server-url"),
    ("https://api.example.com:0", "cluster-server-url"),
    ("https://api.example.com:70000", "cluster-server-url"),
    ("https://-bad-.example.com", "cluster-server-url"),
    ("https://api.example.com/{{.x}}", "generator-value-unsafe"),
    ("https://api.example.com\u0085", "generator-value-unsafe"),
]


@pytest.mark.parametrize(("server", "rule"), SERVERS)
def test_a_hostile_server_is_refused_at_cluster_server(server: str, rule: str) -> None:
    assert run(server=server) == [(rule, ("cluster", "server"))]


@pytest.mark.parametrize(
    "server",
    ["https://api.example.com:6443", "https://10.0.0.1:6443", "https://[fd00::1]:6443",
     "https://rancher.example.com/k8s/clusters/c-abc12"],
)  # fmt: skip
def test_ordinary_servers_pass(server: str) -> None:
    assert run(server=server) == []


def test_the_message_never_quotes_the_password() -> None:
    cluster = ClusterFacts("c1", "dev", "https://admin:s3cr3t-pw@api.example.com")
    context = GuardContext(cluster, {}, GuardSettings())
    [finding] = carried.check(context)
    assert "s3cr3t-pw" not in finding.message and "***@api.example.com" in finding.message
    assert "cluster.json" in finding.message


@pytest.mark.parametrize(
    ("facts", "path"),
    [
        ({"region": "eu{{.x}}"}, ("cluster", "region")),
        ({"labels": {"tier": "a\nb"}}, ("cluster", "labels", "tier")),
        ({"labels": {"t{{": "a"}}, ("cluster", "labels", "t{{")),
    ],
)
def test_cluster_facts_the_generators_read_are_checked(
    facts: dict[str, Any], path: tuple[Any, ...]
) -> None:
    assert run(facts=facts) == [("generator-value-unsafe", path)]


ALLOWED = ("https://*.k8s.example.com:6443", "https://10.0.0.*:6443")


@pytest.mark.parametrize(
    ("server", "refused"),
    [
        ("https://prod-1.k8s.example.com:6443", False),
        ("https://10.0.0.7:6443", False),
        ("https://prod-1.k8s.example.com.evil.io:6443", True),
        ("https://evil.io:6443", True),
        ("https://evil.io/.k8s.example.com:6443", True),  # a `*` never spans the path
        ("https://PROD-1.K8S.example.com:6443", False),  # host names are case-insensitive
        ("https://prod-1.k8s.example.com:6443/x", True),
        ("https://prod-1.k8s.example.com:443", True),
    ],
)
def test_allowed_servers(server: str, refused: bool) -> None:
    expected = [("cluster-server-allowed", ("cluster", "server"))] if refused else []
    assert run(server=server, allowed=ALLOWED) == expected


def test_without_allowed_servers_any_https_server_passes() -> None:
    assert run(server="https://anything.example.org") == []


@pytest.mark.parametrize(
    "server",
    [
        "https://kubernetes.default.svc",
        "https://kubernetes.default.svc:443",
        "https://KUBERNETES.default.svc.cluster.local.",
        "https://kubernetes.default",
        "https://kubernetes",
    ],
)
def test_argo_cds_own_in_cluster_server_is_refused_unless_allowed(server: str) -> None:
    """Argo CD always knows it: a record naming it deploys onto the management cluster."""
    assert run(server=server) == [("cluster-server-in-cluster", ("cluster", "server"))]
    assert run(server=server, allowed=(server,)) == []
    assert run(server="https://kubernetes.example.com") == []
