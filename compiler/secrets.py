"""Credentials the run knows of, and the one function that masks them in text.

Tokens come from the environment (DESIGN.md: never from flags, never logged).
Every message that leaves the process (errors, command descriptions, outputs
of git) passes `redact`, so a token that a tool echoes back (git prints the
URL it failed on, credentials included) is masked too.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

# Variables whose values are masked wherever text leaves the process: the
# credentials that the forge, git or boto3 read.
MASKED_VARIABLES = (
    "GITOPS_GIT_TOKEN",
    "GITOPS_GITHUB_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
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
