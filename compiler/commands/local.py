"""`local up|down|status|env`: the project's own DynamoDB on loopback, kept between runs."""

from __future__ import annotations

import os
from contextlib import suppress

from compiler.errors import EXIT_OK, CompilerError
from compiler.localdb import LOCAL_CREDENTIALS
from compiler.localenv import down, read_state, save, state_dir, up
from compiler.options import SourceOptions, open_project
from compiler.policy.cue import find_cue


def local_command(*, source: SourceOptions, action: str) -> int:
    project = open_project(source)
    state = read_state(project)
    if action == "up":
        started, how = up(project)
        print(f"local DynamoDB at {started.endpoint} (pid {started.pid}): {how}")
        print("commands run in this project use it; `gitops-compiler local down` saves and stops")
    elif action == "down":
        print(f"local DynamoDB: {down(project)}")
    elif action == "save":
        if state is None or not state.running:
            print("local DynamoDB: not running")
        else:
            print(f"local DynamoDB: {save(project, state)} version(s) saved")
    elif action == "status":
        data = state_dir(project) / "data"
        running = state is not None and state.running
        print(
            f"local DynamoDB: {'running at ' + state.endpoint if state and running else 'stopped'}"
        )
        print(f"data: {data}{'' if data.is_dir() else ' (none yet: up seeds from examples/)'}")
    else:  # env: for other tools (the AWS CLI, scripts) that want the same server
        if state is not None:
            print(f"export AWS_ENDPOINT_URL_DYNAMODB={state.endpoint}")
        for key, value in LOCAL_CREDENTIALS.items():
            print(f"export {key}={os.environ.get(key, value)}")
        with suppress(CompilerError):  # no cue at all: nothing to export
            # The one this project's commands use (`doctor` names it), not always the
            # WebAssembly one: exporting that would switch a native-cue user to v0.4.
            print(f"export GITOPS_CUE={find_cue(None, os.environ, project=project.root)}")
    return EXIT_OK
