"""The one door to subprocesses: what it returns, and how every failure reads."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from compiler import proc
from compiler.errors import EXIT_OUTSIDE, OutsideError

PY = sys.executable


def script(tmp_path: Path, body: str, *, mode: int = 0o755) -> Path:
    path = tmp_path / "tool"
    path.write_text(body)
    path.chmod(mode)
    return path


def test_output_code_stdin_cwd_and_env(tmp_path: Path) -> None:
    code = "import os, sys; print(os.getcwd(), os.environ['X']); sys.stderr.buffer.write(sys.stdin.buffer.read()); sys.exit(3)"
    ran = proc.run([PY, "-c", code], cwd=tmp_path, env={"X": "y"}, timeout=30, stdin=b"in\xff")
    assert ran == proc.Completed((PY, "-c", code), 3, f"{tmp_path} y\n".encode(), b"in\xff")


def test_no_stdin_means_end_of_file(tmp_path: Path) -> None:
    ran = proc.run(
        [PY, "-c", "import sys; print(len(sys.stdin.read()))"], cwd=None, env=None, timeout=30
    )
    assert ran.stdout == b"0\n"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: [str(tmp / "nothing")], "cannot run: no such executable"),
        (lambda tmp: ["no-such-command-anywhere"], "cannot run: no such executable"),
        (
            lambda tmp: [script(tmp, "#!/nonexistent/node\n")],
            "cannot run: the interpreter on its #! line was not found",
        ),
        (lambda tmp: [script(tmp, "#!/bin/sh\n", mode=0o644)], "cannot run: not executable"),
    ],
)
def test_a_command_that_cannot_start(tmp_path: Path, make: object, message: str) -> None:
    argv = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(OutsideError) as raised:
        proc.run(argv, cwd=None, env=None, timeout=30)
    assert raised.value.exit_code == EXIT_OUTSIDE
    assert message in str(raised.value)


def test_a_missing_working_directory(tmp_path: Path) -> None:
    with pytest.raises(OutsideError, match=r"its working directory .*/gone does not exist"):
        proc.run(["true"], cwd=tmp_path / "gone", env=None, timeout=30)


def test_death_by_signal_shows_the_output(tmp_path: Path) -> None:
    tool = script(tmp_path, "#!/bin/sh\necho 'about to go' >&2\nkill -TERM $$\n")
    with pytest.raises(OutsideError) as raised:
        proc.run([tool, "arg"], cwd=None, env=None, timeout=30)
    assert str(raised.value) == f"`{tool} arg` died by signal SIGTERM\n    about to go"


def test_a_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    tool = script(tmp_path, f"#!/bin/sh\necho started >&2\nsleep 30 & echo $! > {pid_file}\nwait\n")
    with pytest.raises(OutsideError) as raised:
        proc.run([tool], cwd=None, env=None, timeout=0.5)
    assert str(raised.value) == f"`{tool}` timed out after 0.5 s and was killed\n    started"
    assert ended(int(pid_file.read_text()))  # the grandchild `sleep` too


def ended(pid: int) -> bool:
    """Gone or a zombie within 2 s (SIGKILL is not instant; PID 1 here may not reap)."""
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


def test_failure_names_command_code_and_first_lines() -> None:
    lines = "".join(f"line {n}\n" for n in range(1, 31)).encode()
    message = proc.failure(proc.Completed(("cue", "export", "x y.cue"), 1, b"", lines))
    assert message.startswith("`cue export 'x y.cue'` exited 1\n    line 1\n    line 2\n")
    assert message.endswith("    line 20\n    … (10 more lines)")
    assert proc.failure(proc.Completed(("cue",), 1, b"out\n", b"")) == "`cue` exited 1\n    out"
    assert proc.failure(proc.Completed(("cue",), 4, b"", b"")) == "`cue` exited 4 without a message"
    assert "exited 139 (128 + SIGSEGV" in proc.failure(proc.Completed(("sh",), 139, b"", b""))


def test_messages_never_show_the_environment_or_url_passwords(tmp_path: Path) -> None:
    secret = "s3cr3t-token"
    tool = script(tmp_path, "#!/bin/sh\nexit 5\n")
    ran = proc.run(
        [tool, f"https://bot:{secret}@git.example.com/repo.git"],
        cwd=None,
        env={**os.environ, "TOKEN": secret},
        timeout=30,
    )
    message = proc.failure(ran)
    assert secret not in message
    assert "https://***@git.example.com/repo.git" in message


def test_long_commands_and_lines_are_shortened() -> None:
    shown = proc.describe(["cue", *(f"/policies/file-{n}.cue" for n in range(50))])
    assert len(shown) <= 202 and shown.endswith("…`")
    assert proc.indented(b"x" * 1000) == "\n    " + "x" * 300 + "…"


def test_started_before_its_input_exists(tmp_path: Path) -> None:
    """`start` now, `finish` with the input later: what the warm cue start relies on."""
    marker = tmp_path / "started"
    code = (
        f"import sys, pathlib; pathlib.Path({str(marker)!r}).touch(); print(sys.stdin.read()[::-1])"
    )
    running = proc.start([PY, "-c", code], cwd=None, env=None, takes_stdin=True)
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:  # it runs before any input
        time.sleep(0.02)
    assert marker.exists()
    ran = running.finish(b"abc", timeout=30)
    assert (ran.returncode, ran.stdout) == (0, b"cba\n")
    running.stop()  # a no-op once finished


def test_a_started_command_that_is_never_finished_is_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    tool = script(tmp_path, f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 30\n")
    running = proc.start([tool], cwd=None, env=None, takes_stdin=True)
    deadline = time.monotonic() + 10
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    running.stop()
    assert ended(int(pid_file.read_text()))


def test_cancel_kills_the_command_and_raises(tmp_path: Path) -> None:
    import threading

    pid_file = tmp_path / "pid"
    tool = script(tmp_path, f"#!/bin/sh\nsleep 30 & echo $! > {pid_file}\nwait\n")
    cancel = threading.Event()
    cancelled_at = []

    def cancel_once_running() -> None:  # as the main thread does on a failure
        deadline = time.monotonic() + 10
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        cancelled_at.append(time.monotonic())
        cancel.set()

    canceller = threading.Thread(target=cancel_once_running)
    canceller.start()
    try:
        with pytest.raises(proc.Cancelled):
            proc.run([tool], cwd=None, env=None, timeout=60, stdin=b"", cancel=cancel)
    finally:
        canceller.join()
    # Killed at the next poll after the event, not at the 60 s timeout (loose: a busy CI).
    assert time.monotonic() - cancelled_at[0] < 20
    assert ended(int(pid_file.read_text()))


def test_a_cancellable_run_still_times_out(tmp_path: Path) -> None:
    import threading

    tool = script(tmp_path, "#!/bin/sh\necho started >&2\nexec sleep 30\n")
    with pytest.raises(OutsideError, match=r"timed out after 0\.5 s and was killed\n    started"):
        proc.run([tool], cwd=None, env=None, timeout=0.5, cancel=threading.Event())


def test_a_cancellable_run_returns_all_output(tmp_path: Path) -> None:
    """Output is kept across the polls: nothing is lost between two waits."""
    import threading

    code = (
        "import sys, time\nfor i in range(5):\n    print('x' * 70000, flush=True); time.sleep(0.15)"
    )
    ran = proc.run([PY, "-c", code], cwd=None, env=None, timeout=60, cancel=threading.Event())
    assert ran.stdout == b"".join(b"x" * 70000 + b"\n" for _ in range(5))


def test_a_cancellable_run_writes_all_of_a_large_input_to_a_slow_reader() -> None:
    """The input outlasts many polls (the reader starts late): every byte arrives and
    stdin is closed at the end (found by the bench: cue waited for the rest for ever)."""
    import threading

    data = bytes(range(256)) * 40_000  # 10 MB: far more than a pipe holds
    code = "import sys, time; time.sleep(0.7); print(len(sys.stdin.buffer.read()))"
    ran = proc.run(
        [PY, "-c", code], cwd=None, env=None, timeout=60, stdin=data, cancel=threading.Event()
    )
    assert ran.stdout == f"{len(data)}\n".encode()


def test_a_cancellable_run_returns_when_the_command_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """The watcher of `cancel` wakes when the command ends, not at its next poll: a
    one-cluster compile waited a whole poll (0.2 s) for every cue run before."""
    import threading

    monkeypatch.setattr(proc, "POLL_SECONDS", 30.0)
    started = time.monotonic()
    ran = proc.run(
        [PY, "-c", "print('done')"], cwd=None, env=None, timeout=60, cancel=threading.Event()
    )
    assert ran.stdout == b"done\n"
    assert time.monotonic() - started < 15  # a poll would be 30 s
