"""The Applications the ApplicationSets generate, and what the controller would refuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compiler.argocd.applications import (
    RULE_DUPLICATE,
    RULE_NAME,
    RULE_SHARED_SERVER,
    RULE_TEMPLATE,
    application_changes,
    generate,
    path_matches,
    path_parameters,
)
from compiler.argocd.gotemplate import TemplateError, render_string
from compiler.cli import main
from compiler.layout import shared_files
from compiler.model import ClusterFacts
from compiler.project import ArgoCDSettings
from compiler.render.argocd import addon_parameters, cluster_parameters
from compiler.yamlio import dump_json
from tests.conftest import tree

ADDON: dict[str, Any] = {
    "repoURL": "https://kubernetes.github.io/ingress-nginx",
    "chart": "ingress-nginx",
    "version": "4.11.2",
    "namespace": "ingress-nginx",
}


def fleet(
    clusters: dict[str, list[str]], servers: dict[str, str] | None = None
) -> dict[str, bytes]:
    """A tree as the compiler writes it: the ApplicationSets, each cluster and its add-ons."""
    files = shared_files(ArgoCDSettings())
    for name, addons in clusters.items():
        server = (servers or {}).get(name, f"https://{name}:6443")
        facts = ClusterFacts(name=name, env="dev", server=server)
        files[f"clusters/{name}/cluster.json"] = dump_json(cluster_parameters(facts))
        for addon in addons:
            params = addon_parameters(facts, addon, {**ADDON, "namespace": addon})
            files[f"clusters/{name}/addons/{addon}.json"] = dump_json(params)
    return files


def test_both_sets_generate_named_applications_with_their_destinations() -> None:
    found = generate(fleet({"dev-k3s": ["ingress-nginx"]}))
    assert found.findings == []
    apps = {a.name: a for a in found.applications}
    assert sorted(apps) == ["dev-k3s-bootstrap", "dev-k3s-ingress-nginx"]
    boot = apps["dev-k3s-bootstrap"]
    assert (boot.appset, boot.origin) == ("cluster-bootstrap", "clusters/dev-k3s/cluster.json")
    assert boot.source.endswith("path clusters/dev-k3s")  # {{.path.path}}: the file's directory
    assert boot.project == "cluster-bootstrap"
    nginx = apps["dev-k3s-ingress-nginx"]
    assert nginx.destination == "https://dev-k3s:6443, namespace ingress-nginx"
    assert nginx.source.startswith("chart ingress-nginx 4.11.2")


def test_an_addon_named_bootstrap_collides_across_the_two_sets() -> None:
    found = generate(fleet({"dev-k3s": ["bootstrap"]}))
    (finding,) = found.findings
    assert finding.rule == RULE_DUPLICATE
    assert "'dev-k3s-bootstrap'" in finding.message
    assert "clusters/dev-k3s/cluster.json" in finding.message
    assert "clusters/dev-k3s/addons/bootstrap.json" in finding.message
    assert "cluster-bootstrap" in finding.message and "cluster-addons" in finding.message


def test_cluster_and_addon_names_collide_inside_one_set() -> None:
    found = generate(fleet({"a": ["b-c"], "a-b": ["c"]}))
    (finding,) = found.findings
    assert finding.rule == RULE_DUPLICATE
    assert "'a-b-c'" in finding.message
    assert "clusters/a/addons/b-c.json" in finding.message
    assert "clusters/a-b/addons/c.json" in finding.message
    assert "two Applications" in finding.message


def test_two_clusters_on_one_api_server_are_refused_once() -> None:
    """Host case, the default port and a trailing slash do not make another server."""
    servers = {"dev-a": "https://API.example:443/", "prod-b": "https://api.example"}
    found = generate(fleet({"dev-a": ["ingress-nginx"], "prod-b": ["ingress-nginx"]}, servers))
    (finding,) = found.findings
    assert finding.rule == RULE_SHARED_SERVER
    assert finding.origin == "clusters/prod-b/cluster.json"
    assert finding.also == "clusters/dev-a/cluster.json"
    assert "clusters dev-a and prod-b both deploy to the API server" in finding.message
    other_port = {"dev-a": "https://api.example:6443", "prod-b": "https://api.example"}
    assert generate(fleet({"dev-a": [], "prod-b": []}, other_port)).findings == []


@pytest.mark.parametrize("server", ["https://api.example:99999", "https://[::1", "https://a:b"])
def test_a_server_that_is_no_url_is_left_to_its_own_rule_not_a_crash(server: str) -> None:
    """cluster-server-url reports it; the fleet check must not stop the run first."""
    servers = {"dev-a": server, "prod-b": "https://api.example"}
    assert generate(fleet({"dev-a": [], "prod-b": []}, servers)).findings == []


def test_a_key_a_file_lacks_is_refused_naming_file_and_field() -> None:
    files = fleet({"dev-k3s": ["ingress-nginx"]})
    path = "clusters/dev-k3s/addons/ingress-nginx.json"
    params = json.loads(files[path])
    del params["releaseName"]
    files[path] = dump_json(params)
    (finding,) = generate(files).findings
    assert finding.rule == RULE_TEMPLATE and finding.origin == path
    assert "has no field releaseName" in finding.message
    assert "template.spec.source.helm.releaseName" in finding.message
    assert "dev-k3s-ingress-nginx" not in {a.name for a in generate(files).applications}


def test_an_invalid_application_name_is_refused() -> None:
    files = fleet({"dev-k3s": []})
    facts = ClusterFacts(name="dev-k3s", env="dev", server="https://dev-k3s:6443")
    files["clusters/dev-k3s/addons/x.json"] = dump_json(addon_parameters(facts, "Bad_Name", ADDON))
    (finding,) = generate(files).findings
    assert finding.rule == RULE_NAME and "'dev-k3s-Bad_Name'" in finding.message


def test_go_template_semantics() -> None:
    params = {"a": {"b": 2.0, "t": True}, "v": {"x": "<&>"}}
    assert render_string("n-{{ .a.b }}-{{.a.t}}", params) == "n-2-true"
    assert render_string("{{ toJson .v }}", params) == '{"x":"\\u003c\\u0026\\u003e"}'
    assert render_string("a  {{- .a.b -}}  z", params) == "a2z"
    with pytest.raises(TemplateError) as raised:
        render_string("{{.a.c}}", params)
    assert raised.value.missing == ".a.c"
    with pytest.raises(TemplateError, match="unsupported"):
        render_string("{{ if .a }}x{{ end }}", params)


def test_path_parameters_and_matching_follow_the_generator() -> None:
    assert path_parameters("clusters/Dev_1/addons/x.json") == {
        "path": "clusters/Dev_1/addons",
        "basename": "addons",
        "filename": "x.json",
        "basenameNormalized": "addons",
        "filenameNormalized": "x.json",
        "segments": ["clusters", "Dev_1", "addons"],
    }
    assert path_matches("clusters/*/cluster.json", "clusters/a/cluster.json")
    assert not path_matches("clusters/*/cluster.json", "clusters/a/b/cluster.json")


def test_changes_name_created_and_deleted_applications_with_destinations() -> None:
    old = fleet({"dev-k3s": ["ingress-nginx"]})
    new = fleet({"dev-k3s": ["logging"]})
    lines = [c.describe() for c in application_changes(old, new)]
    assert lines == [
        "Argo CD will create Application dev-k3s-logging → https://dev-k3s:6443, namespace logging",
        "Argo CD will delete Application dev-k3s-ingress-nginx → "
        "https://dev-k3s:6443, namespace ingress-nginx",
    ]


def test_compile_refuses_a_colliding_addon_and_writes_nothing(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["compile", "--all", "--out", str(out)]
    argv += ["--project", str(project_dir), "--source", "snapshot:examples"]
    assert main(argv) == 0
    before = tree(out)
    overlay = project_dir / "overlays/dev/40-bootstrap.yaml"
    overlay.write_text(
        "addons:\n  bootstrap:\n    repoURL: https://charts.example.com\n"
        "    chart: boot\n    version: 1.0.0\n    namespace: boot\n"
    )
    capsys.readouterr()
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert RULE_DUPLICATE in captured.out
    assert "clusters/dev-k3s/cluster.json" in captured.out
    assert "clusters/dev-k3s/addons/bootstrap.json" in captured.out
    assert "overlays/dev/40-bootstrap.yaml" in captured.out  # the layer that added it
    assert tree(out) == before


def test_diff_and_pr_body_say_what_argo_cd_will_do_deletion_is_security_relevant() -> None:
    from compiler.publishing.prbody import ReviewContext, render_body
    from compiler.publishing.treediff import diff_trees, format_text

    diff = diff_trees(fleet({"dev-k3s": ["ingress-nginx"]}), fleet({"dev-k3s": ["logging"]}))
    text = format_text(diff)
    assert "Argo CD will create Application dev-k3s-logging → https://dev-k3s:6443" in text
    assert "Argo CD will delete Application dev-k3s-ingress-nginx" in text
    context = ReviewContext("t", "ms-1-git-e40", "main", (), 1, "gitops-compiler diff")
    body = render_body(diff, context)
    security = body[body.index("Security-relevant") : body.index("### Argo CD Applications")]
    assert "Argo CD will delete Application `dev-k3s-ingress-nginx`" in security
    assert "create" not in security
    assert (
        "- Argo CD will create Application `dev-k3s-logging` → `https://dev-k3s:6443`, "
        "namespace `logging`" in body
    )
