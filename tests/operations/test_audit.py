"""The audit log: whole JSON lines with every field, failures recorded, two writers at once."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from compiler import secrets
from compiler.errors import UsageError
from compiler.operations.audit import AuditLog, content_hash
from tests.conftest import ROOT

TOKEN = "ghp_AuditMustNeverShowThis99"
FIELDS = {
    "time",
    "run_id",
    "trace_id",
    "step",
    "cluster",
    "inputs",
    "outputs",
    "outcome",
    "duration",
}
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(autouse=True)
def _own_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "_known", set())


def test_a_step_is_one_sorted_line_with_every_field(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with (
        AuditLog(path) as audit,
        audit.step(
            "r1", "ms-r1-emit-e30", "emit", "prod-eks-1", {"defaults": 3, "env/prod": 7}
        ) as outputs,
    ):
        outputs["tree"] = content_hash({"a.yaml": b"a: 1\n"})
    text = path.read_text()
    assert text.endswith("\n") and text.count("\n") == 1
    (entry,) = lines(path)
    assert set(entry) == FIELDS
    assert list(json.loads(text)) == sorted(FIELDS)
    assert _TIME.fullmatch(entry["time"])
    assert entry["run_id"] == "r1" and entry["trace_id"] == "ms-r1-emit-e30"
    assert entry["step"] == "emit" and entry["cluster"] == "prod-eks-1"
    assert entry["inputs"] == {"defaults": 3, "env/prod": 7}
    assert entry["outputs"]["tree"].startswith("sha256:")
    assert entry["outcome"] == "ok"
    assert 0 <= entry["duration"] < 5


def test_records_append_to_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"earlier":true}\n')
    for n in range(2):
        with AuditLog(path) as audit:
            audit.record(
                run_id=f"r{n}",
                trace_id=f"ms-r{n}-git-e40",
                step="git",
                cluster=None,
                inputs={},
                outputs={"pushed": ["a", "b"]},
                outcome="ok",
                duration=0.25,
            )
    assert [e.get("run_id") for e in lines(path)] == [None, "r0", "r1"]
    assert lines(path)[1]["cluster"] is None and lines(path)[1]["duration"] == 0.25


def test_a_new_log_is_readable_by_all_and_writable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new.jsonl"
    AuditLog(path).close()
    assert path.read_bytes() == b""
    assert path.stat().st_mode & 0o777 & ~0o644 == 0  # 0o644, less what the umask takes


def test_a_failing_step_is_recorded_as_failed_and_the_error_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as audit:
        with (
            pytest.raises(RuntimeError, match="cue exploded"),
            audit.step("r1", "ms-r1-policy-e20", "policy", "dev-1", {"defaults": 1}) as outputs,
        ):
            outputs["checked"] = 4
            raise RuntimeError("cue exploded")
        with pytest.raises(KeyboardInterrupt), audit.step("r1", "t", "git", None, {}):
            raise KeyboardInterrupt
    failed, interrupted = lines(path)
    assert failed["outcome"] == "failed" and failed["error"] == "RuntimeError: cue exploded"
    assert failed["outputs"] == {"checked": 4}
    assert set(failed) == FIELDS | {"error"}
    assert interrupted["outcome"] == "failed" and interrupted["error"] == "KeyboardInterrupt"


def test_every_string_is_redacted(tmp_path: Path) -> None:
    secrets.register(TOKEN)
    path = tmp_path / "audit.jsonl"
    with (
        AuditLog(path) as audit,
        pytest.raises(ValueError),
        audit.step(
            "r1",
            "ms-r1-git-e40",
            "git",
            "c1",
            {"remote": "https://me:hunter22@git.example/r.git", TOKEN: [TOKEN]},
        ) as outputs,
    ):
        outputs["said"] = f"token {TOKEN}"
        raise ValueError(f"push to https://x:{TOKEN}@h/r.git refused")
    text = path.read_text()
    assert TOKEN not in text and "hunter22" not in text
    (entry,) = lines(path)
    assert entry["inputs"] == {"remote": "https://***@git.example/r.git", "***": ["***"]}
    assert entry["outputs"] == {"said": "token ***"}
    assert entry["error"] == "ValueError: push to https://***@h/r.git refused"


def test_disabled_log_does_nothing(tmp_path: Path) -> None:
    audit = AuditLog(None)
    with audit.step("r1", "t", "emit", "c", {}) as outputs:
        outputs["x"] = 1
    audit.record(
        run_id="r", trace_id="t", step="s", cluster=None, inputs={}, outputs={}, outcome="ok",
        duration=0.0,
    )  # fmt: skip
    audit.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: tmp,  # a directory
        lambda tmp: (tmp / "file").touch() or tmp / "file" / "audit.jsonl",
        lambda tmp: tmp / "missing" / "audit.jsonl",
    ],
    ids=["directory", "under-a-file", "missing-directory"],
)
def test_an_unwritable_path_is_a_usage_error_when_opened(tmp_path: Path, make: Any) -> None:
    path = make(tmp_path)
    with pytest.raises(UsageError, match=re.escape(str(path))) as raised:
        AuditLog(path)
    assert raised.value.exit_code == 2


def test_content_hash_is_stable_and_sees_names_and_contents() -> None:
    tree = {"b/x.yaml": b"x", "a.yaml": b"a"}
    assert content_hash(tree) == content_hash(dict(reversed(tree.items())))
    # Fixed on every machine: the value itself, not just its stability within one process.
    assert content_hash({}) == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert content_hash(tree) != content_hash({"b/x.yaml": b"x", "a.yaml": b"b"})
    assert content_hash(tree) != content_hash({"b/x.yam": b"x", "a.yaml": b"a"})
    # Moving bytes between a name and the content must change the hash too.
    assert content_hash({"ab": b""}) != content_hash({"a": b"b"})


_WRITER = """
import sys
from pathlib import Path
from compiler.operations.audit import AuditLog

name, path, count = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
with AuditLog(path) as audit:
    for n in range(count):
        size = (n * 7919) % 9000  # 0 to 9 KiB: many lines longer than a 4 KiB pipe buffer
        audit.record(
            run_id=name, trace_id=f"ms-{name}-emit-e30", step="emit", cluster=f"c{n}",
            inputs={"n": n}, outputs={"size": size, "pad": name[0] * size},
            outcome="ok", duration=0.001,
        )
"""


def test_two_processes_appending_at_once_write_only_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    count = 3000
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, name, str(path), str(count)], cwd=ROOT)
        for name in ("alpha", "beta")
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    seen: dict[str, list[int]] = {"alpha": [], "beta": []}
    for line in raw.decode("ascii").splitlines():
        entry = json.loads(line)  # a torn or interleaved line would not parse
        outputs = entry["outputs"]
        assert outputs["pad"] == entry["run_id"][0] * outputs["size"]
        seen[entry["run_id"]].append(entry["inputs"]["n"])
    # Each writer's lines all there, once, in its own order.
    assert seen == {"alpha": list(range(count)), "beta": list(range(count))}
    assert max(len(line) for line in raw.splitlines()) > 4096
