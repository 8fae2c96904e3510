"""Waivers through the whole CLI: a live waiver lets the run pass and says so in every
format; an expired one fails with its own finding; a stale one is reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from compiler.cli import main
from tests.conftest import ROOT

OVERLAY = """\
namespaces:
  unlabelled:
    labels: {environment: dev}
"""


def waiver(expires: str, cluster: str = "dev-k3s") -> str:
    return f"""\
- rule: ns-required-labels
  match: {{cluster: {cluster}, namespace: unlabelled}}
  reason: a scratch namespace, ticket OPS-1
  owner: platform@example.com
  expires: "{expires}"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("gitops-compiler.yaml",):
        shutil.copy2(ROOT / name, tmp_path / name)
    for name in ("policies", "overlays", "examples"):
        shutil.copytree(ROOT / name, tmp_path / name)
    (tmp_path / "overlays/dev/90-unlabelled.yaml").write_text(OVERLAY)
    return tmp_path


def validate(project: Path, *extra: str) -> int:
    argv = ["validate", "--all", "--project", str(project), "--source", "snapshot:examples"]
    return main([*argv, *extra])


def test_without_a_waiver_the_finding_fails(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate(project) == 1
    assert "[ns-required-labels]" in capsys.readouterr().out


def test_a_live_waiver_passes_and_is_reported_in_every_format(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "policies/waivers.yaml").write_text(waiver("2999-12-31"))
    assert validate(project) == 0
    out = capsys.readouterr().out
    assert "waived: dev-k3s: namespaces.unlabelled.labels.team" in out
    assert "policies/waivers.yaml:1 (owner platform@example.com, expires 2999-12-31)" in out
    assert validate(project, "--format", "json") == 0
    record = json.loads(capsys.readouterr().out)
    assert record["violations"] == []
    assert {n["rule"]: n["severity"] for n in record["notices"]} == {"ns-required-labels": "waived"}
    assert validate(project, "--format", "github") == 0
    assert "::notice title=ns-required-labels::" in capsys.readouterr().out


def test_an_expired_waiver_fails_with_its_own_finding(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "policies/waivers.yaml").write_text(waiver("2020-01-31"))
    assert validate(project) == 1
    out = capsys.readouterr().out
    assert "[ns-required-labels]" in out
    assert "expired on 2020-01-31" in out and "[waiver-expired]" in out


def test_a_waiver_that_covers_nothing_is_stale(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "overlays/dev/90-unlabelled.yaml").unlink()
    (project / "policies/waivers.yaml").write_text(waiver("2999-12-31"))
    assert validate(project) == 0
    assert "warning: (project): policies/waivers.yaml:1" in capsys.readouterr().out


def test_a_waiver_of_an_unwaivable_rule_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = waiver("2999-12-31").replace("ns-required-labels", "rbac-no-cluster-admin")
    (project / "policies/waivers.yaml").write_text(text)
    assert validate(project) == 1
    assert "rbac-no-cluster-admin: this rule cannot be waived [waiver-invalid]" in (
        capsys.readouterr().out
    )
