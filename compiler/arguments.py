"""The command line's grammar: every command, its options and their defaults.

`build_parser` only describes; `cli` turns what it parses into options objects.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from compiler import __version__
from compiler.argtypes import duration, listen, positive, shard
from compiler.errors import EXIT_BAD_INPUT
from compiler.options import DEFAULT_SNAPSHOT
from compiler.publishing.forge.select import FORGES
from compiler.report import FORMATS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse exits 2 on bad usage, as DESIGN.md wants; keep its message short.
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _source_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("config source")
    group.add_argument(
        "--project",
        type=Path,
        default=None,
        help="project directory holding gitops-compiler.yaml, overlays/, policies/ "
        "(default: $GITOPS_PROJECT, else the nearest directory upwards with gitops-compiler.yaml)",
    )
    group.add_argument(
        "--source",
        default=None,
        help="dynamodb (default), snapshot (= .gitops/snapshot) or snapshot:<dir>",
    )
    group.add_argument(
        "--endpoint-url",
        help="DynamoDB endpoint (else AWS_ENDPOINT_URL_DYNAMODB, else the project file)",
    )
    group.add_argument("--table", help="table name (default: the project file's, gitops-config)")


def _run_id_arg(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--run-id", help="the run id in trace ids ms-<run>-<step>-eNN (default: generated)"
    )


def _cue_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cue",
        metavar="PATH",
        help="the cue binary (else $GITOPS_CUE, else the project's tools/cue-native/bin/cue, else cue on PATH, else tools/cue-wasm/cue)",
    )
    parser.add_argument("--no-cache", action="store_true",
                        help="read and keep nothing in the cache dir: cue verdicts and version, unchanged clusters, compiled validators, parsed schemas (also GITOPS_NO_CACHE=1)")  # fmt: skip


def _selection_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("clusters and versions")
    group.add_argument("--cluster", action="append", default=[], metavar="NAME")
    group.add_argument("--all", action="store_true", help="every cluster with a record")
    _run_id_arg(group)
    group.add_argument("--shard", metavar="I/N", type=shard,
                       help="only the clusters of shard I of N (stable hash of the name), e.g. 2/4")  # fmt: skip
    group.add_argument("--as-of", metavar="TIME", help="use the layer versions current at TIME")
    group.add_argument("--pin", action="append", default=[], metavar="LAYER=VERSION",
                       help="use this version of a layer, e.g. --pin env/prod=3 (repeatable)")  # fmt: skip


def _publish_target_args(parser: argparse.ArgumentParser, *, repo_required: bool = True) -> None:
    target = parser.add_argument_group("where to publish")
    target.add_argument(
        "--repo",
        required=repo_required,
        help="the Argo CD repository: any git URL or a local path",
    )
    target.add_argument("--base", default="main", help="the branch Argo CD deploys (default: main)")
    target.add_argument(
        "--branch", help="the branch to push (default: gitops-compiler/<base>/<clusters>)"
    )
    target.add_argument(
        "--forge",
        choices=FORGES,
        default="auto",
        help="where pull requests are opened: auto tells GitHub or GitLab from --repo's host "
        "and the CI job; none only pushes the branch (default: auto)",
    )
    target.add_argument(
        "--forge-repo",
        metavar="OWNER/NAME",
        help="the GitHub repository or GitLab project (GROUP/SUB/NAME) (default: from --repo)",
    )
    target.add_argument(
        "--label",
        action="append",
        default=None,
        help="label for the pull request (repeatable; default: gitops-compiler)",
    )
    parser.add_argument(
        "--from", dest="from_dir", type=Path, help="publish this compiled tree, do not compile"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print branch, commit message and body; push nothing"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    _cue_arg(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gitops-compiler",
        description="Compile layered cluster bootstrap config into a Kustomize tree for Argo CD.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    ops_group = parser.add_argument_group("operations (before the command)")
    ops_group.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=os.environ.get("GITOPS_LOG_FORMAT", "text"),
        help="step log lines on stderr: text for people, json for machines",
    )
    ops_group.add_argument(
        "--audit-log",
        type=Path,
        default=os.environ.get("GITOPS_AUDIT_LOG") or None,
        help="append one JSON line per step to this file (or $GITOPS_AUDIT_LOG)",
    )
    ops_group.add_argument(
        "--alert",
        default=os.environ.get("GITOPS_ALERT") or None,
        metavar="URL|command:PROG",
        help="called with a JSON event when a run aborts (or $GITOPS_ALERT)",
    )
    ops_group.add_argument(
        "--status-webhook",
        default=os.environ.get("GITOPS_STATUS_WEBHOOK") or None,
        metavar="URL|command:PROG",
        help="sent the final status of every run (or $GITOPS_STATUS_WEBHOOK)",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    compile_ = commands.add_parser("compile", help="compile clusters into a Kustomize tree")
    _source_args(compile_)
    _selection_args(compile_)
    compile_.add_argument(
        "--out", type=Path, default=Path("out"), help="output tree (default: out)"
    )
    compile_.add_argument("--format", choices=FORMATS, default="text")
    _cue_arg(compile_)

    validate = commands.add_parser("validate", help="everything compile does, but the write")
    _source_args(validate)
    _selection_args(validate)
    validate.add_argument("--format", choices=FORMATS, default="text")
    validate.add_argument(
        "--against",
        metavar="DIR|REF[:PATH]",
        help="also fail on changes the API server refuses in place (a binding's roleRef, an "
        "IP pool's cidr) against this base tree, unless the config's replaceOnSync accepts them",
    )
    validate.add_argument(
        "files",
        nargs="*",
        type=Path,
        help="changed files (a pre-commit hook): validate the clusters they affect",
    )
    validate.add_argument(
        "--hook",
        action="store_true",
        help="as a pre-commit hook: also ask git what the commit changes (deletions and "
        "renames too) and warn when the snapshot is older than the table",
    )
    _cue_arg(validate)

    explain = commands.add_parser("explain", help="a merged value and the layers that set it")
    _source_args(explain)
    explain.add_argument("--cluster", required=True, metavar="NAME")
    explain.add_argument("--as-of", metavar="TIME")
    explain.add_argument("--pin", action="append", default=[], metavar="LAYER=VERSION")
    explain.add_argument(
        "path", nargs="?", default="", help="dotted path, e.g. namespaces.dev-team"
    )
    explain.add_argument("--format", choices=("text", "json"), default="text")

    golden = commands.add_parser("golden", help="compare with or rewrite golden/")
    golden.add_argument("action", choices=("check", "update"))
    _source_args(golden)
    golden.add_argument("--golden", type=Path, default=None, help="default: <project>/golden")
    golden.add_argument("--format", choices=FORMATS, default="text")
    golden.add_argument(
        "files", nargs="*", type=Path, help="changed files (with --hook: skip when none counts)"
    )
    golden.add_argument(
        "--hook",
        action="store_true",
        help="as a pre-commit hook: also ask git what the commit changes (deletions and "
        "renames too) and warn when the snapshot is older than the table",
    )
    _cue_arg(golden)

    config = commands.add_parser("config", help="versions in the config table")
    _config_args(config.add_subparsers(dest="config_command", required=True))

    publish = commands.add_parser(
        "publish", help="compile, then push a branch and open or update its pull request"
    )
    _source_args(publish)
    _selection_args(publish)
    _publish_target_args(publish)

    rollback = commands.add_parser(
        "rollback", help="publish a cluster compiled from older layer versions, as a rollback PR"
    )
    _source_args(rollback)
    rollback.add_argument("--cluster", metavar="NAME", help="the cluster to roll back")
    when = rollback.add_mutually_exclusive_group(required=True)
    when.add_argument("--as-of", metavar="TIME", help="the versions current at TIME")
    when.add_argument(
        "--versions",
        metavar="LAYER=N,...",
        help="explicit versions, e.g. defaults=3,env/prod=2,cluster/prod-eks-1=5",
    )
    when.add_argument(
        "--last-known-good", action="store_true",
        help="the versions Argo CD last reported Synced and Healthy (watch --argocd-server)",
    )  # fmt: skip
    when.add_argument(
        "--clear", metavar="NAME",
        help="let watch --argocd-server act on cluster NAME again; rolls nothing back",
    )  # fmt: skip
    _publish_target_args(rollback, repo_required=False)
    _run_id_arg(rollback)

    watch = commands.add_parser(
        "watch", help="poll the table; publish what new versions and new clusters affect"
    )
    _source_args(watch)
    _publish_target_args(watch)
    _run_id_arg(watch)
    watch.add_argument(
        "--interval", type=float, default=60.0, help="seconds between polls (default: 60)"
    )
    watch.add_argument("--max-polls", type=int, help="stop after N polls (default: never)")
    watch.add_argument(
        "--argocd-server",
        metavar="URL",
        help="Argo CD's API server (default: $ARGOCD_SERVER; the token: $ARGOCD_AUTH_TOKEN): "
        "record each cluster's last known good, roll a failing revision back to it",
    )
    watch.add_argument(
        "--grace",
        type=duration,
        default=600.0,
        metavar="DURATION",
        help="how long a revision may stay Degraded or failed before the rollback, "
        "e.g. 90s, 10m, 1h (default: 10m)",
    )
    watch.add_argument(
        "--checkpoint",
        type=Path,
        default=Path(".gitops/watch-checkpoint.json"),
        help="the versions already published (default: .gitops/watch-checkpoint.json)",
    )

    _serve_args(commands)

    diff = commands.add_parser("diff", help="what a publish would change, object by object")
    _source_args(diff)
    _selection_args(diff)
    diff.add_argument(
        "--against",
        required=True,
        metavar="REPO|DIR|REF[:PATH]",
        help="the Argo CD repository (a git path or URL, bare or not: its --base branch), a "
        "compiled tree, REF:PATH of the git repository here (e.g. HEAD:golden), or a branch "
        "REF of --repo",
    )
    # issue 17 (g): which Argo CD repository and branch a bare REF or a REPO means.
    diff.add_argument(
        "--repo",
        help="the Argo CD repository that --against REF reads (default: argocd.repoURL "
        "of the project file)",
    )
    diff.add_argument(
        "--base",
        help="the branch of --against REPO (default: argocd.targetRevision of the project file)",
    )
    diff.add_argument(
        "--from", dest="from_dir", type=Path, help="compare this compiled tree, do not compile"
    )
    diff.add_argument("--exit-code", action="store_true", help="exit 1 when there are differences")
    diff.add_argument("--format", choices=("text", "markdown"), default="text")
    _cue_arg(diff)

    snapshot = commands.add_parser(
        "snapshot", help="export the DynamoDB layers the project needs, for offline hooks"
    )
    _source_args(snapshot)
    snapshot.add_argument("--cluster", action="append", default=[], metavar="NAME")
    snapshot.add_argument("--all", action="store_true", help="every cluster (the default)")
    snapshot.add_argument(
        "--out", type=Path, default=Path(DEFAULT_SNAPSHOT), help=f"default: {DEFAULT_SNAPSHOT}"
    )

    fmt = commands.add_parser("format", help="rewrite overlay YAML into the canonical form")
    fmt.add_argument("--check", action="store_true", help="change nothing; exit 1 if needed")
    fmt.add_argument("files", nargs="*", type=Path)

    rule = commands.add_parser("explain-rule", help="what a rule checks, why, and the fix")
    rule.add_argument("rule", nargs="?", metavar="ID", help="a rule id, e.g. rbac-no-wildcard")
    rule.add_argument("--all", action="store_true", help="list every rule")
    rule.add_argument("--markdown", action="store_true", help="the whole reference (docs/rules.md)")

    local = commands.add_parser(
        "local", help="the project's DynamoDB on loopback, running in the background"
    )
    local.add_argument("action", choices=("up", "down", "status", "env", "save"))
    _source_args(local)

    # issue 17 (g): the fleet's list.
    clusters = commands.add_parser("clusters", help="the clusters of the config table")
    clusters.add_argument("action", choices=("list",))
    _source_args(clusters)
    clusters.add_argument("--format", choices=("text", "json"), default="text")

    table = commands.add_parser("table", help="the DynamoDB table")
    table.add_argument(
        "action",
        choices=("create", "migrate", "verify"),
        help="create the table (with its index of sort keys, which lists the clusters); "
        "migrate: add or repair every layer's head item (a malformed latest version gets "
        "none: exit 2) and add the index if missing; verify: report stale or missing heads, "
        "gaps in version numbers, malformed versions, unrecognised sort keys and a missing "
        "index (exit 1)",
    )
    _source_args(table)
    table.add_argument(
        "--stream", action="store_true", help="also turn on the table's stream (NEW_IMAGE)"
    )

    _config_repository_commands(commands)
    return parser


def _config_args(config_commands: argparse._SubParsersAction[_Parser]) -> None:
    def writer(name: str, help: str, layer: str, *, gated: bool) -> argparse.ArgumentParser:
        parser = config_commands.add_parser(name, help=help)
        _source_args(parser)
        parser.add_argument("--layer", required=True, help=layer)
        parser.add_argument("--author", help="default: $GITOPS_AUTHOR or the user name")
        if gated:
            parser.add_argument("--force", action="store_true", help="write even if the "
                                "affected clusters fail checks (the audit line says so)")  # fmt: skip
            _cue_arg(parser)
        return parser

    put = writer("put", "write a new version of a layer (a proposal under `review: required`)",
                 "defaults, env/<env> or cluster/<name>", gated=True)  # fmt: skip
    put.add_argument("file", type=Path)
    put.add_argument("-m", "--comment", default="")
    approve = writer("approve", "write another author's proposal as the layer's next version",
                     "the proposal's layer", gated=True)  # fmt: skip
    approve.add_argument("--version", type=int, required=True, dest="number", metavar="N",
                         help="the proposal's number (`config history` lists them)")  # fmt: skip
    retire = writer("retire", "write a tombstone version: the cluster leaves the tree, "
                    "history keeps it", "cluster/<name>", gated=False)  # fmt: skip
    retire.add_argument("-m", "--comment", default="")
    history = config_commands.add_parser("history", help="list the versions of a layer")
    _source_args(history)
    history.add_argument("--layer", required=True)
    seed = config_commands.add_parser("seed", help="write a snapshot directory into the table")
    _source_args(seed)
    seed.add_argument("directory", type=Path)


def _config_repository_commands(commands: argparse._SubParsersAction[_Parser]) -> None:
    init = commands.add_parser("init", help="write a working config repository into DIR")
    init.add_argument("directory", type=Path, metavar="DIR")
    init.add_argument(
        "--env", default="dev,prod", help="the environments, comma-separated (default: dev,prod)"
    )
    ci_help = "the CI: a GitHub Actions workflow (default), a .gitlab-ci.yml, or none"
    init.add_argument("--ci", choices=("github", "gitlab", "none"), default="github", help=ci_help)
    init.add_argument(
        "--shards", type=int, default=1, help="publish as a matrix of N jobs, one shard each"
    )
    init.add_argument("--force", action="store_true", help="overwrite files that exist")
    init.add_argument(
        "--existing", action="store_true", help="write into a non-empty DIR, keeping its files"
    )

    doctor = commands.add_parser("doctor", help="check what a run needs; say how to fix gaps")
    _source_args(doctor)
    doctor.add_argument(
        "--for",
        dest="purpose",
        choices=("check", "publish"),
        default="check",
        help="check: validate, golden and the hooks (default); publish: also the table, "
        "a token and the Argo CD repository",
    )
    _cue_arg(doctor)


def _serve_args(commands: argparse._SubParsersAction[_Parser]) -> None:
    serve = commands.add_parser(
        "serve", help="run as a service: stream, provisioner and poll triggers; /metrics"
    )
    _source_args(serve)
    _publish_target_args(serve)
    _run_id_arg(serve)
    group = serve.add_argument_group("service")
    group.add_argument(
        "--listen",
        type=listen,
        default=os.environ.get("GITOPS_LISTEN", "127.0.0.1:8080"),
        metavar="HOST:PORT",
        help="HTTP address (default: $GITOPS_LISTEN, else 127.0.0.1:8080)",
    )
    group.add_argument(
        "--debounce", type=positive, default=3.0,
        help="seconds of triggers coalesced into one compile and one pull request (default: 3)",
    )  # fmt: skip
    group.add_argument(
        "--queue-size", type=int, default=100,
        help="triggers waiting at most; beyond, 429 and stream back-pressure (default: 100)",
    )  # fmt: skip
    group.add_argument(
        "--lease-seconds", type=positive, default=30.0,
        help="the lease time: a dead holder is replaced within it (default: 30)",
    )  # fmt: skip
    group.add_argument(
        "--poll-interval", type=positive, default=900.0,
        help="seconds between safety-net polls of the table (default: 900)",
    )  # fmt: skip
    group.add_argument(
        "--ready-interval", type=positive, default=10.0,
        help="/readyz checks DynamoDB, git and cue at most this often (default: 10)",
    )  # fmt: skip
    group.add_argument("--no-stream", action="store_true", help="do not read the table's stream")
