"""A synthetic fleet: C clusters x N namespaces, as a project directory and a snapshot.

The shape follows a real bootstrap config: organisation defaults (roles,
add-ons, Felix settings), one record per environment, overlays reviewed in git,
and per cluster a record with its facts, its namespaces and its IP pools.
Each namespace gets a quota, container limits, two role bindings, default-deny
plus one network policy, and one Calico policy: 9 objects, so C=1000, N=10
renders about 95,000 objects.

Everything is a pure function of (C, N): the same sizes give the same bytes.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.yamlio import dump_yaml

ENVS = ("dev", "test", "prod")
# Inside the ranges policies/ippools.cue allows for each environment.
_POOLS = {
    "dev": ("10.40.0.0/16", "10.41.0.0/16"),
    "test": ("10.42.0.0/16", "10.43.0.0/16"),
    "prod": ("10.96.0.0/16", "10.97.0.0/16"),
}
_CREATED = "2026-01-05T09:00:00Z"


@dataclass(frozen=True)
class Workload:
    clusters: int
    namespaces: int

    @property
    def cluster_names(self) -> list[str]:
        return [self.cluster_name(i) for i in range(self.clusters)]

    def cluster_name(self, index: int) -> str:
        return f"{ENVS[index % len(ENVS)]}-c{index:05d}"

    @property
    def table(self) -> str:
        return f"bench-c{self.clusters}-n{self.namespaces}"

    def write(self, root: Path, policies: Path) -> Path:
        """Write the project (file, policies, overlays) and its snapshot; return the snapshot."""
        root.mkdir(parents=True, exist_ok=True)
        shutil.copytree(policies, root / "policies", dirs_exist_ok=True)
        _write(root / "gitops-compiler.yaml", project_file(self.table))
        for env in ENVS:
            for name, doc in overlays(env).items():
                _write(root / "overlays" / env / name, doc)
        snapshot = root / "snapshot"
        _write(snapshot / "defaults.yaml", _versions(defaults()))
        for env in ENVS:
            _write(snapshot / "env" / f"{env}.yaml", _versions(env_record(env)))
        for index in range(self.clusters):
            name = self.cluster_name(index)
            _write(snapshot / "cluster" / f"{name}.yaml", _versions(self.cluster_record(index)))
        return snapshot

    def cluster_record(self, index: int, *, revision: int = 0) -> dict[str, Any]:
        """The cluster's item: facts beside `config`. `revision` > 0 makes a changed version:
        a change a team would make and the policies pass at any size and revision (each
        quota one core up, within every environment's ceiling, and the revision's
        on-call group granted view), unlike growing the quota with each revision."""
        name = self.cluster_name(index)
        env = ENVS[index % len(ENVS)]
        pool_a, pool_b = _POOLS[env]
        namespaces = {
            f"team-{n:02d}": _namespace(env, n, index, revision) for n in range(self.namespaces)
        }
        return {
            "cluster": {
                "name": name,
                "env": env,
                "region": ("eu-west-1", "eu-central-1", "us-east-1")[index % 3],
                "server": f"https://{name}.clusters.example.internal:6443",
                "labels": {"tier": env, "shard": str(index % 16)},
            },
            "config": {
                "namespaces": namespaces,
                "calico": {
                    "ipPools": {
                        "pool-a": {
                            "cidr": pool_a,
                            "blockSize": 26,
                            "ipipMode": "CrossSubnet",
                            "natOutgoing": True,
                        },
                        "pool-b": {
                            "cidr": pool_b,
                            "blockSize": 26,
                            "vxlanMode": "Always",
                            "natOutgoing": True,
                            "disabled": index % 2 == 0,
                        },
                    },
                    "bgpConfiguration": {
                        "asNumber": 64512 + index % 1000,
                        "nodeToNodeMeshEnabled": False,
                    },
                },
                "addons": {
                    "ingress-nginx": {"values": {"controller": {"replicaCount": 2 + index % 3}}}
                },
            },
        }


def _namespace(env: str, n: int, index: int, revision: int) -> dict[str, Any]:
    team = f"team-{n:02d}"
    cpu = 4 + (index + n) % 8 + (1 if revision else 0)  # at most 12: dev's ceiling is 16
    viewers = [f"{team}-devs", "auditors"] + ([f"oncall-r{revision:04d}"] if revision else [])
    return {
        "labels": {"team": team, "environment": env, "cost-center": f"cc-{index % 50:03d}"},
        "quotas": {"compute": {"cpu": str(cpu), "memory": f"{cpu * 2}Gi", "pods": "100"}},
        "limits": {
            "default": {"cpu": "500m", "memory": "512Mi"},
            "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
        },
        "access": {
            "deployers": {"role": "app-deployer", "groups": [f"{team}-deployers"]},
            "viewers": {"clusterRole": "view", "groups": viewers},
        },
        "defaultDeny": True,
        "networkPolicies": {
            "allow-same-namespace": {
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
            }
        },
        "calicoPolicies": {
            "allow-monitoring": {
                "selector": "all()",
                "types": ["Ingress"],
                "ingress": [
                    {
                        "action": "Allow",
                        "protocol": "TCP",
                        "source": {"namespaceSelector": "team == 'platform'"},
                        "destination": {"ports": [9090 + n]},
                    }
                ],
            }
        },
    }


def defaults() -> dict[str, Any]:
    return {
        "roles": {
            "app-deployer": {
                "rules": [
                    {
                        "apiGroups": ["", "apps"],
                        "resources": ["deployments", "services", "configmaps"],
                        "verbs": ["get", "list", "watch", "create", "update", "patch"],
                    },
                ]
            }
        },
        "namespaces": {
            "monitoring": {
                "labels": {"team": "platform"},
                "quotas": {"monitoring-quota": {"cpu": "2", "memory": "4Gi"}},
                "defaultDeny": True,
            }
        },
        "calico": {"felixConfiguration": {"logSeverityScreen": "Info"}},
        "addons": {
            "ingress-nginx": {
                "repoURL": "https://kubernetes.github.io/ingress-nginx",
                "chart": "ingress-nginx",
                "version": "4.11.2",
                "namespace": "ingress-nginx",
                "values": {"controller": {"replicaCount": 2}},
            },
            "logging": {
                "repoURL": "https://fluent.github.io/helm-charts",
                "chart": "fluent-bit",
                "version": "0.47.10",
                "namespace": "logging",
            },
        },
    }


def env_record(env: str) -> dict[str, Any]:
    return {
        "namespaces": {"monitoring": {"labels": {"environment": env}}},
        "calico": {
            "felixConfiguration": {"logSeverityScreen": "Warning" if env == "prod" else "Info"}
        },
    }


def overlays(env: str) -> dict[str, dict[str, Any]]:
    """One overlay file per environment, as a reviewed change would be."""
    replicas = {"dev": 1, "test": 2, "prod": 3}[env]
    return {
        "10-addons.yaml": {"addons": {"logging": {"values": {"replicaCount": replicas}}}},
        "20-monitoring.yaml": {
            "namespaces": {"monitoring": {"limits": {"default": {"cpu": "1", "memory": "1Gi"}}}}
        },
    }


def project_file(table: str) -> dict[str, Any]:
    return {
        "table": table,
        "region": "us-east-1",
        "kubernetesVersion": "1.31",
        "lists": {"namespaces.*.access.*.groups": "append"},
        "argocd": {
            "repoURL": "https://git.example.com/platform/cluster-bootstrap.git",
            "targetRevision": "main",
            "project": "cluster-bootstrap",
            "namespace": "argocd",
        },
    }


def _versions(item: dict[str, Any]) -> dict[str, Any]:
    body = item if "config" in item else {"config": item}
    return {
        "versions": [
            {
                "version": 1,
                "created_at": _CREATED,
                "author": "bench",
                "comment": "generated",
                **body,
            }
        ]
    }


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dump_yaml(data))
