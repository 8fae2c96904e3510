"""Changes the API server refuses in place: found against a base, accepted only by the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler.argocd.immutable import (
    RECREATE,
    RULE,
    RULE_UNKNOWN,
    SYNC_OPTIONS,
    immutable_changes,
    mark_replacements,
)
from compiler.cli import main
from compiler.publishing.prbody import ReviewContext, render_body
from compiler.publishing.treediff import diff_trees, format_text
from compiler.render import Rendered
from compiler.yamlio import dump_manifest

RB = "clusters/c1/namespaces/dev/rolebinding-viewers.yaml"
POOL = "clusters/c1/calico/ippool-pool.yaml"


def binding(role: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "viewers", "namespace": "dev"}
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "a"}],
    }


def pool(api: str = "projectcalico.org/v3", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": api, "kind": "IPPool", "metadata": {"name": "pool"}, "spec": spec}


def test_a_changed_role_ref_is_found_and_accepted_only_with_recreate() -> None:
    old = {RB: dump_manifest(binding("view"))}
    (change,) = immutable_changes(old, {RB: dump_manifest(binding("edit"))})
    assert (change.cluster, change.kind, change.name, change.field) == (
        "c1",
        "RoleBinding",
        "dev/viewers",
        "roleRef",
    )
    assert not change.accepted
    assert '"field is immutable"' in change.describe()
    assert "replaceOnSync: {RoleBinding/dev/viewers: <reason>}" in change.describe()
    recreate = {RB: dump_manifest(binding("edit", {SYNC_OPTIONS: RECREATE}))}
    (accepted,) = immutable_changes(old, recreate)
    assert accepted.accepted
    # Replace=true alone is a PUT, refused the same way.
    replace = {RB: dump_manifest(binding("edit", {SYNC_OPTIONS: "Replace=true"}))}
    assert not immutable_changes(old, replace)[0].accepted
    assert immutable_changes(old, {RB: dump_manifest(binding("view", {"a": "b"}))}) == []


@pytest.mark.parametrize("api", ["projectcalico.org/v3", "crd.projectcalico.org/v1"])
def test_ip_pool_cidr_and_block_size_with_calico_defaults(api: str) -> None:
    base = {POOL: dump_manifest(pool(api, cidr="10.0.0.0/16"))}
    assert (
        immutable_changes(base, {POOL: dump_manifest(pool(api, cidr="10.0.0.0/16", blockSize=26))})
        == []
    )
    (block,) = immutable_changes(
        base, {POOL: dump_manifest(pool(api, cidr="10.0.0.0/16", blockSize=24))}
    )
    assert (block.field, block.old, block.new) == ("spec.blockSize", 26, 24)
    assert "migration guide" in block.describe()
    (cidr,) = immutable_changes(base, {POOL: dump_manifest(pool(api, cidr="10.1.0.0/16"))})
    assert cidr.field == "spec.cidr" and cidr.old == "10.0.0.0/16"


def test_diff_and_pr_body_show_the_refused_change_as_security_relevant() -> None:
    diff = diff_trees({RB: dump_manifest(binding("view"))}, {RB: dump_manifest(binding("edit"))})
    assert "c1: in-place change refused: RoleBinding dev/viewers: roleRef" in format_text(diff)
    body = render_body(diff, ReviewContext("t", "ms-1-git-e40", "main", (), 1, "d"))
    security = body[body.index("Security-relevant") : body.index("### c1")]
    assert "**Sync will fail** on c1" in security and "field is immutable" in security


def test_replace_on_sync_marks_the_object_and_refuses_a_stale_key() -> None:
    objects = [Rendered("namespaces/dev/rolebinding-viewers.yaml", binding("view"), ())]
    config = {"replaceOnSync": {"RoleBinding/dev/viewers": "why", "IPPool/gone": "why"}}
    (problem,) = mark_replacements(objects, config)
    assert problem.rule == RULE_UNKNOWN and problem.path == ("replaceOnSync", "IPPool/gone")
    assert objects[0].obj["metadata"]["annotations"] == {SYNC_OPTIONS: RECREATE}


def test_validate_against_fails_until_the_config_accepts_the_replacement(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = ["--project", str(project_dir), "--source", "snapshot:examples"]
    base = tmp_path / "base"
    assert main(["compile", "--all", "--out", str(base), *source]) == 0
    validate = ["validate", "--all", "--against", str(base), *source]
    assert main(validate) == 0
    overlay = project_dir / "overlays/dev/50-binding.yaml"
    overlay.write_text(
        "namespaces:\n  dev-team:\n    access:\n      dev-role-binding:\n"
        "        role: null\n        clusterRole: view\n"
    )
    capsys.readouterr()
    assert main(validate) == 1
    out = capsys.readouterr().out
    assert RULE in out and "dev-team/dev-role-binding: roleRef" in out
    assert "field is immutable" in out
    overlay.write_text(
        overlay.read_text()
        + 'replaceOnSync:\n  RoleBinding/dev-team/dev-role-binding: "view instead of dev-role"\n'
    )
    assert main(validate) == 0
    assert "Argo CD will delete and recreate it" in capsys.readouterr().out
    after = tmp_path / "after"
    assert main(["compile", "--cluster", "dev-k3s", "--out", str(after), *source]) == 0
    obj = yaml.safe_load(
        (
            after / "clusters/dev-k3s/namespaces/dev-team/rolebinding-dev-role-binding.yaml"
        ).read_text()
    )
    assert obj["metadata"]["annotations"] == {SYNC_OPTIONS: RECREATE}
