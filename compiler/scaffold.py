"""`gitops-compiler init`: a config repository of one's own (issue 20).

A platform team does not fork the compiler: it installs the package and keeps
a repository of its own. `init` writes one that works at once, offline: the
project file, an overlay per environment, `policies/` for the organisation's
own rules and waivers, `.gitops/snapshot/` with an example cluster per
environment (so validate, golden check and the hooks need no DynamoDB), the
golden tree compiled from it, the pre-commit hooks and the CI workflow of this
version (GitHub Actions or GitLab CI), `.gitignore` and a README.

Nothing is overwritten without `force`; a directory that already holds files
is refused unless `existing` (then its files are kept and only missing ones
written).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from compiler import __version__, scaffold_text
from compiler.errors import InputError, UsageError
from compiler.overlay_format import format_overlay
from compiler.policy.rulesets import builtin_rule_sets

_ENV = re.compile(r"^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$")
CI_CHOICES = ("github", "gitlab", "none")
WORKFLOW_FILE = ".github/workflows/gitops-compiler.yml"
GITLAB_CI_FILE = ".gitlab-ci.yml"
SNAPSHOT_DIR = ".gitops/snapshot"


@dataclass(frozen=True)
class InitOptions:
    directory: Path
    envs: Sequence[str] = ("dev", "prod")
    ci: str = "github"
    shards: int = 1  # the publish job as a matrix of N jobs, `--shard i/N` each
    force: bool = False  # overwrite files that exist
    existing: bool = False  # write into a directory that already holds files


@dataclass
class InitResult:
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # existed, left alone


def parse_envs(text: str) -> tuple[str, ...]:
    """`dev,prod` -> ("dev", "prod"); each a DNS-1123 label, no repeats."""
    envs = tuple(e.strip() for e in text.split(",") if e.strip())
    if not envs:
        raise UsageError("--env: name at least one environment, e.g. --env dev,prod")
    for env in envs:
        if not _ENV.match(env):
            raise UsageError(f"--env: {env!r} is not a DNS-1123 label (a-z, 0-9, '-')")
    if len(set(envs)) != len(envs):
        raise UsageError(f"--env: an environment is named twice in {text!r}")
    return envs


def repository_files(options: InitOptions) -> dict[str, str]:
    """Every file but golden/, by path relative to the repository."""
    t = scaffold_text
    common = {"repository": t.PROJECT_REPOSITORY, "version": __version__}
    files = {
        "gitops-compiler.yaml": t.PROJECT_FILE.format(
            **common, rule_sets=", ".join(builtin_rule_sets())
        ),
        "policies/organisation.cue": t.OWN_POLICY.format(),
        "policies/waivers.yaml": t.WAIVERS.format(),
        f"{SNAPSHOT_DIR}/defaults.yaml": t.DEFAULTS.format(created_at=t.CREATED_AT),
        ".pre-commit-config.yaml": t.PRE_COMMIT.format(**common),
        ".gitignore": t.GITIGNORE,
        "README.md": t.README.format(
            **common, env_list=", ".join(options.envs), ci=t.README_CI[options.ci]
        ),
    }
    for env in options.envs:
        overlay = t.OVERLAY.format(env=env)
        path = f"overlays/{env}/10-platform.yaml"
        # Canonical by construction: the gitops-format hook finds nothing to change.
        files[path] = format_overlay(overlay.encode(), path).decode()
        record = {"env": env, "created_at": t.CREATED_AT}
        files[f"{SNAPSHOT_DIR}/env/{env}.yaml"] = t.ENVIRONMENT.format(**record)
        files[f"{SNAPSHOT_DIR}/cluster/example-{env}.yaml"] = t.CLUSTER.format(**record)
    if options.ci == "github":
        files[WORKFLOW_FILE] = workflow(options.shards)
    elif options.ci == "gitlab":
        files[GITLAB_CI_FILE] = gitlab_ci(options.shards)
    return files


def workflow(shards: int) -> str:
    t = scaffold_text
    matrix, shard_args = "", ""
    if shards > 1:
        matrix = t.MATRIX.format(shards=", ".join(str(i) for i in range(1, shards + 1)))
        shard_args = f" --shard ${{{{ matrix.shard }}}}/{shards}"
    return t.WORKFLOW.format(
        action=t.ACTION, version=__version__, matrix=matrix, shard_args=shard_args
    )


def gitlab_ci(shards: int) -> str:
    """`.gitlab-ci.yml`; with shards, the publish job runs `parallel: N`, and each of its
    jobs publishes `--shard CI_NODE_INDEX/CI_NODE_TOTAL` (GitLab numbers them from 1)."""
    t = scaffold_text
    parallel, shard_args = "", ""
    if shards > 1:
        parallel = t.GITLAB_PARALLEL.format(shards=shards)
        shard_args = ' --shard "$CI_NODE_INDEX/$CI_NODE_TOTAL"'
    return t.GITLAB_CI.format(
        version=__version__, cue_version=t.CUE_RELEASE, parallel=parallel, shard_args=shard_args
    )


def init_repository(options: InitOptions) -> InitResult:
    root = options.directory
    if root.exists() and not root.is_dir():
        raise UsageError(f"init: {root} is a file, not a directory")
    if root.is_dir() and any(root.iterdir()) and not (options.existing or options.force):
        raise UsageError(
            f"init: {root} is not empty; pass --existing to add the missing files "
            "(existing ones are kept), or --force to overwrite them"
        )
    if options.shards < 1:
        raise UsageError("init: --shards must be 1 or more")
    if options.ci not in CI_CHOICES:
        raise UsageError(f"init: --ci {options.ci!r}: choose one of {', '.join(CI_CHOICES)}")
    if options.ci == "gitlab" and options.shards > 200:
        raise UsageError("init: --shards: GitLab runs at most 200 parallel jobs")
    result = InitResult()
    _write(root, repository_files(options), options.force, result)
    _write(root, _golden(root), options.force, result)
    return result


def _write(root: Path, files: Mapping[str, str | bytes], force: bool, result: InitResult) -> None:
    for name in sorted(files):
        path = root / name
        if path.exists() and not force:
            result.kept.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        data = files[name]
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        result.written.append(name)


def _golden(root: Path) -> dict[str, bytes]:
    """The tree the example clusters compile to, as golden/ holds it.

    Compiled without the CUE policies (`init` needs no cue; the scaffold is
    clean by construction, and `golden check` runs them); any finding here is a
    bug of the templates.
    """
    from compiler.layers import load_inputs
    from compiler.pipeline import build_checks, compile_inputs, select_clusters
    from compiler.project import load_project
    from compiler.sources import Pin
    from compiler.sources.snapshot import SnapshotStore

    project = load_project(root)
    store = SnapshotStore(root / SNAPSHOT_DIR)
    names = select_clusters(store, (), all_clusters=True)
    inputs = load_inputs(store, project, names, Pin())
    result = compile_inputs(inputs, project, build_checks(project, policies=None))
    if result.violations:
        first = result.violations[0]
        raise InputError(
            f"init: the example in {root} does not compile cleanly ({first.cluster}: "
            f"{first.path}: {first.message}); was a file kept from before?"
        )
    return {f"golden/{name}": data for name, data in result.files.items()}
