"""The semantic diff, the PR body built from it, and the `diff` command."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.publishing.prbody import ReviewContext, render_body
from compiler.publishing.treediff import (
    MISSING,
    FieldChange,
    diff_trees,
    format_text,
    lock_versions,
)
from compiler.yamlio import dump_json, dump_manifest
from tests.conftest import ROOT, tree

QUOTA = "clusters/c1/namespaces/team/resourcequota-q.yaml"


def quota(cpu: str, **extra: str) -> bytes:
    hard = {"cpu": cpu, **extra}
    return dump_manifest(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "q", "namespace": "team"},
            "spec": {"hard": hard},
        }
    )


def lock(*versions: tuple[str, int]) -> bytes:
    layers = [{"layer": name, "version": v, "pk": name, "sk": f"v#{v}"} for name, v in versions]
    return dump_json({"cluster": "c1", "layers": layers})


def test_changed_fields_old_to_new_and_bookkeeping_files_left_out() -> None:
    old = {QUOTA: quota("4"), "clusters/c1/config-lock.json": lock(("defaults", 1))}
    new = {
        QUOTA: quota("8", pods="10"),
        "clusters/c1/config-lock.json": lock(("defaults", 2)),
        "clusters/c1/kustomization.yaml": b"resources: []\n",
    }
    diff = diff_trees(old, new)
    [cluster] = diff.clusters
    assert cluster.status == "changed"
    [change] = cluster.objects  # kustomization.yaml and config-lock.json are not objects
    assert (change.kind, change.name, change.action, change.security) == (
        "ResourceQuota",
        "team/q",
        "changed",
        True,
    )
    assert change.fields == (
        FieldChange("spec.hard.cpu", "4", "8"),
        FieldChange("spec.hard.pods", MISSING, "10"),
    )
    assert (cluster.old_versions, cluster.new_versions) == (("defaults@1",), ("defaults@2",))


def test_added_and_removed_objects_and_whole_clusters() -> None:
    ns = dump_manifest({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    old = {"clusters/c1/namespaces/team/namespace.yaml": ns, "clusters/gone/cluster.json": b"{}"}
    new = {QUOTA: quota("1"), "clusters/c2/cluster.json": b'{"name": "c2"}'}
    diff = diff_trees(old, new)
    by_name = {c.cluster: c for c in diff.clusters}
    assert {n: c.status for n, c in by_name.items()} == {
        "c1": "changed",
        "c2": "added",
        "gone": "removed",
    }
    actions = {o.identity: o.action for o in by_name["c1"].objects}
    assert actions == {"Namespace team": "removed", "ResourceQuota team/q": "added"}
    assert by_name["c2"].objects[0].identity == "Cluster c2"


def test_lists_of_maps_compare_by_index_and_lists_of_scalars_whole() -> None:
    def role(verbs: list[str], extra_rule: bool = False) -> bytes:
        rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": verbs}]
        if extra_rule:
            rules.append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
        return dump_manifest(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "r", "namespace": "team"},
                "rules": rules,
            }
        )

    path = "clusters/c1/namespaces/team/role-r.yaml"
    diff = diff_trees({path: role(["get"])}, {path: role(["get", "list"], extra_rule=True)})
    fields = {f.path: (f.old, f.new) for f in diff.clusters[0].objects[0].fields}
    assert fields == {
        "rules[0].verbs": (["get"], ["get", "list"]),
        "rules[1].apiGroups": (MISSING, [""]),
        "rules[1].resources": (MISSING, ["secrets"]),
        "rules[1].verbs": (MISSING, ["get"]),
    }


def test_a_type_change_is_a_change_and_unreadable_files_still_show() -> None:
    old = {QUOTA: quota("1"), "clusters/c1/addons/x.json": b'{"values": {"n": 1}}'}
    new = {QUOTA: b"{{ not yaml", "clusters/c1/addons/x.json": b'{"values": {"n": 1.0}}'}
    objects = {o.file: o for o in diff_trees(old, new).clusters[0].objects}
    assert objects[QUOTA].action == "changed" and objects[QUOTA].fields == ()
    assert objects["clusters/c1/addons/x.json"].fields == (FieldChange("values.n", 1, 1.0),)


def test_equal_trees_have_no_diff() -> None:
    files = tree(ROOT / "golden")
    diff = diff_trees(files, dict(files))
    assert diff.empty and format_text(diff) == "no differences\n"


def test_applicationset_changes_are_fleet_wide_and_security_relevant() -> None:
    files = tree(ROOT / "golden")
    changed = dict(files)
    name = "applicationsets/cluster-bootstrap.yaml"
    changed[name] = files[name].replace(b"prune: true", b"prune: false")
    assert changed[name] != files[name]
    diff = diff_trees(files, changed)
    assert not diff.clusters and [o.file for o in diff.fleet] == [name]
    assert diff.security() == list(diff.fleet)


def test_lock_versions_names_files_by_hash_and_survives_garbage() -> None:
    data = dump_json(
        {
            "layers": [
                {"layer": "overlays/prod", "file": "overlays/prod/a.yaml", "sha256": "ab" * 32}
            ]
        }
    )
    assert lock_versions(data) == ("overlays/prod/a.yaml#abababababab",)
    assert lock_versions(b"not json") == ("(unreadable config-lock.json)",)
    assert lock_versions(None) == ()


def _context(**overrides: object) -> ReviewContext:
    values: dict = {
        "title": "Cluster config: many",
        "trace_id": "ms-r-git-e40",
        "base": "main",
        "checks": ["CUE policies"],
        "objects": 10,
        "diff_command": "gitops-compiler diff --all --against DIR",
    }
    values.update(overrides)
    return ReviewContext(**values)


def test_a_long_body_is_cut_whole_cluster_by_cluster_under_the_limit() -> None:
    old, new = {}, {}
    for n in range(300):
        for q in range(20):
            path = f"clusters/c{n:03d}/namespaces/team/resourcequota-q{q}.yaml"
            old[path], new[path] = quota("1"), quota("2")
    diff = diff_trees(old, new)
    body = render_body(diff, _context())
    assert len(body) <= 65_536
    assert "**Truncated:**" in body and "gitops-compiler diff --all --against DIR" in body
    # The fixed parts survive the cut: security summary, policy results, versions, trace id.
    for part in ("Security-relevant", "### Policy results", "### Config versions", "ms-r-git-e40"):
        assert part in body
    shown = [n for n in range(300) if f"\n### c{n:03d}\n" in body]
    assert shown == list(range(len(shown))) and 0 < len(shown) < 300  # whole sections, in order
    small = render_body(diff, _context(), limit=5_000)
    assert len(small) <= 5_000 and "Truncated" in small


def test_markdown_cells_survive_pipes_and_backticks() -> None:
    weird = dump_manifest(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "NetworkPolicy",
            "metadata": {"name": "p", "namespace": "team"},
            "spec": {"selector": "a == 'x' || b == `y`"},
        }
    )
    path = "clusters/c1/namespaces/team/calico-networkpolicy-p.yaml"
    body = render_body(diff_trees({path: b"{}"}, {path: weird}), _context())
    row = next(line for line in body.splitlines() if "spec.selector" in line)
    assert "\\|\\|" in row and "``" in row


def git(*args: str, cwd: Path) -> None:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t")
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def test_diff_command_against_a_directory_and_a_git_revision(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["diff", "--project", str(project_dir), "--source", "snapshot:examples"]
    args += ["--cluster", "prod-eks-1"]
    assert main([*args, "--against", str(project_dir / "golden"), "--exit-code"]) == 0
    assert capsys.readouterr().out == "no differences\n"

    git("init", "--quiet", ".", cwd=project_dir)
    git("add", "-A", cwd=project_dir)
    git("commit", "--quiet", "-m", "config", cwd=project_dir)
    overlay = project_dir / "overlays/prod/10-quotas.yaml"
    overlay.write_text(overlay.read_text().replace('cpu: "8"', 'cpu: "6"'))
    monkeypatch.chdir(project_dir)
    assert main([*args, "--against", "HEAD:golden", "--exit-code"]) == 1
    out = capsys.readouterr().out
    assert "~ ResourceQuota monitoring/monitoring-quota" in out
    assert 'spec.hard.cpu: "8" -> "6"  (set by overlays/prod/10-quotas.yaml:6)' in out
    assert main([*args, "--against", "HEAD:golden"]) == 0  # without --exit-code
    capsys.readouterr()
    assert main([*args, "--against", "HEAD:golden", "--format", "markdown"]) == 0
    assert '| `spec.hard.cpu` | `"8"` | `"6"` |' in capsys.readouterr().out
    assert main([*args, "--against", "no-such-ref:golden"]) == 2
    assert "neither a directory nor a commit" in capsys.readouterr().err


def test_publish_from_a_directory_that_is_not_a_tree_is_bad_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["publish", "--from", str(tmp_path), "--all", "--repo", str(tmp_path),
                 "--forge", "none"])  # fmt: skip
    assert code == 2 and "not a compiled tree" in capsys.readouterr().err
    code = main(["publish", "--from", str(ROOT / "golden"), "--cluster", "nope", "--repo",
                 str(tmp_path), "--forge", "none"])  # fmt: skip
    assert code == 2 and "no clusters/nope/" in capsys.readouterr().err


def test_json_values_are_shown_as_json() -> None:
    path = "clusters/c1/cluster.json"
    diff = diff_trees(
        {path: json.dumps({"a": 1}).encode()}, {path: json.dumps({"a": "1"}).encode()}
    )
    assert '    a: 1 -> "1"' in format_text(diff)


@pytest.mark.parametrize(
    ("values", "secret"),
    [
        ({"auth": {"token": "ghp_" + "a1B2" * 9}}, "ghp_" + "a1B2" * 9),
        ({"db": {"password": "hunter2-but-longer"}}, "hunter2-but-longer"),
        ({"aws": {"id": "AKIA" + "ABCDEFGHIJKLMNOP"}}, "AKIA" + "ABCDEFGHIJKLMNOP"),
    ],
)
def test_a_credential_that_a_waiver_let_through_is_masked_in_diffs_and_bodies(
    values: dict[str, object], secret: str
) -> None:
    path = "clusters/c1/addons/app.json"
    old = {path: dump_json({"addon": "app", "values": {}})}
    new = {path: dump_json({"addon": "app", "values": values})}
    diff = diff_trees(old, new)
    shown = format_text(diff) + render_body(diff, _context())
    assert secret not in shown
    assert "(masked: " in shown
    # An ordinary neighbour is shown as it is.
    plain = diff_trees(old, {path: dump_json({"addon": "app", "values": {"replicas": 3}})})
    assert "replicas" in format_text(plain) and "masked" not in format_text(plain)
