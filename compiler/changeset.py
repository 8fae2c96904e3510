"""What a commit changes, from git itself: the paths a pre-commit hook must judge.

pre-commit passes a hook only the added, copied, modified and renamed paths (the
new side), so a commit that only deletes an overlay, or moves one to another
environment, would skip the clusters it leaves (issue 16). The hook asks git
instead: the staged changes (`git diff --cached`), or the range pre-commit
checks in CI (`--from-ref/--to-ref`, which it exports as PRE_COMMIT_FROM_REF
and PRE_COMMIT_TO_REF), deletions and both sides of renames included.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from compiler import proc
from compiler.errors import OutsideError

_GIT_SECONDS = 60


def git_changes(root: Path, env: Mapping[str, str]) -> list[Path]:
    """Every path the commit (or the CI range) touches under the project `root`,
    absolute, as it stands in the project (links not followed)."""
    top = Path(_git(root, "rev-parse", "--show-toplevel").decode().strip())
    try:
        prefix = root.resolve().relative_to(top.resolve())
    except ValueError:
        return []
    from_ref = env.get("PRE_COMMIT_FROM_REF") or env.get("PRE_COMMIT_SOURCE")
    to_ref = env.get("PRE_COMMIT_TO_REF") or env.get("PRE_COMMIT_ORIGIN")
    # The same range pre-commit diffs for --from-ref/--to-ref: from the merge base.
    span = (f"{from_ref}...{to_ref}",) if from_ref and to_ref else ("--cached",)
    listed = _git(root, "diff", "--name-status", "-M", "-z", "--no-ext-diff", *span)
    paths: list[Path] = []
    for name in parse_name_status(listed):
        rel = Path(name)
        if rel.is_relative_to(prefix):
            paths.append(root / rel.relative_to(prefix))
    return sorted(set(paths))


def parse_name_status(listed: bytes) -> list[str]:
    """The paths of `git diff --name-status -z`: one after a status letter, two (old
    and new) after R (rename) and C (copy)."""
    fields = listed.decode("utf-8", "surrogateescape").split("\0")
    paths: list[str] = []
    at = 0
    while at < len(fields) and fields[at]:
        status = fields[at]
        count = 2 if status[:1] in ("R", "C") else 1
        paths.extend(fields[at + 1 : at + 1 + count])
        at += 1 + count
    return paths


def _git(root: Path, *args: str) -> bytes:
    ran = proc.run(("git", *args), cwd=root, env=None, timeout=_GIT_SECONDS)
    if ran.returncode != 0:
        raise OutsideError(f"the hook reads the commit's changes from git, and {proc.failure(ran)}")
    return ran.stdout
