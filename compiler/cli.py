"""The command line: parse, build plain options, call one function per command.

`main(argv) -> int` is also the one place where errors become a message, a
crash log and an exit code (DESIGN.md "Exit codes").
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from compiler import cachedir, errors
from compiler.arguments import build_parser
from compiler.crashlog import write_crash_log
from compiler.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, CompilerError, UsageError
from compiler.operations import steps
from compiler.operations.logs import setup_logging
from compiler.options import Destination, Selection, SourceOptions
from compiler.outcome import Outcome
from compiler.project import load_project, project_root
from compiler.secrets import redact, register_from_environment


def _project(args: argparse.Namespace) -> Path:
    """The project's root, found once per run (issue 17: walk up like git)."""
    if not isinstance(getattr(args, "project_root", None), Path):
        args.project_root = project_root(args.project, os.environ, Path.cwd())
    root: Path = args.project_root
    return root


def _source(args: argparse.Namespace, default: str = "dynamodb") -> SourceOptions:
    return SourceOptions(
        project_dir=_project(args),
        source=args.source or default,
        endpoint_url=args.endpoint_url,
        table=args.table,
        cache=not getattr(args, "no_cache", False),
    )


def _selection(args: argparse.Namespace) -> Selection:
    clusters = [args.cluster] if isinstance(args.cluster, str) else args.cluster
    return Selection(
        clusters=tuple(clusters),
        all_clusters=getattr(args, "all", False),
        as_of=args.as_of,
        pins=tuple(args.pin),
        shard=getattr(args, "shard", None),
    )


def _destination(args: argparse.Namespace, *, rollback: bool = False) -> Destination:
    default_labels = ("gitops-compiler", "rollback") if rollback else ("gitops-compiler",)
    return Destination(
        repo=args.repo,
        base=args.base,
        branch=args.branch,
        forge=args.forge,
        forge_repo=args.forge_repo,
        labels=tuple(args.label) if args.label is not None else default_labels,
        dry_run=args.dry_run,
        rollback=rollback,
    )


# One function per command, each importing its module when called: `--help` and the
# small commands stay fast.


def _compile(args: argparse.Namespace) -> Outcome:
    from compiler.commands.compile import compile_command

    return compile_command(
        source=_source(args),
        selection=_selection(args),
        out=args.out,
        fmt=args.format,
        cue=args.cue,
    )


def _validate(args: argparse.Namespace) -> Outcome:
    from compiler.commands.compile import validate_command

    return validate_command(
        source=_source(args),
        selection=_selection(args),
        fmt=args.format,
        cue=args.cue,
        changed=args.files,
        against=args.against,
        hook=args.hook,
    )


def _explain(args: argparse.Namespace) -> Outcome:
    from compiler.commands.explain import explain_command

    return Outcome(
        explain_command(
            source=_source(args), selection=_selection(args), path=args.path, fmt=args.format
        )
    )


def _golden(args: argparse.Namespace) -> Outcome:
    from compiler.commands.golden import golden_command

    return golden_command(
        # The project file's `source:` (issue 20): a config repository's snapshot by default.
        source=_source(args, default=load_project(_project(args)).source),
        golden=args.golden or _project(args) / "golden",
        update=args.action == "update",
        fmt=args.format,
        cue=args.cue,
        hook=args.hook,
        changed=args.files,
    )


def _publish(args: argparse.Namespace) -> Outcome:
    from compiler.commands.publish import publish_command

    return publish_command(
        source=_source(args),
        selection=_selection(args),
        destination=_destination(args),
        from_dir=args.from_dir,
        cue=args.cue,
        run_id=args.run_id,
        fmt=args.format,
    )


def _rollback(args: argparse.Namespace) -> Outcome:
    from compiler.commands.publish import clear_command, rollback_command

    if args.clear is not None:
        return clear_command(source=_source(args), cluster=args.clear)
    if args.cluster is None or args.repo is None:
        raise UsageError("rollback needs --cluster NAME and --repo (only --clear NAME does not)")
    return rollback_command(
        source=_source(args),
        cluster=args.cluster,
        as_of=args.as_of,
        versions=args.versions,
        last_known_good=args.last_known_good,
        destination=_destination(args, rollback=True),
        from_dir=args.from_dir,
        cue=args.cue,
        run_id=args.run_id,
        fmt=args.format,
    )


def _watch(args: argparse.Namespace) -> Outcome:
    from compiler.commands.watch import watch_command

    # Watch names its own branches, publishes for real and always compiles.
    destination = dataclasses.replace(_destination(args), branch=None, dry_run=False)
    return watch_command(
        source=_source(args),
        destination=destination,
        cue=args.cue,
        interval=args.interval,
        max_polls=args.max_polls,
        checkpoint=args.checkpoint,
        argocd_server=args.argocd_server,
        grace=args.grace,
    )


# the service.
def _serve(args: argparse.Namespace) -> Outcome:
    from compiler.commands.serve import serve_command
    from compiler.service.replica import ServeSettings

    destination = dataclasses.replace(_destination(args), branch=None, dry_run=False)
    host, port = args.listen
    settings = ServeSettings(
        host=host,
        port=port,
        debounce=args.debounce,
        queue_size=args.queue_size,
        lease_seconds=args.lease_seconds,
        poll_interval=args.poll_interval,
        ready_interval=args.ready_interval,
        streams=not args.no_stream,
    )
    return serve_command(
        source=_source(args), destination=destination, cue=args.cue, settings=settings
    )


def _diff(args: argparse.Namespace) -> Outcome:
    from compiler.commands.diff import diff_command

    return Outcome(
        diff_command(
            source=_source(args),
            selection=_selection(args),
            against=args.against,
            repo=args.repo,
            base=args.base,
            from_dir=args.from_dir,
            exit_code=args.exit_code,
            fmt=args.format,
            cue=args.cue,
        )
    )


def _snapshot(args: argparse.Namespace) -> Outcome:
    from compiler.commands.snapshot import snapshot_command

    selection = Selection(clusters=tuple(args.cluster), all_clusters=args.all or not args.cluster)
    return Outcome(snapshot_command(source=_source(args), selection=selection, out=args.out))


def _format(args: argparse.Namespace) -> Outcome:
    from compiler.commands.format import format_command

    return Outcome(format_command(files=args.files, check=args.check))


def _table(args: argparse.Namespace) -> Outcome:
    from compiler.commands import config

    # the heads of a table written before them, and their check.
    if args.action == "verify":
        return Outcome(config.verify_table_command(source=_source(args)))
    if args.action == "migrate":
        outcome = Outcome(config.migrate_table_command(source=_source(args)))
    else:
        outcome = Outcome(config.create_table_command(source=_source(args)))
    # `table create --stream` / `table migrate --stream` turn on the stream.
    if getattr(args, "stream", False) and outcome.exit_code == 0:
        from compiler.commands.serve import enable_stream_command

        return enable_stream_command(source=_source(args))
    return outcome


def _config(args: argparse.Namespace) -> Outcome:
    from compiler.commands import config

    if args.config_command == "put":
        return Outcome(
            config.put_command(
                source=_source(args),
                layer=args.layer,
                file=args.file,
                author=args.author,
                comment=args.comment,
                force=args.force,
                cue=args.cue,
            )
        )
    if args.config_command == "approve":
        return Outcome(
            config.approve_command(
                source=_source(args),
                layer=args.layer,
                number=args.number,
                author=args.author,
                force=args.force,
                cue=args.cue,
            )
        )
    if args.config_command == "retire":
        return Outcome(
            config.retire_command(
                source=_source(args), layer=args.layer, author=args.author, comment=args.comment
            )
        )
    if args.config_command == "history":
        return Outcome(config.history_command(source=_source(args), layer=args.layer))
    return Outcome(config.seed_command(source=_source(args), directory=args.directory))


def _local(args: argparse.Namespace) -> Outcome:
    from compiler.commands.local import local_command

    return Outcome(local_command(source=_source(args), action=args.action))


def _clusters(args: argparse.Namespace) -> Outcome:
    from compiler.commands.clusters import clusters_list_command

    return Outcome(clusters_list_command(source=_source(args), fmt=args.format))


def _explain_rule(args: argparse.Namespace) -> Outcome:
    from compiler.commands.explain_rule import explain_rule_command

    return Outcome(
        explain_rule_command(rule_id=args.rule, all_rules_wanted=args.all, markdown=args.markdown)
    )


# a config repository of one's own.
def _init(args: argparse.Namespace) -> Outcome:
    from compiler.commands.init import init_command
    from compiler.scaffold import InitOptions, parse_envs

    options = InitOptions(
        directory=args.directory,
        envs=parse_envs(args.env),
        ci=args.ci,
        shards=args.shards,
        force=args.force,
        existing=args.existing,
    )
    return Outcome(init_command(options=options))


def _doctor(args: argparse.Namespace) -> Outcome:
    from compiler.commands.doctor import doctor_command

    return Outcome(doctor_command(source=_source(args), purpose=args.purpose, cue=args.cue))


_COMMANDS: dict[str, Callable[[argparse.Namespace], Outcome]] = {
    "compile": _compile,
    "validate": _validate,
    "explain": _explain,
    "golden": _golden,
    "publish": _publish,
    "rollback": _rollback,
    "watch": _watch,
    "serve": _serve,
    "diff": _diff,
    "snapshot": _snapshot,
    "format": _format,
    "table": _table,
    "config": _config,
    "explain-rule": _explain_rule,
    "local": _local,
    "clusters": _clusters,
    "init": _init,
    "doctor": _doctor,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # pre-commit appends file names after a hook's `args:`, so `golden check --source X
    # a.yaml` puts options between a command's positionals; argparse leaves the
    # names over. They are the command's files; anything else is still an error.
    if extra and isinstance(getattr(args, "files", None), list):
        if any(word.startswith("-") for word in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.files += [Path(word) for word in extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    register_from_environment(os.environ)
    # Step lines: always as JSON (for machines); as text only for a person at a terminal.
    quiet = args.log_format == "text" and not sys.stderr.isatty()
    setup_logging(args.log_format, level=logging.WARNING if quiet else logging.INFO)
    try:
        with (
            cachedir.turned_off(getattr(args, "no_cache", False)),
            steps.opened(
                run_id=getattr(args, "run_id", None),
                audit_path=args.audit_log,
                alert=args.alert,
                status=args.status_webhook,
            ) as operations,
        ):
            code = _run(args, operations)
    except CompilerError as err:  # the operations context itself could not open
        print(f"error: {redact(str(err))}", file=sys.stderr)
        return err.exit_code
    return code


def _run(args: argparse.Namespace, operations: steps.Operations) -> int:
    """Dispatch; every failure becomes a message, an exit code and an alert."""
    error: str | None = None
    try:
        outcome = _COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe fails here, not in Python's flush at exit
    except CompilerError as err:
        if args.debug:
            traceback.print_exc()
        error = redact(str(err))
        print(f"error: {error}", file=sys.stderr)
        outcome = Outcome(err.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        error, outcome = "interrupted", Outcome(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as a tool SIGPIPE ends does; what
        # is still buffered goes nowhere, so Python's flush at exit cannot fail again.
        with suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        error, outcome = "output closed by its reader", Outcome(errors.EXIT_BROKEN_PIPE)
    except Exception as err:
        if args.debug:
            raise
        log = write_crash_log()
        error = f"internal error: {type(err).__name__}: {redact(str(err))}"
        print(f"{error} (details in {log})", file=sys.stderr)
        outcome = Outcome(EXIT_INTERNAL)
    _notify(args.command, operations, outcome, error)
    return outcome.exit_code


def _notify(
    command: str, operations: steps.Operations, outcome: Outcome, error: str | None
) -> None:
    """Alert on an aborted run; the final status always. Hooks never change the exit code."""
    if command not in _OPERATED:
        return
    code = outcome.exit_code
    record = {
        "command": command,
        "run_id": operations.run.id,
        "trace_id": outcome.trace_id or operations.run.trace("emit"),
        "status": "failed" if code != 0 else outcome.status or "success",
        "exit_code": code,
        "clusters": list(outcome.clusters),
        "pull_request": outcome.pull_request,
        "pull_request_name": outcome.pull_request_name,
    }
    if error is not None or code == 1:
        operations.notifier.alert({**record, "error": error or "violations found"})
    operations.notifier.status(record)


# The commands that run as jobs: traced, alerted and reported.
_OPERATED = frozenset({"compile", "validate", "publish", "rollback", "watch", "golden", "serve"})


if __name__ == "__main__":
    raise SystemExit(main())
