"""`python -m bench.serve_load` keeps working: a tiny load run end to end (no timing).

It starts what the full run starts (moto's server in its own process, a bare
repository, one `serve`), sends a few calls and writes a few versions, and
reads the report: every call answered, triggers coalesced into fewer runs,
the queue bound held, one pull request on the (fake, HTTP-level) GitHub, both
processes' RSS reported, serve stopped cleanly.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import serve_load


def test_a_tiny_load_run_reports_coalesced_publishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_load.run(calls=6, records=16, workdir=tmp_path)
    said = capsys.readouterr().out

    answers = dict(re.findall(r"(\d{3}): (\d+)", said.split("call answers: ")[1].splitlines()[0]))
    assert sum(int(n) for n in answers.values()) == 6 and set(answers) <= {"202", "429"}
    runs = sum(float(v) for v in re.findall(r"gitops_runs_total\{[^}]*\} (\S+)", said))
    triggers = sum(
        float(v)
        for v in re.findall(r'gitops_triggers_total\{[^}]*result="accepted"[^}]*\} (\S+)', said)
    )
    assert 0 < runs < triggers  # coalesced: fewer compiles than triggers
    depth = float(re.search(r"largest sampled (\S+) \(bound (\d+)\)", said).group(1))  # type: ignore[union-attr]
    assert depth <= 100
    assert re.search(r"serve RSS KiB: start \d+ .*end \d+", said)
    assert re.search(r"moto RSS KiB: start \d+, end \d+", said)
    assert re.search(r"at each tenth of the run: (\d+ ){10}\d+\n", said)
    assert re.search(r"^branch \S+: \d+ commit\(s\)$", said, re.MULTILINE)
    # One scope, one pull request: the runs after the first update it.
    assert re.search(
        r"^pull requests: 1 opened for 1 branch\(es\); 1 create and \d+ update", said, re.MULTILINE
    )
    assert "serve exited 0 on SIGTERM" in said
