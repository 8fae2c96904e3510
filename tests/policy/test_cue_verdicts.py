"""The cache of cue's verdicts: an unchanged cluster is not sent to cue again, and any
change to what a verdict depends on (a policy file, the cue binary, the cluster's
document) sends it again. With the real cue (GITOPS_CUE, native by default)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from compiler.cachedir import cache_root
from compiler.cli import main
from compiler.errors import InputError
from compiler.policy.cue import CueFinding, CuePolicies, find_cue
from compiler.policy.cue_binary import cue_version
from tests.policy.test_cue import POLICY, doc

FLEET = {
    "a-dev": doc("a-dev", "dev"),
    "b-prod": doc("b-prod", "prod"),
    "x-test": doc("x-test", "test"),
}
FINDINGS = [
    CueFinding("b-prod", "cluster.env", "no-prod", "b-prod is prod"),
    CueFinding("x-test", "cluster.name", "named-x", "x-test has an x"),
]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache dir of this test's own."""
    monkeypatch.setenv("GITOPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GITOPS_NO_CACHE", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "policy.cue").write_text(POLICY)
    return directory


@pytest.fixture
def cue(tmp_path: Path) -> Path:
    """The real cue behind a wrapper of this test's own, so the test can 'rebuild' it."""
    wrapper = tmp_path / "bin" / "cue"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {find_cue(None, os.environ)} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def checked(policies: Path, cue: Path, fleet: dict[str, Any], **kwargs: Any) -> CuePolicies:
    options = {"version": cue_version(cue), "cache": True, **kwargs}
    runner = CuePolicies(policies, cue, **options)
    assert runner.check(fleet) == sorted(f for f in FINDINGS if f.cluster in fleet)
    return runner


def entries(cache: Path) -> list[Path]:
    return sorted((cache / "cue-verdicts").glob("*/*.json"))


def test_an_unchanged_fleet_is_not_sent_to_cue_again(
    cache: Path, policies: Path, cue: Path, proc_starts: list[tuple[str, ...]]
) -> None:
    assert checked(policies, cue, FLEET).sent == ("a-dev", "b-prod", "x-test")
    assert len(entries(cache)) == 3  # one a cluster, findings or none
    starts = len(proc_starts)
    assert checked(policies, cue, FLEET).sent == ()
    assert len(proc_starts) == starts  # no cue started at all


def test_a_changed_cluster_alone_is_sent_again(cache: Path, policies: Path, cue: Path) -> None:
    checked(policies, cue, FLEET)
    changed = {**FLEET, "a-dev": {**doc("a-dev", "dev"), "namespaces": {}}}
    assert checked(policies, cue, changed).sent == ("a-dev",)
    grown = {**FLEET, "xy-dev": doc("xy-dev", "dev")}  # a new cluster
    runner = CuePolicies(policies, cue, version=cue_version(cue), cache=True)
    extra = CueFinding("xy-dev", "cluster.name", "named-x", "xy-dev has an x")
    assert runner.check(grown) == sorted([*FINDINGS, extra])
    assert runner.sent == ("xy-dev",)


def test_a_changed_policy_file_sends_every_cluster_again(
    cache: Path, policies: Path, cue: Path
) -> None:
    checked(policies, cue, FLEET)
    (policies / "policy.cue").write_text(POLICY + "\n// a comment changes the bytes\n")
    assert checked(policies, cue, FLEET).sent == ("a-dev", "b-prod", "x-test")
    (policies / "extra.cue").write_text("package policy\n")  # a new file
    assert checked(policies, cue, FLEET).sent == ("a-dev", "b-prod", "x-test")
    # A rule that finds something new is seen at once, not hidden by a kept verdict.
    (policies / "extra.cue").write_text(
        'package policy\n_findings: "no-dev": [ for n, c in clusters if c.cluster.env == "dev" '
        '{cluster: n, path: "cluster.env", message: "dev"}]\n'
    )
    runner = CuePolicies(policies, cue, version=cue_version(cue), cache=True)
    assert CueFinding("a-dev", "cluster.env", "no-dev", "dev") in runner.check(FLEET)


def test_another_cue_binary_or_version_sends_every_cluster_again(
    cache: Path, policies: Path, cue: Path
) -> None:
    checked(policies, cue, FLEET)
    assert checked(policies, cue, FLEET, version="v0.99.0").sent == ("a-dev", "b-prod", "x-test")
    cue.write_text(cue.read_text() + "# rebuilt\n")
    assert checked(policies, cue, FLEET).sent == ("a-dev", "b-prod", "x-test")
    other = cue.parent / "other-cue"
    shutil.copy2(cue, other)
    assert checked(policies, other, FLEET).sent == ("a-dev", "b-prod", "x-test")


@pytest.mark.parametrize(
    "entry",
    [
        b"\x00\xff not json",
        b"",
        b'{"format": "cue-verdicts/1", "key": "another", "cluster": "b-prod", "findings": []}',
        b'{"format": "cue-verdicts/1", "key": "KEY", "cluster": "a-dev", "findings": []}',
        b'{"format": "cue-verdicts/1", "key": "KEY", "cluster": "b-prod", "findings": [["x"]]}',
        b'{"format": "cue-verdicts/0", "key": "KEY", "cluster": "b-prod", "findings": []}',
        b'["a list"]',
    ],
)
def test_a_corrupt_or_foreign_entry_is_ignored_and_replaced(
    cache: Path, policies: Path, cue: Path, entry: bytes
) -> None:
    checked(policies, cue, FLEET)
    [path] = [p for p in entries(cache) if json.loads(p.read_bytes())["cluster"] == "b-prod"]
    path.write_bytes(entry.replace(b"KEY", path.stem.encode()))
    assert checked(policies, cue, FLEET).sent == ("b-prod",)  # its finding is not lost
    assert json.loads(path.read_bytes())["cluster"] == "b-prod"  # cue's verdict replaced it
    assert checked(policies, cue, FLEET).sent == ()


def test_without_cache_every_cluster_goes_to_cue_and_nothing_is_kept(
    cache: Path, policies: Path, cue: Path
) -> None:
    assert checked(policies, cue, FLEET, cache=False).sent == ("a-dev", "b-prod", "x-test")
    assert checked(policies, cue, FLEET, cache=False).sent == ("a-dev", "b-prod", "x-test")
    assert entries(cache) == []


def test_policies_that_do_not_evaluate_keep_no_verdict(
    cache: Path, policies: Path, cue: Path
) -> None:
    (policies / "broken.cue").write_text("package policy\nclusters: {\n")
    runner = CuePolicies(policies, cue, version=cue_version(cue), cache=True)
    with pytest.raises(InputError):
        runner.check(FLEET)
    assert entries(cache) == []


# --- through the command line: the audit line says how many clusters cue saw ----------


def evaluated(project: Path, tmp_path: Path, *extra: str) -> int:
    audit = tmp_path / "audit.jsonl"
    audit.unlink(missing_ok=True)
    argv = ["--audit-log", str(audit), "validate", "--all", "--project", str(project)]
    assert main([*argv, "--source", "snapshot:examples", *extra]) == 0
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    [line] = [line for line in lines if line["step"] == "policy"]
    assert line["inputs"]["cue"] == cue_version(find_cue(None, os.environ))
    return int(line["outputs"]["cue_evaluated"])


def test_a_recompile_sends_only_what_changed_and_no_cache_sends_all(
    cache: Path, project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert evaluated(project_dir, tmp_path) == 3
    assert evaluated(project_dir, tmp_path) == 0
    overlay = project_dir / "overlays/dev/90-more.yaml"
    # An annotation is no input of the policies (compiler/policy/cue_input.py) ...
    overlay.write_text("namespaces:\n  dev-team:\n    annotations: {purpose: more}\n")
    assert evaluated(project_dir, tmp_path) == 0
    # ... a label is: the dev cluster alone goes to cue again.
    overlay.write_text("namespaces:\n  dev-team:\n    labels: {cost-centre: c1}\n")
    assert evaluated(project_dir, tmp_path) == 1
    assert evaluated(project_dir, tmp_path, "--no-cache") == 3
    monkeypatch.setenv("GITOPS_NO_CACHE", "1")
    assert evaluated(project_dir, tmp_path) == 3
    assert cache_root() == cache
