"""Render and layout: DSL -> Kubernetes objects -> the files of the Kustomize tree.

The seed objects are compared field for field with dict literals written from the
seed document (../shared/seed, section 4); the renderers are driven with small
hand-written merged configs (each checked against the DSL schema first, so the
tests exercise configs a user can actually write); the example output is
validated with kubernetes-validate and built with a real `kubectl kustomize`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from packaging.version import Version

from compiler.cli import main
from compiler.emit import check_relative_path
from compiler.errors import UsageError
from compiler.layout import cluster_files, kustomization, shared_files
from compiler.model import ClusterFacts
from compiler.policy.schema import ConfigSchema
from compiler.project import ArgoCDSettings, load_project
from compiler.render import MAX_FILE_NAME, RenderResult, file_name, render_cluster
from compiler.yamlio import dump_manifest
from tests.conftest import ROOT

KUBECTL = Path(sys.executable).parent / "kubectl"
CLUSTERS = ("dev-k3s", "prod-eks-1", "test-k3s")
RBAC = "rbac.authorization.k8s.io"
CALICO = "projectcalico.org/v3"
BUILT_IN = {"Namespace", "ResourceQuota", "LimitRange", "Role", "RoleBinding", "NetworkPolicy"}
CALICO_KINDS = {
    "IPPool",
    "NetworkPolicy",
    "GlobalNetworkPolicy",
    "BGPConfiguration",
    "FelixConfiguration",
}
LABEL = "gitops-compiler.io"

FACTS = ClusterFacts(
    name="c1", env="dev", server="https://c1.example.internal:6443", region="eu-west-1"
)


@pytest.fixture(scope="module")
def schema() -> ConfigSchema:
    return ConfigSchema(ROOT / "policies")


def render(config: Mapping[str, Any], schema: ConfigSchema | None = None) -> RenderResult:
    """Render a hand-written merged config (schema-checked first when a schema is given)."""
    if schema is not None:
        assert schema.is_valid(config), f"test config is not schema-valid: {config}"
    return render_cluster(FACTS, config)


def by_path(result: RenderResult) -> dict[str, Mapping[str, Any]]:
    assert not result.problems, result.problems
    return {r.path: r.obj for r in result.objects}


def round_trip(obj: Mapping[str, Any]) -> Any:
    """What a reader of the emitted file gets back."""
    return yaml.safe_load(dump_manifest(obj))


@pytest.fixture(scope="module")
def example_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("example") / "out"
    argv = ["compile", "--project", str(ROOT), "--source", "snapshot:examples", "--all"]
    assert main([*argv, "--out", str(out)]) == 0
    return out


def load(path: Path) -> Any:
    data = path.read_bytes()
    assert data.endswith(b"\n") and b"\r" not in data
    return yaml.safe_load(data)


def manifests(cluster_dir: Path) -> dict[str, Any]:
    """Every object file of a cluster dir (not kustomization.yaml), relpath -> object."""
    return {
        p.relative_to(cluster_dir).as_posix(): load(p)
        for p in sorted(cluster_dir.rglob("*.yaml"))
        if p.name != "kustomization.yaml"
    }


# ------------------------------------------------------------------ the seed objects

SEED_NAMESPACE = {
    "apiVersion": "v1",
    "kind": "Namespace",
    "metadata": {
        "name": "dev-team",
        "labels": {"environment": "dev", "team": "backend"},
        "annotations": {"purpose": "development"},
    },
}
SEED_QUOTA = {
    "apiVersion": "v1",
    "kind": "ResourceQuota",
    "metadata": {"name": "dev-quota", "namespace": "dev-team"},
    "spec": {"hard": {"cpu": "4", "memory": "8Gi"}},
}
SEED_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"namespace": "dev-team", "name": "dev-role"},
    "rules": [
        {
            "apiGroups": [""],
            "resources": ["pods", "services"],
            "verbs": ["get", "list", "watch", "create", "update", "delete"],
        }
    ],
}
SEED_ROLE_BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "RoleBinding",
    "metadata": {"name": "dev-role-binding", "namespace": "dev-team"},
    "subjects": [
        {"kind": "User", "name": "dev@example.com", "apiGroup": "rbac.authorization.k8s.io"}
    ],
    "roleRef": {"kind": "Role", "name": "dev-role", "apiGroup": "rbac.authorization.k8s.io"},
}
SEED_IPPOOL = {
    "apiVersion": "projectcalico.org/v3",
    "kind": "IPPool",
    "metadata": {"name": "dev-ippool"},
    "spec": {
        "cidr": "192.168.0.0/16",
        "ipipMode": "Always",
        "natOutgoing": True,
        "disabled": False,
    },
}
SEED_CALICO_POLICY = {
    "apiVersion": "projectcalico.org/v3",
    "kind": "NetworkPolicy",
    "metadata": {"name": "allow-dev-traffic", "namespace": "dev-team"},
    "spec": {
        "selector": "all()",
        "ingress": [{"action": "Allow", "source": {"selector": "environment == 'dev'"}}],
    },
}
SEED_NETWORK_POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "restrict-traffic", "namespace": "dev-team"},
    "spec": {
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}]}],
    },
}
SEED = {
    "namespaces/dev-team/namespace.yaml": SEED_NAMESPACE,
    "namespaces/dev-team/resourcequota-dev-quota.yaml": SEED_QUOTA,
    "namespaces/dev-team/role-dev-role.yaml": SEED_ROLE,
    "namespaces/dev-team/rolebinding-dev-role-binding.yaml": SEED_ROLE_BINDING,
    "calico/ippool-dev-ippool.yaml": SEED_IPPOOL,
    "namespaces/dev-team/calico-networkpolicy-allow-dev-traffic.yaml": SEED_CALICO_POLICY,
    "namespaces/dev-team/networkpolicy-restrict-traffic.yaml": SEED_NETWORK_POLICY,
}


@pytest.mark.parametrize("rel", sorted(SEED))
def test_seed_object_comes_out_field_for_field(example_out: Path, rel: str) -> None:
    got = load(example_out / "clusters" / "dev-k3s" / rel)
    assert got == SEED[rel]
    # Types too: `==` takes True for 1, so compare the JSON forms as well.
    assert json.dumps(got, sort_keys=True) == json.dumps(SEED[rel], sort_keys=True)


def test_seed_quota_cpu_is_a_quoted_string_in_the_bytes(example_out: Path) -> None:
    path = example_out / "clusters/dev-k3s/namespaces/dev-team/resourcequota-dev-quota.yaml"
    data = path.read_bytes()
    assert re.search(rb"^    cpu: (?:'4'|\"4\")$", data, re.MULTILINE), data
    assert b"cpu: 4\n" not in data
    assert isinstance(yaml.safe_load(data)["spec"]["hard"]["cpu"], str)


def test_seed_manifests_are_listed_in_the_kustomization(example_out: Path) -> None:
    kust = load(example_out / "clusters/dev-k3s/kustomization.yaml")
    assert set(SEED) <= set(kust["resources"])


# ------------------------------------------------------------------ namespaces renderer


def test_namespace_quota_and_quantities(schema: ConfigSchema) -> None:
    config = {
        "namespaces": {
            "team-a": {
                "labels": {"team": "a"},
                "quotas": {"q": {"cpu": 4, "memory": "8Gi", "requests.cpu": 0.5, "pods": 1e3}},
            },
            "bare": {},
        }
    }
    objs = by_path(render(config, schema))
    assert objs["namespaces/bare/namespace.yaml"] == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "bare"},  # no empty labels/annotations maps
    }
    assert objs["namespaces/team-a/namespace.yaml"]["metadata"] == {
        "name": "team-a",
        "labels": {"team": "a"},
    }
    quota = objs["namespaces/team-a/resourcequota-q.yaml"]
    # Numbers in the DSL become Kubernetes quantity strings.
    assert quota["spec"] == {
        "hard": {"cpu": "4", "memory": "8Gi", "requests.cpu": "0.5", "pods": "1000"}
    }
    assert quota["metadata"] == {"name": "q", "namespace": "team-a"}


def test_limit_range_has_the_kubernetes_shape(schema: ConfigSchema) -> None:
    config = {
        "namespaces": {
            "team-a": {
                "limits": {
                    "default": {"cpu": "500m", "memory": "512Mi"},
                    "defaultRequest": {"cpu": 0.1, "memory": "128Mi"},
                }
            }
        }
    }
    objs = by_path(render(config, schema))
    assert set(objs) == {"namespaces/team-a/namespace.yaml", "namespaces/team-a/limitrange.yaml"}
    limit_range = objs["namespaces/team-a/limitrange.yaml"]
    assert limit_range == {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "limits", "namespace": "team-a"},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {"cpu": "500m", "memory": "512Mi"},
                    "defaultRequest": {"cpu": "0.1", "memory": "128Mi"},
                }
            ]
        },
    }
    kubernetes_validate.validate(round_trip(limit_range), K8S_VERSION, strict=True)


def test_no_limit_range_without_limits(schema: ConfigSchema) -> None:
    objs = by_path(render({"namespaces": {"team-a": {"labels": {"team": "a"}}}}, schema))
    assert not any(o["kind"] == "LimitRange" for o in objs.values())


def test_default_deny_network_policy(schema: ConfigSchema) -> None:
    config = {
        "namespaces": {
            "locked": {"defaultDeny": True},
            "open": {"defaultDeny": False},
        }
    }
    objs = by_path(render(config, schema))
    assert objs["namespaces/locked/networkpolicy-default-deny.yaml"] == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": "locked"},
        # Selects every pod, both directions, no rules: nothing is allowed.
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    assert set(objs) == {
        "namespaces/locked/namespace.yaml",
        "namespaces/locked/networkpolicy-default-deny.yaml",
        "namespaces/open/namespace.yaml",
    }
    dumped = dump_manifest(objs["namespaces/locked/networkpolicy-default-deny.yaml"])
    assert b"podSelector: {}\n" in dumped  # `{}`, not null: null would be invalid
    assert b"ingress" not in dumped and b"egress:" not in dumped


def test_default_deny_next_to_a_policy_of_the_same_name_is_a_problem(
    schema: ConfigSchema,
) -> None:
    mine = {"podSelector": {}, "policyTypes": ["Ingress"]}
    config = {
        "namespaces": {"ns": {"defaultDeny": True, "networkPolicies": {"default-deny": mine}}}
    }
    result = render(config, schema)
    assert [p.rule for p in result.problems] == ["render.name-conflict"]
    assert result.problems[0].path == ("namespaces", "ns", "networkPolicies", "default-deny")


def test_network_policies_k8s_and_calico(schema: ConfigSchema) -> None:
    np = {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"], "egress": []}
    cp = {"selector": "app == 'web'", "types": ["Ingress"], "ingress": [{"action": "Deny"}]}
    config = {"namespaces": {"ns": {"networkPolicies": {"web": np}, "calicoPolicies": {"web": cp}}}}
    objs = by_path(render(config, schema))
    assert objs["namespaces/ns/networkpolicy-web.yaml"] == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": np,
    }
    assert objs["namespaces/ns/calico-networkpolicy-web.yaml"] == {
        "apiVersion": CALICO,
        "kind": "NetworkPolicy",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": cp,
    }


# ------------------------------------------------------------------ rbac renderer

READ_PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}


def test_role_binding_to_a_cluster_role(schema: ConfigSchema) -> None:
    config = {
        "namespaces": {"ns": {"access": {"viewers": {"clusterRole": "view", "groups": ["g"]}}}}
    }
    objs = by_path(render(config, schema))
    binding = objs["namespaces/ns/rolebinding-viewers.yaml"]
    assert binding == {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "viewers", "namespace": "ns"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"},
        "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": "g"}],
    }
    assert not any(o["kind"] == "Role" for o in objs.values())  # a ClusterRole is not made


def test_role_binding_subjects_users_groups_service_accounts(schema: ConfigSchema) -> None:
    binding = {
        "role": "reader",
        "users": ["alice@example.com", "bob"],
        "groups": ["devs"],
        "serviceAccounts": ["ci", "tools/deployer"],
    }
    config = {
        "roles": {"reader": {"rules": [READ_PODS]}},
        "namespaces": {"ns": {"access": {"readers": binding}}},
    }
    objs = by_path(render(config, schema))
    got = objs["namespaces/ns/rolebinding-readers.yaml"]
    assert got["roleRef"] == {"apiGroup": RBAC, "kind": "Role", "name": "reader"}
    assert got["subjects"] == [
        {"apiGroup": RBAC, "kind": "User", "name": "alice@example.com"},
        {"apiGroup": RBAC, "kind": "User", "name": "bob"},
        {"apiGroup": RBAC, "kind": "Group", "name": "devs"},
        # A ServiceAccount subject has no apiGroup (it is the core group) and a namespace.
        {"kind": "ServiceAccount", "name": "ci", "namespace": "ns"},
        {"kind": "ServiceAccount", "name": "deployer", "namespace": "tools"},
    ]
    for subject in got["subjects"]:
        if subject["kind"] == "ServiceAccount":
            assert "apiGroup" not in subject
    for obj in objs.values():
        kubernetes_validate.validate(round_trip(obj), K8S_VERSION, strict=True)


def test_role_template_is_instantiated_once_per_namespace(schema: ConfigSchema) -> None:
    rules = [READ_PODS, {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}]
    config = {
        "roles": {"reader": {"rules": rules}, "unused": {"rules": [READ_PODS]}},
        "namespaces": {
            "a": {
                "access": {
                    "one": {"role": "reader", "users": ["u1"]},
                    "two": {"role": "reader", "users": ["u2"]},
                }
            },
            "b": {"access": {"one": {"role": "reader", "users": ["u1"]}}},
        },
    }
    objs = by_path(render(config, schema))
    roles = {p: o for p, o in objs.items() if o["kind"] == "Role"}
    assert sorted(roles) == ["namespaces/a/role-reader.yaml", "namespaces/b/role-reader.yaml"]
    for path, role in roles.items():
        ns = path.split("/")[1]
        assert role == {
            "apiVersion": f"{RBAC}/v1",
            "kind": "Role",
            "metadata": {"name": "reader", "namespace": ns},
            "rules": rules,  # exactly the template's rules, in order
        }
    bindings = sorted(p for p, o in objs.items() if o["kind"] == "RoleBinding")
    assert bindings == [
        "namespaces/a/rolebinding-one.yaml",
        "namespaces/a/rolebinding-two.yaml",
        "namespaces/b/rolebinding-one.yaml",
    ]


def test_access_to_a_missing_role_template_is_a_problem_not_an_exception(
    schema: ConfigSchema,
) -> None:
    config = {
        "roles": {"reader": {"rules": [READ_PODS]}},
        "namespaces": {
            "ns": {
                "access": {
                    "broken": {"role": "no-such-role", "users": ["u"]},
                    "fine": {"role": "reader", "users": ["u"]},
                }
            }
        },
    }
    result = render(config, schema)  # the schema allows it; rendering cannot
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert problem.rule == "render.role-missing"
    assert problem.path == ("namespaces", "ns", "access", "broken", "role")
    assert "no-such-role" in problem.message
    paths = {r.path for r in result.objects}
    assert "namespaces/ns/rolebinding-broken.yaml" not in paths
    assert "namespaces/ns/rolebinding-fine.yaml" in paths


# ------------------------------------------------------------------ calico renderer


def test_global_network_policy_and_ip_pools(schema: ConfigSchema) -> None:
    gnp = {
        "selector": "all()",
        "types": ["Egress"],
        "egress": [{"action": "Deny", "destination": {"nets": ["169.254.169.254/32"]}}],
    }
    pool = {"cidr": "10.10.0.0/16", "blockSize": 26, "vxlanMode": "Always", "natOutgoing": True}
    config = {"calico": {"globalNetworkPolicies": {"deny-metadata": gnp}, "ipPools": {"p": pool}}}
    objs = by_path(render(config, schema))
    assert objs == {
        "calico/globalnetworkpolicy-deny-metadata.yaml": {
            "apiVersion": CALICO,
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": "deny-metadata"},  # cluster-scoped: no namespace
            "spec": gnp,
        },
        "calico/ippool-p.yaml": {
            "apiVersion": CALICO,
            "kind": "IPPool",
            "metadata": {"name": "p"},
            "spec": pool,
        },
    }


@pytest.mark.parametrize(
    ("key", "kind"),
    [("bgpConfiguration", "BGPConfiguration"), ("felixConfiguration", "FelixConfiguration")],
)
def test_calico_singletons_only_when_configured(schema: ConfigSchema, key: str, kind: str) -> None:
    path = f"calico/{kind.lower()}.yaml"
    assert by_path(render({"calico": {}}, schema)) == {}
    assert by_path(render({"calico": {key: {}}}, schema)) == {}
    spec = {"logSeverityScreen": "Info"}
    objs = by_path(render({"calico": {key: spec}}, schema))
    assert objs == {
        path: {"apiVersion": CALICO, "kind": kind, "metadata": {"name": "default"}, "spec": spec}
    }


# ------------------------------------------------------------------ add-ons and Argo CD

ADDON = {
    "repoURL": "https://charts.example.com",
    "chart": "ingress-nginx",
    "version": "4.11.2",
    "namespace": "ingress-nginx",
    "values": {"controller": {"replicaCount": 2}},
}


def test_addon_json_files(schema: ConfigSchema) -> None:
    bare = {k: v for k, v in ADDON.items() if k != "values"}
    config = {"addons": {"ingress": ADDON, "logging": {**bare, "chart": "fluent-bit"}}}
    result = render(config, schema)
    files = cluster_files(FACTS, config, result.objects, [])
    ingress = json.loads(files["clusters/c1/addons/ingress.json"])
    assert ingress == {
        "addon": "ingress",
        "chart": "ingress-nginx",
        "version": "4.11.2",
        "namespace": "ingress-nginx",
        "repoURL": "https://charts.example.com",
        "releaseName": "ingress",
        "values": {"controller": {"replicaCount": 2}},
        "cluster": {"name": "c1", "server": FACTS.server, "env": "dev"},
    }
    logging = json.loads(files["clusters/c1/addons/logging.json"])
    # Always present: the template reads it and missingkey=error fails on absence.
    assert logging["values"] == {}
    assert logging["chart"] == "fluent-bit"
    assert json.loads(files["clusters/c1/cluster.json"]) == {
        "name": "c1",
        "env": "dev",
        "region": "eu-west-1",
        "server": FACTS.server,
    }
    # Canonical JSON: sorted keys, trailing newline.
    raw = files["clusters/c1/addons/ingress.json"]
    assert raw.endswith(b"}\n")
    assert raw == (json.dumps(ingress, sort_keys=True, indent=2) + "\n").encode()


def test_example_addons_carry_the_cluster(example_out: Path) -> None:
    for cluster in CLUSTERS:
        facts = json.loads((example_out / "clusters" / cluster / "cluster.json").read_bytes())
        addons = sorted((example_out / "clusters" / cluster / "addons").glob("*.json"))
        assert addons
        for path in addons:
            addon = json.loads(path.read_bytes())
            assert addon["addon"] == path.stem
            assert addon["cluster"]["name"] == cluster == facts["name"]
            assert addon["cluster"]["server"] == facts["server"]
            for key in ("chart", "version", "namespace", "repoURL"):
                assert isinstance(addon[key], str) and addon[key]
            assert isinstance(addon["values"], dict)


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def test_application_sets() -> None:
    settings = ArgoCDSettings(
        repo_url="https://git.example.com/x.git",
        target_revision="release",
        project="platform-bootstrap",
        namespace="argo",
    )
    files = shared_files(settings)
    assert sorted(files) == [
        "applicationsets/cluster-addons.yaml",
        "applicationsets/cluster-bootstrap.yaml",
    ]
    generators = {}
    for path, data in files.items():
        appset = yaml.safe_load(data)
        assert appset["apiVersion"] == "argoproj.io/v1alpha1"
        assert appset["kind"] == "ApplicationSet"
        assert appset["metadata"] == {"name": Path(path).stem, "namespace": "argo"}
        spec = appset["spec"]
        assert spec["goTemplate"] is True
        assert spec["goTemplateOptions"] == ["missingkey=error"]
        assert spec["syncPolicy"]["preserveResourcesOnDeletion"] is True
        project = spec["template"]["spec"]["project"]
        assert project == "platform-bootstrap"
        assert project != "default" and not _templated(project)
        [generator] = spec["generators"]
        git = generator["git"]
        assert git["repoURL"] == "https://git.example.com/x.git"
        assert git["revision"] == "release"
        generators[Path(path).stem] = [f["path"] for f in git["files"]]
    assert generators == {
        "cluster-bootstrap": ["clusters/*/cluster.json"],
        "cluster-addons": ["clusters/*/addons/*.json"],
    }
    bootstrap = yaml.safe_load(files["applicationsets/cluster-bootstrap.yaml"])
    source = bootstrap["spec"]["template"]["spec"]["source"]
    # The Application points at the directory of the cluster.json it came from.
    assert source["path"] == "{{.path.path}}"
    assert source["repoURL"] == "https://git.example.com/x.git"


def test_application_set_keys_are_what_the_generator_files_hold(example_out: Path) -> None:
    """Every `{{.x}}` the templates read exists in every generator file (missingkey=error)."""
    builtin = {"path"}  # the git files generator's own parameters
    for name, pattern in (("cluster-bootstrap", "cluster.json"), ("cluster-addons", "*.json")):
        text = (example_out / "applicationsets" / f"{name}.yaml").read_text()
        keys = set(re.findall(r"\{\{\s*(?:toJson\s+)?\.([A-Za-z0-9_.]+)\s*\}\}", text))
        assert keys
        folder = "" if name == "cluster-bootstrap" else "addons/"
        for cluster in CLUSTERS:
            for path in (example_out / "clusters" / cluster).glob(folder + pattern):
                params = json.loads(path.read_bytes())
                for key in keys:
                    first, *rest = key.split(".")
                    if first in builtin:
                        continue
                    value = params[first]
                    for part in rest:
                        value = value[part]


def test_example_application_sets_use_the_project_file(example_out: Path) -> None:
    project = load_project(ROOT).argocd.project
    assert project not in ("default", "") and not _templated(project)
    for path in (example_out / "applicationsets").glob("*.yaml"):
        assert load(path)["spec"]["template"]["spec"]["project"] == project


@pytest.mark.parametrize("project", ["default", "{{.env}}", "team-{{ .name }}"])
def test_application_sets_refuse_a_default_or_templated_project(project: str) -> None:
    with pytest.raises(UsageError, match="project"):
        shared_files(ArgoCDSettings(project=project))


def test_project_file_refuses_the_default_project(tmp_path: Path) -> None:
    (tmp_path / "gitops-compiler.yaml").write_text("argocd:\n  project: default\n")
    with pytest.raises(UsageError, match="project"):
        load_project(tmp_path)


# ------------------------------------------------------------------ kustomization.yaml


def test_kustomization_lists_exactly_the_emitted_manifests(example_out: Path) -> None:
    for cluster in CLUSTERS:
        directory = example_out / "clusters" / cluster
        kust = load(directory / "kustomization.yaml")
        assert list(kust) == ["apiVersion", "kind", "labels", "resources"]
        assert kust["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
        assert kust["kind"] == "Kustomization"
        assert kust["resources"] == sorted(kust["resources"])
        assert len(set(kust["resources"])) == len(kust["resources"])
        assert set(kust["resources"]) == set(manifests(directory))
        facts = json.loads((directory / "cluster.json").read_bytes())
        assert kust["labels"] == [
            {
                "includeSelectors": False,
                "pairs": {
                    f"{LABEL}/cluster": cluster,
                    f"{LABEL}/env": facts["env"],
                    f"{LABEL}/region": facts["region"],
                },
            }
        ]


def test_kustomization_of_hand_written_config(schema: ConfigSchema) -> None:
    config = {
        "namespaces": {"b": {"defaultDeny": True}, "a": {"quotas": {"q": {"cpu": "1"}}}},
        "calico": {"felixConfiguration": {"logSeverityScreen": "Info"}},
        "addons": {"x": ADDON},
    }
    result = render(config, schema)
    files = cluster_files(FACTS, config, result.objects, [])
    kust = yaml.safe_load(files["clusters/c1/kustomization.yaml"])
    manifests_ = sorted(
        p.removeprefix("clusters/c1/")
        for p in files
        if p.endswith(".yaml") and not p.endswith("/kustomization.yaml")
    )
    assert kust["resources"] == manifests_ == sorted(kust["resources"])
    assert "addons/x.json" not in kust["resources"]
    no_region = ClusterFacts(name="c2", env="prod", server="https://c2:6443")
    pairs = kustomization(no_region, result.objects)["labels"][0]["pairs"]
    assert pairs == {f"{LABEL}/cluster": "c2", f"{LABEL}/env": "prod"}


# ------------------------------------------------------------------ kubernetes-validate


def _k8s_version() -> str:
    """The shipped schema version closest to the project's kubernetesVersion."""
    wanted = Version(load_project(ROOT).kubernetes_version)
    shipped = {Version(v).release[:2] for v in kubernetes_validate.utils.all_versions()}
    older = [v for v in shipped if v <= wanted.release[:2]]
    best = max(older) if older else min(shipped)
    return ".".join(map(str, best))


K8S_VERSION = _k8s_version()


def test_kubernetes_version_is_shipped_by_kubernetes_validate() -> None:
    assert load_project(ROOT).kubernetes_version == "1.31"
    assert K8S_VERSION == "1.31"


def test_every_built_in_object_of_the_examples_validates_strictly(example_out: Path) -> None:
    kinds_seen: set[str] = set()
    skipped: set[tuple[str, str]] = set()
    for cluster in CLUSTERS:
        for rel, obj in manifests(example_out / "clusters" / cluster).items():
            if obj["apiVersion"] in (CALICO, "crd.projectcalico.org/v1"):  # either group
                # CRD kinds are checked against the vendored CRD schemas (next issue).
                skipped.add((obj["apiVersion"], obj["kind"]))
                continue
            assert obj["kind"] in BUILT_IN, rel
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
            kinds_seen.add(obj["kind"])
    assert kinds_seen == BUILT_IN
    assert {kind for _, kind in skipped} <= CALICO_KINDS


def test_strict_validation_catches_a_wrong_shape() -> None:
    """Guard for the test above: the validator is really strict."""
    bad = {**SEED_QUOTA, "spec": {"hard": {"cpu": "4"}, "hardd": {}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)
    bad_subject = {**SEED_ROLE_BINDING, "subjects": [{"kind": "User", "nam": "x"}]}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad_subject, K8S_VERSION, strict=True)


# ------------------------------------------------------------------ kubectl kustomize


@pytest.mark.slow
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_kubectl_kustomize_builds_every_cluster_dir(example_out: Path, cluster: str) -> None:
    directory = example_out / "clusters" / cluster
    proc = subprocess.run(
        [str(KUBECTL), "kustomize", str(directory)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    built = list(yaml.safe_load_all(proc.stdout))
    facts = json.loads((directory / "cluster.json").read_bytes())
    expected = {
        f"{LABEL}/cluster": cluster,
        f"{LABEL}/env": facts["env"],
        f"{LABEL}/region": facts["region"],
    }
    assert len(built) == len(load(directory / "kustomization.yaml")["resources"])
    for obj in built:
        labels = obj["metadata"]["labels"]
        assert expected.items() <= labels.items(), obj["metadata"]
        if obj["kind"] == "NetworkPolicy" and obj["apiVersion"].startswith("networking"):
            # includeSelectors: false -> the policy still selects what the DSL said.
            assert f"{LABEL}/cluster" not in json.dumps(obj["spec"])


# ------------------------------------------------------------------ YAML traps

TRAPS = {
    "no": "no",
    "on": "on",
    "mode": "0755",
    "octal": "0o755",
    "exp": "1e3",
    "bool": "true",
    "nul": "null",
    "yes": "y",
    "hex": "0x1F",
    "under": "1_000",
    "date": "2001-12-14",
}
# Annotation values are any string (label values must be label syntax).
ANNOTATIONS = {
    "tilde": "~",
    "dot": ".5",
    "inf": ".inf",
    "empty": "",
    "colon": "key: value",
    "text": "line one\nline two: with colon\n",
    "hash": "a #comment",
    "lead": "- not a list",
}
# YAML 1.2 core schema: plain scalars that are not strings there.
_YAML12_NOT_STR = re.compile(
    r"null|Null|NULL|~|true|True|TRUE|false|False|FALSE"
    r"|[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?"
    r"|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
)


def _trap_namespace(schema: ConfigSchema) -> tuple[Mapping[str, Any], bytes]:
    config = {"namespaces": {"traps": {"labels": TRAPS, "annotations": ANNOTATIONS}}}
    [rendered] = render(config, schema).objects
    return rendered.obj, dump_manifest(rendered.obj)


def test_yaml_trap_strings_stay_strings(schema: ConfigSchema) -> None:
    obj, data = _trap_namespace(schema)
    loaded = yaml.safe_load(data)
    assert loaded["metadata"]["labels"] == TRAPS
    assert loaded["metadata"]["annotations"] == ANNOTATIONS
    assert loaded == json.loads(json.dumps(obj))
    # A YAML 1.2 reader (and Go's) resolves plain scalars differently from PyYAML:
    # no label value may be written plain if YAML 1.2 would read it as non-string.
    for event in yaml.parse(data):
        if isinstance(event, yaml.ScalarEvent) and event.style is None:
            assert not _YAML12_NOT_STR.fullmatch(event.value), event.value
    for value in ("1e3", "0o755", "0755", "1_000", "0x1F", ".5", "y", "~", "no", "on", "null"):
        assert re.search(rf"""^    \S+: (['"]){re.escape(value)}\1$""", data.decode(), re.M), value


def _kubectl_read(path: Path) -> subprocess.CompletedProcess[bytes]:
    """kubectl reads the file (as Argo CD does, with sigs.k8s.io/yaml) and prints JSON."""
    argv = ["patch", "--local", "-f", str(path), "--type", "merge", "-p", "{}", "-o", "json"]
    return subprocess.run([str(KUBECTL), *argv], capture_output=True, timeout=60, check=False)


@pytest.mark.slow
def test_yaml_trap_strings_survive_a_go_reader(schema: ConfigSchema, tmp_path: Path) -> None:
    """kubectl (sigs.k8s.io/yaml) decodes labels as map[string]string: a number fails."""
    _, data = _trap_namespace(schema)
    path = tmp_path / "namespace.yaml"
    path.write_bytes(data)
    proc = _kubectl_read(path)
    assert proc.returncode == 0, proc.stderr.decode()
    got = json.loads(proc.stdout)
    assert got["metadata"]["labels"] == TRAPS
    assert got["metadata"]["annotations"] == ANNOTATIONS
    # Guard: the same check does fail on an unquoted 1e3.
    path.write_bytes(
        b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n  labels:\n    a: 1e3\n"
    )
    proc = _kubectl_read(path)
    assert proc.returncode != 0


def test_no_aliases_when_a_merged_config_shares_objects(schema: ConfigSchema) -> None:
    rules = [READ_PODS]
    types = ["Ingress", "Egress"]
    selector = {"matchLabels": {"app": "x"}}
    peer = [{"podSelector": selector}]
    pool = {"cidr": "10.0.0.0/16", "natOutgoing": True}
    config = {
        "roles": {"r1": {"rules": rules}, "r2": {"rules": rules}},
        "namespaces": {
            "ns": {
                "access": {
                    "b1": {"role": "r1", "users": ["u"]},
                    "b2": {"role": "r2", "users": ["u"]},
                },
                "networkPolicies": {
                    "p": {
                        "podSelector": selector,
                        "policyTypes": types,
                        "ingress": [{"from": peer}],
                        "egress": [{"to": peer}],
                    },
                    "q": {"podSelector": selector, "policyTypes": types},
                },
            }
        },
        "calico": {"ipPools": {"a": pool, "b": pool}},
    }
    result = render(config, schema)
    files = cluster_files(FACTS, config, result.objects, [])
    for path, data in files.items():
        assert b"&id" not in data and b"*id" not in data, path
        for event in yaml.parse(data) if path.endswith(".yaml") else ():
            assert getattr(event, "anchor", None) is None, path
            assert not isinstance(event, yaml.AliasEvent), path
    policy = yaml.safe_load(files["clusters/c1/namespaces/ns/networkpolicy-p.yaml"])
    assert policy["spec"]["ingress"][0]["from"] == peer
    assert policy["spec"]["egress"][0]["to"] == peer


# ------------------------------------------------------------------ file naming


def _long_name(seed: str, length: int = 253) -> str:
    """A valid DNS-1123 subdomain of `length` characters (labels of at most 63)."""
    labels, left = [], length
    while left > 0:
        size = min(63, left)
        if left - size == 1:  # never leave a single trailing character for a label+dot
            size -= 2
        labels.append((seed * 63)[:size])
        left -= size + 1
    name = ".".join(labels)
    assert len(name) == length, len(name)
    return name


def test_a_253_character_name_gives_a_short_stable_file_name(schema: ConfigSchema) -> None:
    name = _long_name("a")
    config = {"namespaces": {"ns": {"quotas": {name: {"cpu": "1"}}}}}
    objs = by_path(render(config, schema))
    [path] = [p for p, o in objs.items() if o["kind"] == "ResourceQuota"]
    base = path.rsplit("/", 1)[1]
    assert len(base.encode()) <= MAX_FILE_NAME
    assert base.startswith("resourcequota-aaaa") and base.endswith(".yaml")
    assert objs[path]["metadata"]["name"] == name  # the object keeps its full name
    check_relative_path(f"clusters/c1/{path}")  # emit accepts it
    # Stable: the same name gives the same file name, every time.
    assert by_path(render(config, schema)).keys() == objs.keys()
    assert file_name("resourcequota", name) == base


def test_two_long_names_with_a_common_prefix_do_not_collide(schema: ConfigSchema) -> None:
    one, two = _long_name("b"), _long_name("b")[:-1] + "c"
    assert one != two and one[:250] == two[:250]
    config = {"namespaces": {"ns": {"quotas": {one: {"cpu": "1"}, two: {"cpu": "2"}}}}}
    result = render(config, schema)
    assert not result.problems
    paths = [r.path for r in result.objects if r.obj["kind"] == "ResourceQuota"]
    assert len(set(paths)) == 2
    assert all(len(p.rsplit("/", 1)[1].encode()) <= MAX_FILE_NAME for p in paths)


def test_file_names_at_the_limit() -> None:
    prefix, suffix = "globalnetworkpolicy", ".yaml"
    fits = "x" * (MAX_FILE_NAME - len(prefix) - 1 - len(suffix))
    assert file_name(prefix, fits) == f"{prefix}-{fits}{suffix}"  # 255 bytes: kept as is
    over = fits + "y"
    shortened = file_name(prefix, over)
    assert len(shortened.encode()) <= MAX_FILE_NAME
    assert shortened != file_name(prefix, fits + "z")
    assert file_name("ippool", "dev-ippool") == "ippool-dev-ippool.yaml"


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "A", ".hidden", "x..y", "a\x00b", "-a"])
def test_file_name_refuses_unsafe_names(bad: str) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        file_name("role", bad)


# ------------------------------------------------------------------ determinism


def _reordered(value: Any) -> Any:
    """The same data with every mapping built in reverse key order."""
    if isinstance(value, Mapping):
        return {key: _reordered(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(item) for item in value]
    return value


def _example_merged_configs() -> list[tuple[ClusterFacts, Mapping[str, Any]]]:
    from compiler.layers import StackLoader
    from compiler.pipeline import merge_cluster
    from compiler.sources import Pin
    from compiler.sources.snapshot import SnapshotStore

    project = load_project(ROOT)
    loader = StackLoader(SnapshotStore(ROOT / "examples"), project, Pin())
    out = []
    for name in CLUSTERS:
        cluster = loader.load(name)
        out.append((cluster.facts, merge_cluster(cluster, project).value))
    return out


def test_same_config_in_any_key_order_gives_the_same_bytes(schema: ConfigSchema) -> None:
    hand = {
        "roles": {"r": {"rules": [READ_PODS]}},
        "namespaces": {
            "zeta": {"labels": {"z": "1", "a": "2"}, "defaultDeny": True},
            "alpha": {
                "annotations": {"b": "x", "a": "y"},
                "quotas": {"q2": {"memory": "1Gi", "cpu": "1"}, "q1": {"pods": "10"}},
                "limits": {"defaultRequest": {"cpu": "1"}, "default": {"memory": "1Gi"}},
                "access": {"z": {"role": "r", "users": ["u"]}, "a": {"clusterRole": "view"}},
            },
        },
        "calico": {"ipPools": {"b": {"cidr": "10.1.0.0/16"}, "a": {"cidr": "10.2.0.0/16"}}},
        "addons": {"x": ADDON, "a": ADDON},
    }
    hand["namespaces"]["alpha"]["access"]["a"]["groups"] = ["g"]
    cases = [(FACTS, hand), *_example_merged_configs()]
    for facts, config in cases:
        flipped = _reordered(config)
        assert list(flipped) == list(reversed(list(config)))
        first = render_cluster(facts, config)
        second = render_cluster(facts, flipped)
        assert not first.problems and not second.problems
        assert [r.path for r in first.objects] == [r.path for r in second.objects]
        one = cluster_files(facts, config, first.objects, [])
        two = cluster_files(facts, flipped, second.objects, [])
        assert list(one) == list(two) or sorted(one) == sorted(two)
        assert one == two
    assert shared_files(ArgoCDSettings()) == shared_files(ArgoCDSettings())


def test_manifest_key_order_is_conventional() -> None:
    obj = _reordered(SEED_ROLE_BINDING)
    text = dump_manifest(obj).decode()
    top = [line.split(":")[0] for line in text.splitlines() if not line.startswith((" ", "-"))]
    assert top == ["apiVersion", "kind", "metadata", "roleRef", "subjects"]
    meta = text.split("metadata:\n", 1)[1].splitlines()[:2]
    assert meta == ["  name: dev-role-binding", "  namespace: dev-team"]
