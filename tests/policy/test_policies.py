"""The CUE policies of `policies/*.cue`, through the whole pipeline, with the real cue.

Each file of `tests/cases/policies/<rule-id>.yaml` is a rule's case: a cluster
record that keeps to the rule (`pass`) and one that breaks it (`fail`) at
`path`; `facts` (optional) overrides the record's cluster facts per outcome. A rule
may have more cases, `<rule-id>--<variant>.yaml` (a second spelling the rule must
catch as well), each its own pair of clusters. All
cases become clusters of one snapshot table and are validated in one run (one
cue process), as a real fleet would be, once on each cue the project installs. The guards' rules
(`compiler/policy/guards`) have their cases here too; `also` lists the other rules
a failing case cannot help breaking (a guard that names what a CUE wildcard rule
only calls "*").
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler.cli import main
from compiler.policy.guards.registry import guard_rules
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.snapshot import SnapshotStore, seed
from compiler.yamlio import dump_yaml
from tests.conftest import ROOT, project_cue

CASES = sorted((Path(__file__).parent.parent / "cases/policies").glob("*.yaml"))
CASE_NAMES = [case.stem for case in CASES]


def rule_of(case: str) -> str:
    """The rule a case is for: `quota-ceiling--requests` is one of quota-ceiling's."""
    return case.partition("--")[0]


RULE_IDS = sorted({rule_of(case) for case in CASE_NAMES})
# Guard rules no case file can reach through a compile, and where they are tested.
WITHOUT_A_CASE = {
    # The DSL schema refuses a negative quantity before the guards run.
    "quantity-negative": "tests/policy/guards/test_quantities.py",
    # Needs policy.allowedServers in the project file, which the cases share.
    "cluster-server-allowed": "tests/policy/guards/test_carried.py",
}


def load_case(path: Path) -> dict[str, Any]:
    case = yaml.safe_load(path.read_text())
    keys = {"env", "path", "pass", "fail", "also", "facts"}
    assert {"env", "path", "pass", "fail"} <= set(case) <= keys, path
    return case


def cluster_record(
    name: str, env: str, config: dict[str, Any], facts: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "versions": [
            {
                "version": 1,
                "created_at": "2026-05-01T00:00:00Z",
                "author": "policy-tests",
                "comment": "case",
                "cluster": {
                    "name": name,
                    "env": env,
                    "region": "eu-west-1",
                    "server": f"https://{name}.example.internal:6443",
                    **(facts or {}),
                },
                "config": config,
            }
        ]
    }


@pytest.fixture(scope="module")
def case_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose snapshot table holds every case as a cluster."""
    project = tmp_path_factory.mktemp("policies")
    shutil.copy2(ROOT / "gitops-compiler.yaml", project)
    for name in ("overlays", "policies"):
        shutil.copytree(ROOT / name, project / name)
    table = project / "table"
    shutil.copytree(ROOT / "examples", table, ignore=shutil.ignore_patterns("cluster"))
    (table / "cluster").mkdir()
    for path in CASES:
        case = load_case(path)
        for outcome in ("pass", "fail"):
            name = f"{path.stem}-{outcome}"
            facts = case.get("facts", {}).get(outcome)
            record = cluster_record(name, case["env"], case[outcome], facts)
            (table / "cluster" / f"{name}.yaml").write_bytes(dump_yaml(record))
    return project


Report = dict[str, list[dict[str, str]]]


@pytest.fixture(scope="module")
def reports() -> dict[str, Report]:
    """The report of each cue, once a module: cue kind -> violations by cluster."""
    return {}


def cases_report(project: Path, kind: str, reports: dict[str, Report]) -> Report:
    """Violations by cluster, from one `validate --all` over every case on one cue,
    without kept verdicts: every case goes to that cue."""
    if kind in reports:
        return reports[kind]
    argv = ["validate", "--all", "--format", "json", "--project", str(project), "--no-cache"]
    argv += ["--cue", str(project_cue(kind)), "--source", "snapshot:table"]
    stream = io.StringIO()
    with contextlib.redirect_stdout(stream):
        code = main(argv)
    record = json.loads(stream.getvalue())
    assert code == (1 if record["violations"] else 0)
    by_cluster: Report = {}
    for violation in record["violations"]:
        by_cluster.setdefault(violation["cluster"], []).append(violation)
    reports[kind] = by_cluster
    return by_cluster


# Every case on the native cue (current CUE, the default) and on the WebAssembly v0.4
# one (the fallback): the policies must hold on both (issue 18).
@pytest.fixture(scope="module", params=["native", "wasm"])
def report(
    request: pytest.FixtureRequest, case_project: Path, reports: dict[str, Report]
) -> Report:
    return cases_report(case_project, request.param, reports)


def test_both_cues_give_identical_findings(case_project: Path, reports: dict[str, Report]) -> None:
    native = cases_report(case_project, "native", reports)
    wasm = cases_report(case_project, "wasm", reports)
    assert native == wasm
    assert sum(map(len, native.values())) >= len(CASES)  # every failing case found something


def test_every_rule_of_the_policies_has_a_case() -> None:
    declared = set()
    for path in (ROOT / "policies").glob("*.cue"):
        for line in path.read_text().splitlines():
            if line.startswith('_findings: "'):
                declared.add(line.split('"')[1])
    declared |= {rule.id for rule in guard_rules()}
    assert declared - set(WITHOUT_A_CASE) == set(RULE_IDS)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_passing_config_has_no_violation(name: str, report: Report) -> None:
    assert report.get(f"{name}-pass", []) == []


@pytest.mark.parametrize("name", CASE_NAMES)
def test_failing_config_is_reported_with_rule_path_and_provenance(
    name: str, report: Report
) -> None:
    rule = rule_of(name)
    case = load_case(ROOT / "tests/cases/policies" / f"{name}.yaml")
    cluster = f"{name}-fail"
    found = report.get(cluster, [])
    mine = [v for v in found if v["rule"] == rule]
    assert [(v["rule"], v["path"]) for v in mine] == [(rule, case["path"])]
    assert sorted(v["rule"] for v in found if v["rule"] != rule) == sorted(case.get("also", []))
    assert mine[0]["provenance"] == f"dynamodb:cluster#{cluster}/v#0000000001@1"
    assert mine[0]["message"]


def test_the_example_fleet_keeps_every_policy(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["validate", "--all", "--project", str(ROOT), "--source", "snapshot:examples"]
    assert main(argv) == 0, capsys.readouterr().out
    assert "3 cluster(s) valid" in capsys.readouterr().out


def test_a_violation_from_an_overlay_names_its_file_and_line(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overlay = project_dir / "overlays/test/90-broad.yaml"
    overlay.write_text(
        "# widen the read-only role\n"
        "roles:\n"
        "  read-only:\n"
        "    rules:\n"
        "      - apiGroups: ['']\n"
        "        resources: ['*']\n"
        "        verbs: [get]\n"
    )
    out = tmp_path / "out"
    argv = ["compile", "--all", "--out", str(out), "--project", str(project_dir)]
    assert main([*argv, "--source", "snapshot:examples"]) == 1
    printed = capsys.readouterr()
    line = "test-k3s: roles.read-only.rules[0].resources[0]:"
    assert line in printed.out
    assert "[rbac-no-wildcard] (set by overlays/test/90-broad.yaml:6)" in printed.out
    assert "nothing written" in printed.err
    assert not out.exists()


def test_a_violation_from_a_dynamodb_item_names_pk_sk_and_version(
    server_store: DynamoDBStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(server_store, SnapshotStore(ROOT / "examples"))
    latest = server_store.history("cluster#prod-eks-1")[0]
    config = dict(latest.config)
    config["namespaces"] = {"payments": {"defaultDeny": False}}
    server_store.put(
        "cluster#prod-eks-1", config, cluster=latest.cluster, author="t", comment="open up"
    )
    assert server_store.endpoint_url is not None
    argv = ["validate", "--cluster", "prod-eks-1", "--format", "json", "--project", str(ROOT)]
    argv += ["--endpoint-url", server_store.endpoint_url, "--table", server_store.table]
    assert main(argv) == 1
    [violation] = json.loads(capsys.readouterr().out)["violations"]
    assert violation["rule"] == "prod-default-deny"
    assert violation["path"] == "namespaces.payments.defaultDeny"
    assert violation["provenance"] == "dynamodb:cluster#prod-eks-1/v#0000000002@2"


def test_the_quota_finding_names_the_ceiling_it_compares_against(
    report: dict[str, list[dict[str, str]]],
) -> None:
    """issue 17, item 10: the fix is in the message, not in policies/quotas.cue's source."""
    [finding] = [v for v in report["quota-ceiling-fail"] if v["rule"] == "quota-ceiling"]
    assert finding["message"] == (
        "quota case-quota grants memory 33Gi, over the dev ceiling of 32Gi (policies/quotas.cue)"
    )


def test_a_quota_is_held_to_the_ceiling_under_its_other_names(report: Report) -> None:
    """requests.cpu is cpu to Kubernetes, count/pods is pods: the ceiling holds for both."""
    found = sorted(
        (v["path"], v["message"])
        for v in report["quota-ceiling--requests-fail"]
        if v["rule"] == "quota-ceiling"
    )
    base = "namespaces.case-ns.quotas.case-quota"
    assert found == [
        (
            f"{base}.requests.cpu",
            "quota case-quota grants requests.cpu 1000, over the prod ceiling of 64 for cpu "
            "(policies/quotas.cue)",
        )
    ]
