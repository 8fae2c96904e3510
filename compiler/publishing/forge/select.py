"""Which forge opens the pull request: `--forge github|gitlab|none|auto`.

`auto` (the default) reads the Argo CD repository's URL and the CI job's
environment, in this order:

1. a github.com URL, or in GitHub Actions a URL on the host of GITHUB_SERVER_URL: GitHub;
2. a gitlab.com URL, or in GitLab CI a URL on CI_SERVER_HOST: GitLab;
3. a URL that names neither (a local path, another host) with `--forge-repo`: the forge
   whose API the environment names (GITHUB_API_URL or CI_API_V4_URL, one of them);
4. otherwise none: the branch is pushed and a note says why no pull request was opened.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from compiler.errors import UsageError
from compiler.publishing.forge import MERGE_REQUEST, PULL_REQUEST, Forge, Term

FORGES = ("auto", "github", "gitlab", "none")
_API_VARIABLES = (("github", "GITHUB_API_URL"), ("gitlab", "CI_API_V4_URL"))  # set by their CIs

_SCP = re.compile(r"(?:[^@/\s]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/\s].*)")


@dataclass(frozen=True)
class Remote:
    """A repository URL's parts that say where its forge is."""

    host: str  # lower case, without user info or port
    api_root: str  # https://host[:port] for an https URL; https://host for ssh
    path: str  # the project path, without `.git` and slashes around it


@dataclass(frozen=True)
class Choice:
    """The forge chosen, and for `auto` the sentence that says which and why."""

    kind: str  # "github", "gitlab" or "none"
    note: str | None = None


def parse_remote(url: str) -> Remote | None:
    """The host and path of a git URL (https, ssh or scp form); None for a local path."""
    url = url.strip()
    if "://" in url:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        if parts.scheme not in ("http", "https", "ssh", "git+ssh") or not parts.hostname:
            return None
        host = parts.hostname.lower()
        web = parts.scheme in ("http", "https")
        shown_port = f":{port}" if web and port else ""
        root = f"{parts.scheme if web else 'https'}://{host}{shown_port}"
        path = parts.path
    else:
        match = _SCP.fullmatch(url)
        if match is None or "/" in match["host"]:
            return None
        host, path = match["host"].lower(), match["path"]
        root = f"https://{host}"
    path = path.strip("/").removesuffix(".git").strip("/")
    return Remote(host, root, path) if "/" in path else None


def choose_forge(
    kind: str, repo_url: str, forge_repo: str | None, environ: Mapping[str, str]
) -> Choice:
    if kind not in FORGES:
        raise UsageError(f"--forge {kind!r}: choose one of {', '.join(FORGES)}")
    if kind != "auto":
        return Choice(kind)
    remote = parse_remote(repo_url)
    host = remote.host if remote else None
    github_host = (
        _host(environ.get("GITHUB_SERVER_URL")) if _true(environ, "GITHUB_ACTIONS") else None
    )
    gitlab_host = environ.get("CI_SERVER_HOST", "").lower() if _true(environ, "GITLAB_CI") else None
    if host is not None and host in ("github.com", github_host):
        return Choice("github", f"--forge auto: GitHub, from the host {host}")
    if host is not None and host in ("gitlab.com", gitlab_host):
        return Choice("gitlab", f"--forge auto: GitLab, from the host {host}")
    if forge_repo:
        named = [k for k, v in _API_VARIABLES if environ.get(v)]
        if len(named) == 1:
            return Choice(
                named[0], f"--forge auto: {named[0]}, from its API URL in the environment"
            )
        raise UsageError(
            f"--forge-repo {forge_repo} but the forge cannot be told from --repo {repo_url!r} "
            "or the environment: pass --forge github or --forge gitlab"
        )
    where = f"the host {host}" if host else "a local repository"
    return Choice(
        "none",
        f"--forge auto: no forge for {where} (not github.com, gitlab.com or this CI's "
        "server): the branch is pushed, open its pull request yourself or pass --forge",
    )


def term_of(choice: Choice | None) -> Term:
    """The words for what the chosen forge opens: GitLab's merge requests, else (GitHub,
    or a branch pushed for someone to open by hand) pull requests."""
    return MERGE_REQUEST if choice is not None and choice.kind == "gitlab" else PULL_REQUEST


def make_forge(
    choice: Choice, repo_url: str, forge_repo: str | None, environ: Mapping[str, str]
) -> Forge | None:
    """The forge client for a choice; a UsageError when its repository, API or token
    cannot be told (before any work is done)."""
    if choice.kind == "none":
        return None
    if choice.kind == "github":
        from compiler.publishing.forge.github import github_forge_from_env, parse_repo

        name = forge_repo or parse_repo(repo_url)
        if name is None:
            raise UsageError(
                f"cannot tell the GitHub repository from {repo_url!r}: "
                "pass --forge-repo OWNER/NAME, or --forge none to push the branch only"
            )
        return github_forge_from_env(name, environ)
    from compiler.publishing.forge.gitlab import gitlab_forge_from_env

    remote = parse_remote(repo_url)
    project = forge_repo or (remote.path if remote else None)
    if project is None:
        raise UsageError(
            f"cannot tell the GitLab project from {repo_url!r}: "
            "pass --forge-repo GROUP/SUB/NAME, or --forge none to push the branch only"
        )
    api_url = environ.get("CI_API_V4_URL")
    if remote is not None and (api_url is None or _host(api_url) != remote.host):
        api_url = f"{remote.api_root}/api/v4"  # the CI's own API is for the CI's own server
    if api_url is None:
        raise UsageError(
            f"cannot tell the GitLab API from {repo_url!r}: set CI_API_V4_URL "
            "(e.g. https://gitlab.example.com/api/v4)"
        )
    return gitlab_forge_from_env(project, environ, api_url)


def _true(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").lower() == "true"


def _host(url: str | None) -> str | None:
    try:
        return urlsplit(url).hostname if url else None
    except ValueError:
        return None
