"""Credentials written into the config: they would be rendered into the tree and pushed.

Checked: every value under `addons.<a>.values` (any depth, in maps and lists) and
every namespace annotation (`namespaces.<ns>.annotations`).

- A value that looks like a credential is refused, whatever its key: a well-known
  token format (GitHub `ghp_`/`gho_`/`github_pat_`, GitLab `glpat-`, Slack `xox?-`,
  Stripe `sk_live_`, an AWS access key id `AKIA`/`ASIA` + 16, a JSON Web Token, a PEM
  or base64-encoded PEM private key): `secret-credential-format`, never waivable;
  or a high-entropy run (at least 32 base64/hex characters with lower case, upper
  case and digits, and at least 4.3 bits of Shannon entropy per character; random
  32-character keys average 4.54, words, paths, host and image names, UUIDs and hex
  digests stay under it): `secret-high-entropy`.
- A key that names a credential (its words, split at camelCase, `_`, `-` and `.`,
  include password, passwd, token, secret, credential(s), or api+key, private+key) with
  a literal value (a non-empty string or a number): `secret-literal`.

The convention for what is *not* a literal, i.e. a reference to a Secret:

- a map that holds `secretKeyRef`, `valueFrom` or `existingSecret`:
  `password: {valueFrom: {secretKeyRef: {name: db, key: password}}}`,
  `auth: {existingSecret: db-auth, secretKeys: {adminPasswordKey: pw}}`; no key under
  it is judged as a credential's name (formats and entropy still are);
- a string that is exactly one placeholder, `${...}` (filled in at deploy time by
  whatever templating the chart or a plugin does, never by this compiler); a switch
  (`"true"`, `"no"`, `"enabled"`...) is no literal either;
- a key that names a Secret, a file or a setting rather than holding a credential:
  its last word is a qualifier such as name, ref, path, file or ttl (`secretName`,
  `tokenSecretRef`, `passwordFile`, `tokenTTL`; the list is `_QUALIFIERS`), or one of
  its words is `existing`, `pull` or `inject` (`existingSecret`, `imagePullSecrets`,
  Vault's `agent-inject-secret-db`).

Messages say which key or pattern matched, never the value (`compiler.secrets`
`credential_like` is the shared detector, also for masking).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from typing import Any

from compiler.model import DocPath
from compiler.policy.guards.base import GuardContext, GuardFinding, Rule
from compiler.secrets import HIGH_ENTROPY, credential_like

_K8S_SECRETS = "https://kubernetes.io/docs/concepts/security/secrets-good-practices/"
_ARGO_SECRETS = "https://argo-cd.readthedocs.io/en/stable/operator-manual/secret-management/"
_FIX = "values: {auth: {existingSecret: db-auth}}   # or password: ${DB_PASSWORD}"

RULES: tuple[Rule, ...] = (
    Rule(
        "secret-credential-format",
        "error",
        "No add-on value or namespace annotation holds a credential in a well-known format "
        "(GitHub, GitLab, Slack, Stripe tokens, AWS access key ids, JSON Web Tokens, PEM "
        "private keys).",
        "The config is rendered into the Argo CD repository and pushed: the credential is "
        "published to everyone who reads it, and stays in git history after it is removed.",
        _ARGO_SECRETS,
        _FIX,
        waivable=False,
    ),
    Rule(
        "secret-high-entropy",
        "error",
        "No add-on value or namespace annotation holds a random-looking run of 32 or more "
        "base64/hex characters (mixed case and digits, >= 4.3 bits of entropy per character).",
        "Keys without a format of their own (AWS secret keys, generated passwords, API keys) "
        "look like this; in the config they are pushed to the Argo CD repository.",
        _K8S_SECRETS,
        _FIX,
    ),
    Rule(
        "secret-literal",
        "error",
        "A key of an add-on's values or a namespace annotation that names a credential "
        "(password, token, secret, apiKey, credentials, privateKey) holds a reference to a "
        "Secret (secretKeyRef, valueFrom, existingSecret) or a ${...} placeholder, not a "
        "literal.",
        "A literal credential is rendered into the tree and pushed to the Argo CD repository.",
        _K8S_SECRETS,
        _FIX,
    ),
)

_SENSITIVE_WORDS = frozenset(
    {"password", "passwd", "token", "tokens", "secret", "secrets", "credential", "credentials"}
)
_SENSITIVE_PAIRS = frozenset({("api", "key"), ("private", "key")})
_SENSITIVE_JOINED = frozenset({"apikey", "privatekey"})
# A last word that makes the key name a Secret, a file or a setting, not hold a credential.
_QUALIFIERS = frozenset(
    {
        "name", "names", "ref", "reference", "path", "file", "dir", "mount", "namespace",
        "enabled", "enable", "create", "ttl", "expiry", "expiration", "duration", "audience",
        "type", "length", "size", "url", "endpoint", "provider", "store", "class", "mode",
        "format", "header", "annotations", "labels", "selector", "version", "issuer",
    }
)  # fmt: skip
_REFERENCE_WORDS = frozenset({"existing", "inject", "pull"})
_KEY_OF_SECRET = frozenset({"password", "passwd", "token", "credentials"})
# A map holding one of these is a reference to a Secret: no literal is judged under it.
_REFERENCE_KEYS = frozenset({"secretKeyRef", "valueFrom", "existingSecret"})
_SWITCHES = frozenset({"true", "false", "yes", "no", "on", "off", "enabled", "disabled"})
_PLACEHOLDER = re.compile(r"\$\{[^{}]+\}")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def key_words(key: str) -> list[str]:
    """`adminPassword` -> [admin, password]; `API_KEY`, `api-key` -> [api, key]."""
    return [w.lower() for w in _WORD.findall(key)]


def names_credential(key: str) -> bool:
    """Whether `key` says its value is a credential (and not a reference to one)."""
    words = key_words(key.rsplit("/", 1)[-1])  # an annotation's prefix is a domain
    if not words or words[-1] in _QUALIFIERS or _REFERENCE_WORDS & set(words):
        return False
    if len(words) > 1 and words[-1] == "key" and words[-2] in _KEY_OF_SECRET:
        return False  # `adminPasswordKey: password`: which key of a Secret to read
    pairs = set(itertools.pairwise(words))
    return bool(
        _SENSITIVE_WORDS & set(words) or _SENSITIVE_JOINED & set(words) or _SENSITIVE_PAIRS & pairs
    )


def is_literal(value: Any) -> bool:
    """A value that holds a credential itself: a non-empty string that is not exactly a
    `${...}` placeholder, or a number."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        text = value.strip()
        # An annotation's switch is a string: `secret-rotation: "true"` is no credential.
        return text != "" and text.lower() not in _SWITCHES and not _PLACEHOLDER.fullmatch(text)
    return isinstance(value, int | float)


def check(context: GuardContext) -> Iterator[GuardFinding]:
    for name, addon in sorted((context.config.get("addons") or {}).items()):
        values = (addon or {}).get("values")
        if isinstance(values, Mapping):
            where = f"add-on {name}"
            yield from _walk(values, ("addons", name, "values"), where, False)
    for ns_name, ns in sorted((context.config.get("namespaces") or {}).items()):
        for key, value in sorted(((ns or {}).get("annotations") or {}).items()):
            where = f"namespace {ns_name}: annotation {key}"
            path: DocPath = ("namespaces", ns_name, "annotations", key)
            yield from _judge(value, path, where, names_credential(key))


def _walk(
    node: Any, path: DocPath, where: str, sensitive: bool, referenced: bool = False
) -> Iterator[GuardFinding]:
    """`referenced`: under a map that references a Secret, where keys are not judged
    (credential formats and entropy still are: a real key is never fine)."""
    if isinstance(node, Mapping):
        referenced = referenced or not _REFERENCE_KEYS.isdisjoint(map(str, node))
        for key, value in node.items():
            named = not referenced and names_credential(str(key))
            yield from _walk(value, (*path, key), where, named, referenced)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _walk(item, (*path, index), where, sensitive, referenced)
    else:
        yield from _judge(node, path, where, sensitive)


def _judge(value: Any, path: DocPath, where: str, sensitive: bool) -> Iterator[GuardFinding]:
    if isinstance(value, str) and _PLACEHOLDER.fullmatch(value.strip()):
        return
    field = _field(path)
    looks = credential_like(value) if isinstance(value, str) else None
    if looks == HIGH_ENTROPY:
        yield GuardFinding(
            path,
            "secret-high-entropy",
            f"{where}: {field} holds {looks}, which would be pushed to the Argo CD repository; "
            "if it is a credential, keep it in a Secret and reference it (existingSecret, "
            "secretKeyRef, valueFrom) or write a ${...} placeholder",
        )
    elif looks is not None:
        yield GuardFinding(
            path,
            "secret-credential-format",
            f"{where}: {field} looks like {looks}, which would be pushed to the Argo CD "
            "repository; revoke it, keep it in a Secret and reference it (existingSecret, "
            "secretKeyRef, valueFrom) or write a ${...} placeholder",
        )
    elif sensitive and is_literal(value):
        yield GuardFinding(
            path,
            "secret-literal",
            f"{where}: {field} names a credential and holds a literal value, which would be "
            "pushed to the Argo CD repository; reference a Secret (existingSecret, "
            "secretKeyRef, valueFrom) or write a ${...} placeholder",
        )


def _field(path: DocPath) -> str:
    """The path under the add-on's values (`values.auth.password`), or the annotation."""
    if path[0] == "addons":
        return ".".join(str(p) for p in path[2:])
    return "its value"
