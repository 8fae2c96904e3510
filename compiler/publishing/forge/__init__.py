"""The forge: where pull requests live (GitHub pull requests, GitLab merge requests).

`open_or_update` is the one policy every forge shares: find the open pull
request for our head branch and update it, else create one; a create that
races another run ("already exists") falls back to find-and-update. A create
whose outcome is unknown (a gateway error) is the forge's to settle: it looks
for the pull request before it creates again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from compiler.errors import OutsideError


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str  # the page a reviewer opens (html_url)
    head: str  # branch name, without the owner
    base: str
    title: str
    body: str


@dataclass(frozen=True)
class Term:
    """What a forge calls a pull request and how it refers to one, for what we print:
    GitHub's `pull request #12`, GitLab's `merge request !12`."""

    noun: str
    sign: str

    def reference(self, number: int) -> str:
        return f"{self.sign}{number}"

    def name(self, number: int) -> str:
        return f"{self.noun} {self.reference(number)}"


PULL_REQUEST = Term("pull request", "#")
MERGE_REQUEST = Term("merge request", "!")


@dataclass(frozen=True)
class PullRequestOutcome:
    pull: PullRequest
    action: str  # "created", "updated" or "unchanged"
    term: Term = PULL_REQUEST  # the forge's words for it

    @property
    def name(self) -> str:
        """`pull request #12` or `merge request !12`."""
        return self.term.name(self.pull.number)


class Forge(Protocol):
    """The calls publish needs. Errors are `OutsideError` (exit 3) with a clear message,
    except `PullRequestExists`, which `open_or_update` handles."""

    # The longest body the forge accepts, in characters: the body is cut to fit.
    @property
    def body_limit(self) -> int: ...

    @property
    def term(self) -> Term: ...

    def find_open_pull(self, head: str, base: str) -> PullRequest | None: ...

    def create_pull(self, head: str, base: str, title: str, body: str) -> PullRequest: ...

    def update_pull(self, number: int, title: str, body: str) -> PullRequest: ...

    def add_labels(self, number: int, labels: Sequence[str]) -> None: ...


class PullRequestExists(OutsideError):
    """The forge refused a create because a pull request for the head already exists:
    find it and update it. (Not for a create whose outcome is unknown: a forge that
    raised this then would make `open_or_update` report a pull request that may not exist.)"""


def open_or_update(
    forge: Forge,
    *,
    head: str,
    base: str,
    title: str,
    body: str,
    labels: Sequence[str] = (),
    update: bool = True,
) -> PullRequestOutcome:
    """Create the pull request for `head`, or update the open one.

    `update=False` leaves an existing pull request as it is: a re-run whose
    branch did not change must not touch what reviewers are reading.
    """
    found = forge.find_open_pull(head, base)
    action = "unchanged"
    if found is None:
        try:
            found = forge.create_pull(head, base, title, body)
            action = "created"
        except PullRequestExists:
            found = forge.find_open_pull(head, base)
            if found is None:
                raise OutsideError(
                    f"the forge said a pull request for {head} exists, but none is open "
                    f"against {base}; it may target another base branch"
                ) from None
    if action != "created" and update and (found.title, found.body) != (title, body):
        found = forge.update_pull(found.number, title, body)
        action = "updated"
    if labels and action != "unchanged":
        forge.add_labels(found.number, labels)
    return PullRequestOutcome(found, action, forge.term)
