"""Credentials the run knows of, and the one function that masks them in text.

Tokens come from the environment (DESIGN.md: never from flags, never logged).
Every message that leaves the process (errors, command descriptions, outputs
of git) passes `redact`, so a token that a tool echoes back (git prints the
URL it failed on, credentials included) is masked too.
"""

from __future__ import annotations

import base64
import math
import re
from collections import Counter
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

# Variables whose values are masked wherever text leaves the process: the
# credentials that the forge, git or boto3 read.
MASKED_VARIABLES = (
    "GITOPS_GIT_TOKEN",
    "GITOPS_GITHUB_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GITLAB_TOKEN",
    "CI_JOB_TOKEN",
    "ARGOCD_AUTH_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
_MASK = "***"
_MIN_SECRET = 6  # shorter values (test dummies like "x") would mask ordinary words
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")

_known: set[str] = set()


def register(value: str | None) -> None:
    """Mask `value`, and the forms tools print it in (Basic auth), from now on."""
    if not value or len(value) < _MIN_SECRET:
        return
    _known.add(value)
    for user in ("x-access-token", "oauth2", "git"):
        _known.add(base64.b64encode(f"{user}:{value}".encode()).decode())


def register_url(url: str) -> None:
    """Mask the password of a URL's user info (`https://user:TOKEN@host/`) from now on,
    also where it shows without its URL, and in the Basic credentials made of it."""
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:  # not a URL a tool could use either
        return
    if not password or len(unquote(password)) < _MIN_SECRET:
        return
    for form in {password, unquote(password)}:
        register(form)
        if user:
            _known.add(base64.b64encode(f"{unquote(user)}:{form}".encode()).decode())


def register_from_environment(environ: Mapping[str, str]) -> None:
    for name in MASKED_VARIABLES:
        register(environ.get(name))


def redact(text: str) -> str:
    text = _URL_USERINFO.sub(f"{_MASK}@", text)
    # Longest first: a secret that contains another is masked whole.
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, _MASK)
    return text


# -- values that look like credentials -------------------------------------------
#
# One detector for the policy guard (secrets-in-config) and, later, for masking config
# values in diffs, PR bodies and logs. Well-known formats first; then entropy, for keys
# with no format of their own (AWS secret access keys, random passwords, API keys).

HIGH_ENTROPY = "a high-entropy string (random-looking, like a key or password)"
_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a PEM private key (-----BEGIN ... PRIVATE KEY-----)", re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")),
    ("a GitHub token (ghp_…)", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}")),
    ("a GitHub fine-grained token (github_pat_…)", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,}")),
    ("a GitLab token (glpat-…)", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("a Slack token (xox…-)", re.compile(r"\bxox[bpars]-[A-Za-z0-9-]{10,}")),
    ("a Stripe live key (sk_live_…)", re.compile(r"\b[sr]k_live_[A-Za-z0-9]{16,}")),
    ("an AWS access key id (AKIA…/ASIA…)", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    ("a JSON Web Token (eyJ….….…)", re.compile(
        r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
)  # fmt: skip
# Runs of base64 / base64url / hex characters: the shape of a key, whatever it encodes.
_RUN = re.compile(r"[A-Za-z0-9+/=_-]{32,}")
# 32 random base62 characters average 4.54 bits each (p5: 4.31); English words, paths,
# host and image names stay under 4.2, hex digests and UUIDs under 4 (16 symbols).
ENTROPY_MIN_LENGTH = 32
ENTROPY_THRESHOLD = 4.3  # bits per character
_CLASSES = (re.compile("[a-z]"), re.compile("[A-Z]"), re.compile("[0-9]"))


def credential_like(value: str) -> str | None:
    """What `value` looks like if it looks like a credential (a phrase for messages,
    never the value itself); None for ordinary values."""
    for name, pattern in _FORMATS:
        if pattern.search(value):
            return name
    if "-----BEGIN CERTIFICATE-----" in value or "-----BEGIN PUBLIC KEY-----" in value:
        return None  # a public certificate or key is long and random, and public
    for run in _RUN.findall(value):
        decoded = _decoded_pem(run)
        if decoded == "private":
            return "a base64-encoded PEM private key"
        if decoded == "public":
            continue
        if all(c.search(run) for c in _CLASSES) and _entropy(run) >= ENTROPY_THRESHOLD:
            return HIGH_ENTROPY
    return None


def _entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _decoded_pem(run: str) -> str:
    """'private' or 'public' when `run` is base64 of a PEM document ('' otherwise): a
    caBundle is public, a base64 private key is not."""
    if not run.startswith("LS0tLS1CRUdJTi"):  # base64 of "-----BEGIN"
        return ""
    try:
        text = base64.b64decode(run[:268], validate=False)  # the header is enough
    except ValueError:
        return ""
    return "private" if b"PRIVATE KEY" in text else "public"
