"""Review of table writes (issue 17): with `review: required` in the project file,
`config put` writes a proposal that every reader ignores until `config approve` by
another author writes it as the layer's next version; both steps are in the table
and the audit log. Against moto's server, through `compiler.cli.main`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compiler.project import PROJECT_FILE
from compiler.service.streams import layer_pks
from compiler.sources import Pin
from compiler.sources.maintenance import verify
from tests.test_config_commands import REPLICAS, Table, seeded, table, write  # noqa: F401

PK = "cluster#dev-k3s"
PROD_LABEL = "namespaces:\n  dev-team:\n    labels: {environment: prod}\n"


@pytest.fixture
def reviewed(seeded: Table) -> Table:  # noqa: F811
    project_file = seeded.project / PROJECT_FILE
    project_file.write_text(project_file.read_text() + "review: required\n")
    return seeded


def _propose(table: Table, tmp_path: Path, text: str = REPLICAS, *extra: str) -> int:  # noqa: F811
    file = write(tmp_path / "dev.yaml", text)
    argv = ["config", "put", "--layer", "cluster/dev-k3s", str(file), "--author", "alice"]
    return table.run(*argv, "-m", "three replicas", *extra)


def _audit(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_proposal_is_neither_the_head_nor_the_latest_version(
    reviewed: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = reviewed.store.read(PK, Pin())
    assert before is not None and before.version == 2
    assert _propose(reviewed, tmp_path) == 0
    out = capsys.readouterr().out
    assert "proposed cluster/dev-k3s as proposal 1 (cluster#dev-k3s/proposal#0000000001)" in out
    assert "config approve --layer cluster/dev-k3s --version 1" in out and "'alice'" in out
    # Every way a compile, watch or the hook reads the latest: still version 2.
    assert reviewed.store.read(PK, Pin()) == before
    assert reviewed.store.query_latest(PK) == before
    assert reviewed.store.read_latest_many([PK])[PK] == before
    assert reviewed.history("cluster/dev-k3s") == [2, 1]
    assert verify(reviewed.store) == []  # no stale head, no gap
    # `compile` reads version 2 (its lock names it).
    out_dir = tmp_path / "out"
    assert reviewed.run("compile", "--cluster", "dev-k3s", "--out", str(out_dir)) == 0
    assert "v#0000000002" in (out_dir / "clusters/dev-k3s/config-lock.json").read_text()
    addon = (out_dir / "clusters/dev-k3s/addons/ingress-nginx.json").read_text()
    assert '"replicaCount": 3' not in addon


def test_another_author_approves_and_the_version_records_both(
    reviewed: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit = tmp_path / "audit.jsonl"
    logged = ["--audit-log", str(audit)]
    file = write(tmp_path / "dev.yaml", REPLICAS)
    put = ["config", "put", "--layer", "cluster/dev-k3s", str(file), "--author", "alice"]
    assert reviewed.run(*logged, *put, "-m", "three replicas") == 0
    approve = ["config", "approve", "--layer", "cluster/dev-k3s", "--version", "1"]
    assert reviewed.run(*logged, *approve, "--author", "bob") == 0
    out = capsys.readouterr().out
    assert "approved cluster/dev-k3s proposal 1 of alice as bob: wrote version 3" in out
    latest = reviewed.store.read(PK, Pin())
    assert latest is not None and latest.version == 3
    assert latest.config == {
        "addons": {"ingress-nginx": {"values": {"controller": {"replicaCount": 3}}}}
    }
    assert (latest.author, latest.approved_by, latest.proposal) == ("alice", "bob", 1)
    assert latest.comment == "three replicas"
    assert verify(reviewed.store) == []  # the head moved with the version
    lines = _audit(audit)
    proposed = [x for x in lines if x.get("inputs", {}).get("action") == "propose"]
    approved = [x for x in lines if x.get("inputs", {}).get("action") == "approve"]
    assert proposed and proposed[0]["inputs"]["author"] == "alice", lines
    assert proposed[0]["outputs"]["proposal"] == 1 and proposed[0]["outputs"]["proposed_at"]
    assert approved and approved[0]["inputs"]["approver"] == "bob", lines
    assert approved[0]["inputs"]["author"] == "alice"
    assert approved[0]["outputs"]["version"] == 3 and approved[0]["outputs"]["approved_at"]
    # history shows both: the version's approval and the proposal's state
    assert reviewed.run("config", "history", "--layer", "cluster/dev-k3s") == 0
    history = capsys.readouterr().out
    assert "three replicas (approved by bob, proposal 1)" in history
    row = next(
        line for line in history.splitlines() if line.split()[:1] == ["1"] and "alice" in line
    )
    assert "approved: v3 by bob" in row
    # approving it twice: it is no longer proposed
    assert reviewed.run(*approve, "--author", "carol") == 2
    err = capsys.readouterr().err
    assert "proposal 1 is approved already: by bob" in err and "as version 3" in err
    assert reviewed.history("cluster/dev-k3s") == [3, 2, 1]


def test_history_shows_a_pending_proposal(
    reviewed: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _propose(reviewed, tmp_path) == 0
    capsys.readouterr()
    assert reviewed.run("config", "history", "--layer", "cluster/dev-k3s") == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["PROPOSAL"])
    assert lines[header].split() == ["PROPOSAL", "PROPOSED", "AUTHOR", "STATE", "COMMENT"]
    assert lines[header + 1].split()[0] == "1" and " proposed " in lines[header + 1]
    assert "alice" in lines[header + 1] and lines[header + 1].endswith("three replicas")


def test_approving_ones_own_proposal_is_refused_naming_both(
    reviewed: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _propose(reviewed, tmp_path) == 0
    capsys.readouterr()
    approve = ["config", "approve", "--layer", "cluster/dev-k3s", "--version", "1"]
    assert reviewed.run(*approve, "--author", "alice") == 1
    err = capsys.readouterr().err
    assert "proposed by 'alice'; approver 'alice' is the same author" in err
    assert "Traceback" not in err
    assert reviewed.history("cluster/dev-k3s") == [2, 1]


def test_approving_a_proposal_that_does_not_exist_says_what_does(
    reviewed: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    approve = ["config", "approve", "--layer", "cluster/dev-k3s", "--author", "bob"]
    assert reviewed.run(*approve, "--version", "1") == 2
    assert "cluster/dev-k3s has no proposal 1; pending proposals: none" in (capsys.readouterr().err)
    assert _propose(reviewed, tmp_path) == 0
    assert _propose(reviewed, tmp_path) == 0
    capsys.readouterr()
    assert reviewed.run(*approve, "--version", "7") == 2
    assert "has no proposal 7; pending proposals: 1, 2" in capsys.readouterr().err


def test_approval_passes_the_gate_of_a_put_unless_forced(
    reviewed: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Proposed with --force (the findings are known), then approved: checked again.
    assert _propose(reviewed, tmp_path, PROD_LABEL, "--force") == 0
    capsys.readouterr()
    approve = ["config", "approve", "--layer", "cluster/dev-k3s", "--version", "1"]
    assert reviewed.run(*approve, "--author", "bob") == 1
    err = capsys.readouterr().err
    assert "not approved: cluster/dev-k3s would break" in err and "environment" in err
    assert reviewed.history("cluster/dev-k3s") == [2, 1]
    assert reviewed.run(*approve, "--author", "bob", "--force") == 0
    assert "warning: --force" in capsys.readouterr().err
    assert reviewed.history("cluster/dev-k3s") == [3, 2, 1]


def test_a_put_the_gate_refuses_writes_no_proposal(
    reviewed: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _propose(reviewed, tmp_path, PROD_LABEL) == 1
    assert "not written" in capsys.readouterr().err
    assert reviewed.run("config", "history", "--layer", "cluster/dev-k3s") == 0
    assert "PROPOSAL" not in capsys.readouterr().out


def test_without_review_a_put_writes_the_version(
    seeded: Table,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _propose(seeded, tmp_path) == 0
    assert "wrote cluster/dev-k3s version 3" in capsys.readouterr().out
    assert seeded.history("cluster/dev-k3s") == [3, 2, 1]


def test_a_review_setting_the_project_file_does_not_know_is_bad_usage(
    seeded: Table,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    project_file = seeded.project / PROJECT_FILE
    project_file.write_text(project_file.read_text() + "review: yes-please\n")
    assert seeded.run("config", "history", "--layer", "cluster/dev-k3s") == 2
    assert "review" in capsys.readouterr().err


def test_a_proposal_in_the_stream_triggers_nothing() -> None:
    def record(sk: str) -> dict[str, Any]:
        keys = {"pk": {"S": PK}, "sk": {"S": sk}}
        return {"eventName": "INSERT", "dynamodb": {"Keys": keys}}

    assert layer_pks([record("proposal#0000000001")])[0] == set()
    assert layer_pks([record("v#0000000003")])[0] == {PK}


def test_two_approvals_of_one_proposal_write_one_version(
    reviewed: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both approvers read the proposal while it was proposed; the second one's write
    # is refused by the transaction's condition, not by that earlier read.
    from compiler import review
    from compiler.errors import InputError

    assert _propose(reviewed, tmp_path) == 0
    seen = review.proposal(reviewed.store, PK, 1)
    assert review.approve(reviewed.store, seen, approver="bob", forced=False).version == 3
    with pytest.raises(InputError, match="proposal 1 was approved meanwhile"):
        review.approve(reviewed.store, seen, approver="carol", forced=False)
    assert reviewed.history("cluster/dev-k3s") == [3, 2, 1]
