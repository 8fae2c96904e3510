"""The secrets-in-config guard: credentials in add-on values and namespace annotations,
and the references that are not credentials."""

from __future__ import annotations

import random
import string
from typing import Any

import pytest

from compiler.model import ClusterFacts
from compiler.policy.guards import secrets_in_config
from compiler.policy.guards.base import GuardContext, GuardSettings

_rng = random.Random(6)
TOKEN = "gh" + "p_" + "".join(_rng.choice(string.ascii_letters + string.digits) for _ in range(36))
RANDOM_KEY = "".join(_rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(40))
PEM = "-----BEGIN " + "EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n"


def findings(config: dict[str, Any]) -> list[tuple[str, tuple[Any, ...], str]]:
    facts = ClusterFacts(name="c1", env="dev", server="https://c1.example.internal:6443")
    context = GuardContext(facts, config, GuardSettings())
    return [(f.rule, f.path, f.message) for f in secrets_in_config.check(context)]


def run(config: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
    return [(rule, path) for rule, path, _ in findings(config)]


def values(v: dict[str, Any]) -> dict[str, Any]:
    return {"addons": {"db": {"chart": "postgresql", "values": v}}}


def annotation(key: str, value: str) -> dict[str, Any]:
    return {"namespaces": {"team": {"annotations": {key: value}}}}


V = ("addons", "db", "values")
N = ("namespaces", "team", "annotations")
HOSTILE = [
    (
        "password literal",
        values({"auth": {"password": "hunter2"}}),
        "secret-literal",
        (*V, "auth", "password"),
    ),
    ("camelCase", values({"adminPassword": "hunter2"}), "secret-literal", (*V, "adminPassword")),
    ("snake_case api key", values({"api_key": "k-123"}), "secret-literal", (*V, "api_key")),
    ("kebab-case", values({"api-key": "k-123"}), "secret-literal", (*V, "api-key")),
    ("apiKey", values({"apiKey": "k-123"}), "secret-literal", (*V, "apiKey")),
    (
        "upper snake",
        values({"env": {"AWS_SECRET_ACCESS_KEY": "x"}}),
        "secret-literal",
        (*V, "env", "AWS_SECRET_ACCESS_KEY"),
    ),
    (
        "privateKey",
        values({"tls": {"privateKey": "abc"}}),
        "secret-literal",
        (*V, "tls", "privateKey"),
    ),
    (
        "clientSecret",
        values({"oidc": {"clientSecret": "s"}}),
        "secret-literal",
        (*V, "oidc", "clientSecret"),
    ),
    ("credentials", values({"credentials": "user:pw"}), "secret-literal", (*V, "credentials")),
    ("a number", values({"passwd": 123456}), "secret-literal", (*V, "passwd")),
    ("in a list", values({"tokens": ["a1", "b2"]}), "secret-literal", (*V, "tokens", 0)),
    (
        "under a list",
        values({"users": [{"name": "a", "password": "pw"}]}),
        "secret-literal",
        (*V, "users", 0, "password"),
    ),
    (
        "placeholder inside text",
        values({"password": "pre-${X}"}),
        "secret-literal",
        (*V, "password"),
    ),
    (
        "GitHub token, innocent key",
        values({"git": {"auth": TOKEN}}),
        "secret-credential-format",
        (*V, "git", "auth"),
    ),
    (
        "token under a token key",
        values({"githubToken": TOKEN}),
        "secret-credential-format",
        (*V, "githubToken"),
    ),
    (
        "PEM under tls.key",
        values({"tls": {"key": PEM}}),
        "secret-credential-format",
        (*V, "tls", "key"),
    ),
    (
        "random key, innocent key",
        values({"aws": {"sk": RANDOM_KEY}}),
        "secret-high-entropy",
        (*V, "aws", "sk"),
    ),
    (
        "annotation password",
        annotation("example.com/db-password", "hunter2"),
        "secret-literal",
        (*N, "example.com/db-password"),
    ),
    (
        "annotation token value",
        annotation("owner", TOKEN),
        "secret-credential-format",
        (*N, "owner"),
    ),
]
BENIGN = [
    (
        "reference map",
        values({"password": {"valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}}),
    ),
    (
        "existingSecret",
        values({"auth": {"existingSecret": "db-auth", "secretKeys": {"adminPasswordKey": "pw"}}}),
    ),
    ("placeholder", values({"password": "${DB_PASSWORD}"})),
    ("placeholder with spaces", values({"token": " ${TOKEN} "})),
    ("empty", values({"password": ""})),
    ("bool", values({"serviceAccountToken": True, "createSecret": False})),
    ("secret name", values({"tls": {"secretName": "web-tls"}})),
    ("token ttl", values({"tokenTTL": 3600})),
    ("password file", values({"passwordFile": "/run/secrets/pw"})),
    ("secret ref", values({"tokenSecretRef": {"name": "t", "key": "k"}})),
    ("image pull secrets", values({"imagePullSecrets": ["regcred"]})),
    (
        "ordinary values",
        values({"image": {"repository": "bitnami/postgresql", "tag": "16.4.0"}, "replicaCount": 2}),
    ),
    ("a uuid", values({"clusterId": "6b690e0a-075c-41bc-9362-bb469c12003d"})),
    (
        "a digest",
        values(
            {"image": "app@sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"}
        ),
    ),
    ("annotation", annotation("example.com/owner", "team-payments")),
    ("annotation switch", annotation("example.com/secret-rotation", "true")),
    (
        "vault injector",
        annotation("vault.hashicorp.com/agent-inject-secret-db", "database/creds/app"),
    ),
    ("annotation secret name", annotation("example.com/tls-secret-name", "web-tls")),
]


@pytest.mark.parametrize(("why", "config", "rule", "path"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_credentials_in_config_are_refused(
    why: str, config: dict[str, Any], rule: str, path: tuple[Any, ...]
) -> None:
    assert run(config)[:1] == [(rule, path)]


@pytest.mark.parametrize(("why", "config"), BENIGN, ids=[c[0] for c in BENIGN])
def test_references_and_ordinary_values_pass(why: str, config: dict[str, Any]) -> None:
    assert run(config) == []


def test_messages_say_what_matched_and_never_the_value() -> None:
    config = values({"git": {"auth": TOKEN}, "password": "hunter2-very-own"})
    messages = [message for _, _, message in findings(config)]
    assert any("looks like a GitHub token (ghp_…)" in m for m in messages)
    assert any("add-on db: values.password names a credential" in m for m in messages)
    assert all(TOKEN not in m and "hunter2" not in m for m in messages)


def test_every_literal_in_a_list_is_reported() -> None:
    assert run(values({"tokens": ["a1", "b2"]})) == [
        ("secret-literal", (*V, "tokens", 0)),
        ("secret-literal", (*V, "tokens", 1)),
    ]


@pytest.mark.parametrize(
    ("key", "names"),
    [
        ("password", True), ("dbPassword", True), ("DB_PASSWORD", True), ("api-key", True),
        ("APIKey", True), ("private_key", True), ("credentials", True), ("secret", True),
        ("secretName", False), ("existingSecret", False), ("passwordSecretRef", False),
        ("tokenPath", False), ("keyboard", False), ("monkey", False), ("tokenizer", False),
    ],
)  # fmt: skip
def test_names_credential(key: str, names: bool) -> None:
    assert secrets_in_config.names_credential(key) is names
