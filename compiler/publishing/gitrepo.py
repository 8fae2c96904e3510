"""The Argo CD repository, through the `git` CLI: a scratch bare clone, trees, commits, push.

Every call goes through `proc.run` (no shell, a timeout, the process group
killed on expiry). Files enter git as exact bytes (`hash-object --no-filters`
into a scratch index), so the repository's attributes or autocrlf can never
change what was compiled. Nothing is checked out: the scratch repository is
bare, and trees are built from the base commit plus our files.
"""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from compiler import proc
from compiler.errors import OutsideError, UsageError
from compiler.secrets import register, register_url

GIT_TIMEOUT = 300.0  # a clone of a large repository on a slow link; local calls take ms
_HTTP = ("http", "https")
_BRANCH = re.compile(r"^(?!/)(?!.*//)(?!.*\.\.)(?!.*@\{)[A-Za-z0-9._/-]+(?<![./])$")
# What git says when the remote branch moved under us (a race, worth a retry).
_RACE = ("stale info", "fetch first", "non-fast-forward", "failed to update ref", "cannot lock ref")
# What git says when the remote itself refuses to move a branch backwards or sideways
# (receive.denyNonFastForwards, a protection rule): no retry can help.
_DENIED_NON_FAST_FORWARD = "[remote rejected] (non-fast-forward)"
# What git says when credentials are missing or refused: in its words, about a terminal.
_REFUSED_CREDENTIALS = (
    b"terminal prompts disabled",
    b"Authentication failed",
    b"returned error: 401",
    b"returned error: 403",
)


@dataclass(frozen=True)
class Author:
    name: str = "gitops-compiler"
    email: str = "gitops-compiler@users.noreply.github.com"


class PushRace(Exception):
    """The branch moved between our fetch and our push: fetch, rebuild, retry."""


def check_branch(name: str, what: str = "branch") -> str:
    if not _BRANCH.match(name) or name.endswith(".lock"):
        raise UsageError(f"{what} {name!r} is not a valid git branch name")
    return name


def split_credentials(url: str) -> tuple[str, str, str]:
    """`url` without the password of its user info, and that user and password
    (unquoted; empty when there is none). A password on git's command line shows
    in `ps` and /proc/<pid>/cmdline to every user of the machine, and git hands
    the URL on to `git remote-http` as an argument too (issue 15, class 7)."""
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:  # not a URL (a path, scp-like `host:path`): nothing to take out
        return url, "", ""
    if password is None:
        return url, "", ""
    userinfo, _, host = parts.netloc.rpartition("@")
    # Over http(s) the user travels in the header with the password; over ssh git
    # cannot use a URL's password at all, and the user names the account.
    keep = "" if parts.scheme.lower() in _HTTP else f"{userinfo.partition(':')[0]}@"
    bare = urlunsplit(parts._replace(netloc=f"{keep}{host}"))
    return bare, unquote(user or ""), unquote(password)


def git_environment(environ: Mapping[str, str], url: str) -> dict[str, str]:
    """Ours, plus: never prompt (CI has no terminal), C messages (we parse some),
    and the credentials as an HTTP header, passed in the environment so they are
    never on a command line: GITOPS_GIT_TOKEN's, else the URL's user info (which
    `split_credentials` takes out of the URL git is given)."""
    register_url(url)  # a token in the URL's user info is masked as one from the environment
    env = dict(environ)
    env.update({"GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never", "LC_ALL": "C"})
    if not url.lower().startswith(("https://", "http://")):
        return env  # a path or ssh: a header would be sent nowhere useful
    _, url_user, url_password = split_credentials(url)
    token = environ.get("GITOPS_GIT_TOKEN")
    if token:  # the documented way wins over a URL someone pasted
        user = environ.get("GITOPS_GIT_USERNAME", "x-access-token")
    elif url_password:
        user, token = url_user, url_password
    else:
        return env
    register(token)
    basic = base64.b64encode(f"{user}:{token}".encode()).decode()
    register(basic)
    count = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
    env[f"GIT_CONFIG_KEY_{count}"] = "http.extraHeader"
    env[f"GIT_CONFIG_VALUE_{count}"] = f"Authorization: Basic {basic}"
    env["GIT_CONFIG_COUNT"] = str(count + 1)
    return env


class Workspace:
    """A scratch bare repository that talks to one remote (`url`, any git URL or path)."""

    def __init__(
        self,
        url: str,
        directory: Path,
        *,
        environ: Mapping[str, str],
        author: Author = Author(),
        timeout: float = GIT_TIMEOUT,
        existing: bool = False,
    ) -> None:
        self.url, _, _ = split_credentials(url)  # the only form git and messages see
        self.dir = directory
        self._env = git_environment(environ, url)
        self._env.setdefault("GIT_AUTHOR_NAME", author.name)
        self._env.setdefault("GIT_AUTHOR_EMAIL", author.email)
        self._env.setdefault("GIT_COMMITTER_NAME", author.name)
        self._env.setdefault("GIT_COMMITTER_EMAIL", author.email)
        self._timeout = timeout
        self._prefix: tuple[str, ...] = ("git", f"--git-dir={directory}")
        if not existing:
            self._git("init", "--quiet", "--bare", str(directory), bare_dir=False)

    @classmethod
    def existing(cls, directory: Path, *, environ: Mapping[str, str]) -> Workspace:
        """The git repository that holds `directory` (for `diff --against REF`)."""
        found = cls(str(directory), directory, environ=environ, existing=True)
        found._prefix = ("git", "-C", str(directory))
        return found

    def resolve(self, ref: str) -> str:
        """The commit a ref names (`main`, `HEAD~1`, `origin/main`, a sha)."""
        if ref.startswith("-"):
            raise UsageError(f"{ref!r} is not a git revision")
        ran = self._run(("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"))
        if ran.returncode != 0:
            raise UsageError(
                f"{ref!r} is neither a directory nor a commit of the git repository here"
            )
        return ran.stdout.decode().strip()

    # -- the remote -------------------------------------------------------------------

    def heads(self, *branches: str) -> dict[str, str]:
        """The remote's commit for each branch that exists (`git ls-remote`)."""
        refs = [f"refs/heads/{b}" for b in branches]
        out = self._git("ls-remote", "--", self.url, *refs, what="read the remote")
        found = {}
        for line in out.decode().splitlines():
            sha, _, ref = line.partition("\t")
            if ref in refs:
                found[ref.removeprefix("refs/heads/")] = sha
        return found

    def fetch(self, *branches: str) -> None:
        refspecs = [f"+refs/heads/{b}:refs/remotes/origin/{b}" for b in branches]
        self._git("fetch", "--quiet", "--no-tags", "--", self.url, *refspecs, what="fetch")

    def push(self, commit: str, branch: str, *, expect: str | None) -> None:
        """Point the remote `branch` at `commit` if it is still at `expect` (None: absent).

        `--force-with-lease` with an explicit expectation: we replace only what we
        saw, never a commit someone pushed since. A moved branch is `PushRace`.
        """
        lease = f"--force-with-lease=refs/heads/{branch}:{expect or ''}"
        argv = ("push", "--porcelain", lease, "--", self.url, f"{commit}:refs/heads/{branch}")
        ran = self._run(argv)
        if ran.returncode == 0:
            return
        text = (ran.stdout + ran.stderr).decode("utf-8", "replace")
        if _DENIED_NON_FAST_FORWARD in text:
            raise OutsideError(
                f"the remote refuses to replace {branch}: it denies non-fast-forward "
                "updates there (receive.denyNonFastForwards or a branch protection rule), "
                "and a publish rebuilds its branch on the current base: allow force pushes "
                "to it, or delete it so that the next publish creates it afresh"
                f"{proc.indented(ran.stderr)}"
            )
        if any(reason in text for reason in _RACE):
            raise PushRace(branch)
        raise OutsideError(f"push to {branch} failed: {proc.failure(ran)}{_credentials_hint(ran)}")

    # -- reading -----------------------------------------------------------------------

    def tree_of(self, commit: str) -> str:
        return self._git("rev-parse", f"{commit}^{{tree}}").decode().strip()

    def subdirectories(self, commit: str, directory: str) -> list[str]:
        """The names of the directories right under `directory` at `commit`."""
        listing = self._git("ls-tree", "-z", "--full-tree", commit, "--", f"{directory}/")
        names = []
        for entry in listing.split(b"\0"):
            meta, _, name = entry.partition(b"\t")
            if meta.split()[1:2] == [b"tree"]:
                names.append(name.decode("utf-8", "surrogateescape").rpartition("/")[2])
        return sorted(names)

    def read_files(
        self, commit: str, prefixes: Sequence[str], keep: Callable[[str], bool] | None = None
    ) -> dict[str, bytes]:
        """The files under `prefixes` at `commit` (a commit or a tree), path -> bytes; with
        `keep`, those whose path it keeps (symlinks and submodules are not ours and are
        skipped)."""
        listing = self._git("ls-tree", "-r", "-z", "--full-tree", commit, "--", *prefixes)
        wanted: list[tuple[str, str]] = []
        for entry in listing.split(b"\0"):
            if not entry:
                continue
            meta, _, name = entry.partition(b"\t")
            mode, kind, sha = meta.decode().split()
            path = name.decode("utf-8", "surrogateescape")
            if kind == "blob" and mode in ("100644", "100755") and (keep is None or keep(path)):
                wanted.append((sha, path))
        if not wanted:
            return {}
        stdin = "".join(f"{sha}\n" for sha, _ in wanted).encode()
        out = self._git("cat-file", "--batch", stdin=stdin)
        files: dict[str, bytes] = {}
        at = 0
        for sha, path in wanted:
            header_end = out.index(b"\n", at)
            got, _kind, size = out[at:header_end].decode().split()
            if got != sha:
                raise OutsideError(f"git cat-file answered {got} for {sha}")
            start = header_end + 1
            files[path] = out[start : start + int(size)]
            at = start + int(size) + 1  # the content is followed by a newline
        return files

    def commits_between(self, base: str, tip: str) -> list[tuple[str, str, str]]:
        """(sha, author, message) of the commits on `tip` that are not on `base`."""
        out = self._git("log", "-z", "--format=%H%x1f%an <%ae>%x1f%B", f"{base}..{tip}")
        found = []
        for record in out.decode("utf-8", "replace").split("\0"):
            if record.strip():
                sha, author, message = record.strip("\n").split("\x1f", 2)
                found.append((sha, author, message))
        return found

    # -- writing -----------------------------------------------------------------------

    def tree_with(self, commit: str, files: Mapping[str, bytes], owned: Sequence[str]) -> str:
        """The tree of `commit` with the `owned` directories replaced by `files`."""
        index = self.dir / "publish.index"
        env = {"GIT_INDEX_FILE": str(index)}
        self._git("read-tree", commit, env=env)
        pathspecs = "".join(f"{o}\n" for o in owned).encode()
        self._git(
            "rm", "-r", "--cached", "--quiet", "--ignore-unmatch",
            "--pathspec-from-file=-", env=env, stdin=pathspecs,
        )  # fmt: skip
        if files:
            blobs = self._blobs(files)
            info = "".join(f"100644 {blobs[path]}\t{path}\n" for path in sorted(files)).encode()
            self._git("update-index", "--add", "--index-info", env=env, stdin=info)
        tree = self._git("write-tree", env=env).decode().strip()
        index.unlink(missing_ok=True)
        return tree

    def commit(self, tree: str, parent: str, message: str) -> str:
        out = self._git("commit-tree", tree, "-p", parent, "-F", "-", stdin=message.encode())
        return out.decode().strip()

    def _blobs(self, files: Mapping[str, bytes]) -> dict[str, str]:
        """Write each file's bytes as a blob, unfiltered; path -> blob id."""
        staging = self.dir / "publish.files"
        names = []
        for number, path in enumerate(sorted(files)):
            target = staging / f"{number}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(files[path])
            names.append(str(target))
        stdin = "".join(f"{n}\n" for n in names).encode()
        out = self._git("hash-object", "-w", "--no-filters", "--stdin-paths", stdin=stdin)
        shas = out.decode().split()
        shutil.rmtree(staging, ignore_errors=True)
        return dict(zip(sorted(files), shas, strict=True))

    # -- the door ----------------------------------------------------------------------

    def _run(
        self,
        argv: Iterable[str],
        *,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        bare_dir: bool = True,
    ) -> proc.Completed:
        prefix = self._prefix if bare_dir else ("git",)
        return proc.run(
            [*prefix, *argv],
            cwd=None,
            env={**self._env, **(env or {})},
            timeout=self._timeout,
            stdin=stdin,
        )

    def _git(
        self,
        *argv: str,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        bare_dir: bool = True,
        what: str = "",
    ) -> bytes:
        ran = self._run(argv, env=env, stdin=stdin, bare_dir=bare_dir)
        if ran.returncode != 0:
            doing = f"cannot {what} {self.url}: " if what else ""
            raise OutsideError(f"{doing}{proc.failure(ran)}{_credentials_hint(ran)}")
        return ran.stdout


def _credentials_hint(ran: proc.Completed) -> str:
    if not any(words in ran.stderr for words in _REFUSED_CREDENTIALS):
        return ""
    return (
        "\nthe remote wants credentials that may read and push: set GITOPS_GIT_TOKEN to such "
        "a token (sent as an HTTP header), or configure a git credential helper or SSH key"
    )
