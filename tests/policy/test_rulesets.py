"""The built-in policies ship in the package; a project adds its own (issue 20)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.policy.rulesets import BUILTIN_DIR, builtin_rule_sets
from compiler.project import load_project
from tests.conftest import ROOT

# An organisation's own rule: a policy file adds findings under its rule id.
ORG_RULE = """package policy

_findings: "org-no-dev-team": [
\tfor cname, c in clusters
\tfor nsname, ns in c.namespaces if nsname == "dev-team" {
\t\tcluster: cname
\t\tpath:    "namespaces.\\(nsname)"
\t\tmessage: "dev-team is retired; use team-dev"
\t},
]
"""


@pytest.fixture
def config_repo(tmp_path: Path) -> Path:
    """A project without a policies/ of its own: everything built in comes from the package."""
    repo = tmp_path / "config"
    repo.mkdir()
    (repo / "gitops-compiler.yaml").write_text("source: snapshot:snapshot\n")
    shutil.copytree(ROOT / "overlays", repo / "overlays")
    shutil.copytree(ROOT / "examples", repo / "snapshot")
    return repo


def test_the_built_in_files_are_this_repositorys_policies() -> None:
    assert builtin_rule_sets() == ("ippools", "namespaces", "quotas", "rbac")
    for name in ("policy.cue", "cluster-config.schema.json", "schemas/calico/v3"):
        assert (BUILTIN_DIR / name).resolve() == (ROOT / "policies" / name).resolve()


def test_cue_files_are_the_selected_rule_sets_and_the_projects_own(config_repo: Path) -> None:
    every = load_project(config_repo).cue_files
    assert [p.name for p in every] == [
        "ippools.cue", "namespaces.cue", "policy.cue", "quotas.cue", "rbac.cue",
    ]  # fmt: skip
    assert all(p.parent == BUILTIN_DIR for p in every)
    assert load_project(config_repo).definitions_dir == BUILTIN_DIR

    (config_repo / "gitops-compiler.yaml").write_text("policy:\n  builtin: [rbac]\n")
    own = config_repo / "policies"
    own.mkdir()
    (own / "org.cue").write_text(ORG_RULE)
    (own / "rbac.cue").write_text("package policy\n")  # an own file replaces the built-in one
    (own / "_draft.cue").write_text("not cue")  # `_*` is not part of the package
    chosen = load_project(config_repo).cue_files
    assert chosen == (own / "org.cue", BUILTIN_DIR / "policy.cue", own / "rbac.cue")


def test_an_unknown_rule_set_is_bad_input_naming_file_line_and_the_known_ones(
    config_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (config_repo / "gitops-compiler.yaml").write_text(
        "policy:\n  builtin:\n    - rbac\n    - rabc\n"
    )
    assert main(["validate", "--all", "--project", str(config_repo), "--source", "snapshot"]) == 2
    err = capsys.readouterr().err
    assert "gitops-compiler.yaml:4: policy.builtin[1]: no built-in rule set 'rabc'" in err
    assert "ippools, namespaces, quotas, rbac" in err


def test_a_project_without_policies_compiles_and_its_own_rule_adds_findings(
    config_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["validate", "--all", "--project", str(config_repo), "--source", "snapshot:snapshot"]
    assert main(args) == 0, capsys.readouterr().err
    assert "3 cluster(s) valid" in capsys.readouterr().out

    (config_repo / "policies").mkdir()
    (config_repo / "policies/org.cue").write_text(ORG_RULE)
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "org-no-dev-team" in out and "dev-team is retired" in out


def test_golden_reads_the_source_the_project_file_names(
    config_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(ROOT / "golden", config_repo / "golden")
    assert main(["golden", "check", "--project", str(config_repo)]) == 0, capsys.readouterr()
    # Without `source:`, the default is a config repository's snapshot, .gitops/snapshot.
    (config_repo / "gitops-compiler.yaml").write_text("table: gitops-config\n")
    assert main(["golden", "check", "--project", str(config_repo)]) == 2
    assert ".gitops/snapshot" in capsys.readouterr().err
