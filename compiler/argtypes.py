"""Value types of the command line: each turns one word into a value or an argparse error
(exit 2 with the word and the form it should take)."""

from __future__ import annotations

import argparse
import re

from compiler.errors import UsageError
from compiler.shard import Shard


def shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except UsageError as err:
        raise argparse.ArgumentTypeError(err.message) from None


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def duration(text: str) -> float:
    """Seconds from `90s`, `10m`, `1h30m` or a bare number of seconds."""
    found = _DURATION.match(text.strip())
    if not text.strip() or found is None:
        raise argparse.ArgumentTypeError(f"{text!r}: use a duration such as 0s, 90s, 10m or 1h")
    hours, minutes, seconds = (float(part) if part else 0.0 for part in found.groups())
    return hours * 3600 + minutes * 60 + seconds


def listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: use HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a positive number of seconds")
    return value
