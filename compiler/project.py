"""The project file `gitops-compiler.yaml`: table, layer stack, list strategies, Argo CD.

Every setting has a default, so a project without the file compiles with the
stack of DESIGN.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from compiler.errors import UsageError
from compiler.merge import ListStrategies
from compiler.model import DocPath, format_path
from compiler.policy.guards.base import GuardSettings
from compiler.policy.rulesets import builtin_rule_sets, cue_files, definitions_dir

PROJECT_FILE = "gitops-compiler.yaml"
# A config repository keeps its DynamoDB layers as a snapshot (`gitops-compiler snapshot`);
# this repository names its examples/ in its own project file.
DEFAULT_GOLDEN_SOURCE = "snapshot"

DEFAULT_STACK: tuple[Mapping[str, Any], ...] = (
    {"dynamodb": "defaults"},
    {"dynamodb": "env/{env}", "optional": True},
    {"files": "overlays/{env}"},
    {"dynamodb": "cluster/{cluster}"},
)

_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "table": {"type": "string", "minLength": 3, "maxLength": 255},
        "region": {"type": "string", "minLength": 1},
        "endpointUrl": {"type": ["string", "null"], "pattern": "^https?://"},
        "kubernetesVersion": {"type": "string", "pattern": r"^\d+\.\d+$"},
        # The Calico API group of every cluster without its own `calicoAPI` fact.
        "calicoAPI": {"enum": ["projectcalico.org/v3", "crd.projectcalico.org/v1"]},
        "layers": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "dynamodb": {"type": "string", "pattern": r"^[a-z]+(/[-a-z0-9{}]+)?$"},
                    "files": {"type": "string", "minLength": 1},
                    "optional": {"type": "boolean"},
                },
                "oneOf": [{"required": ["dynamodb"]}, {"required": ["files"]}],
            },
        },
        "lists": {"type": "object", "additionalProperties": {"type": "string"}},
        "argocd": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                # A URL or a path git reads as one; never an option (`git ls-remote
                # --upload-pack=...` runs a command), nor blank at the start.
                "repoURL": {"type": "string", "minLength": 1, "pattern": "^[^-\\s]"},
                "targetRevision": {"type": "string", "minLength": 1},
                "project": {"type": "string", "minLength": 1, "not": {"const": "default"}},
                "namespace": {"type": "string", "minLength": 1},
            },
        },
        "policy": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "reservedNamespaces": {
                    "type": "array",
                    "items": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                },
                "allowedServers": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "defaultQuotaCeiling": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "minLength": 1},
                },
                # The built-in CUE rule sets that apply (issue 20); default: all of them.
                "builtin": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            },
        },
        # `required`: `config put` writes a proposal that another author approves (issue 17).
        "review": {"enum": ["required", "none"]},
        # Where `golden` reads the layers when no --source is given (issue 20).
        "source": {"type": "string", "pattern": "^(dynamodb|snapshot(:.+)?)$"},
    },
}


@dataclass(frozen=True)
class StackEntry:
    """One entry of the layer stack; `{env}` and `{cluster}` are filled per cluster."""

    kind: str  # "dynamodb" or "files"
    template: str
    optional: bool = False

    def resolve(self, *, env: str, cluster: str) -> str:
        return self.template.format(env=env, cluster=cluster)


@dataclass(frozen=True)
class ArgoCDSettings:
    repo_url: str = "https://git.example.com/platform/cluster-bootstrap.git"
    target_revision: str = "main"
    # Hard-coded into the ApplicationSets: never `default`, never templated.
    project: str = "cluster-bootstrap"
    namespace: str = "argocd"


@dataclass(frozen=True)
class Project:
    root: Path
    table: str = "gitops-config"
    region: str = "us-east-1"
    endpoint_url: str | None = None
    kubernetes_version: str = "1.31"
    calico_api: str = ""  # "" for the default, projectcalico.org/v3
    stack: tuple[StackEntry, ...] = field(
        default_factory=lambda: tuple(_stack_entry(e) for e in DEFAULT_STACK)
    )
    lists: ListStrategies = field(default_factory=ListStrategies)
    argocd: ArgoCDSettings = field(default_factory=ArgoCDSettings)
    policy: GuardSettings = field(default_factory=GuardSettings)
    builtin_rule_sets: tuple[str, ...] | None = None  # None: every built-in rule set
    source: str = DEFAULT_GOLDEN_SOURCE
    review_required: bool = False

    @property
    def policies_dir(self) -> Path:
        """The project's own policies: its `*.cue` rules and `waivers.yaml`."""
        return self.root / "policies"

    @property
    def definitions_dir(self) -> Path:
        """The DSL schema, the facts schema and the vendored CRDs (`rulesets.py`)."""
        return definitions_dir(self.policies_dir)

    @property
    def cue_files(self) -> tuple[Path, ...]:
        """The built-in rule sets selected plus the project's own `policies/*.cue`."""
        return cue_files(self.policies_dir, self.builtin_rule_sets)


def _stack_entry(raw: Mapping[str, Any]) -> StackEntry:
    kind = "dynamodb" if "dynamodb" in raw else "files"
    # A files layer that is absent is an empty layer: an env may have no overlays.
    optional = bool(raw.get("optional", kind == "files"))
    return StackEntry(kind=kind, template=str(raw[kind]), optional=optional)


def find_project(start: Path) -> Path | None:
    """The nearest directory from `start` upwards holding the project file (as git and
    pre-commit find their repository), or None outside any project."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / PROJECT_FILE).is_file():
            return directory
    return None


def project_root(explicit: Path | None, environ: Mapping[str, str], cwd: Path) -> Path:
    """`--project`, else `$GITOPS_PROJECT`, else the nearest project above `cwd`.

    Absolute, so that policies/, overlays/ and the local state are read from the
    project's root whatever the working directory.
    """
    named = explicit if explicit is not None else environ.get("GITOPS_PROJECT")
    if named:
        return (cwd / named).resolve()
    found = find_project(cwd)
    if found is None:
        raise UsageError(
            f"not inside a gitops-compiler project: no {PROJECT_FILE} in {cwd.resolve()} "
            "or any directory above it; run from inside one, or pass --project DIR"
        )
    return found


def _schema_errors(value: Any) -> list[Any]:
    """jsonschema's errors on a project file's content, sorted by where they are. A
    content found valid before (the cache dir's `verdicts`) is not validated again:
    jsonschema takes ~70 ms to import, more than the rest of reading the file. Not with
    `--no-cache` (GITOPS_NO_CACHE=1)."""
    from compiler.cachedir import cache_root, use_cache
    from compiler.policy import verdicts

    kept = None
    if use_cache(os.environ):
        kept = verdicts.key(_VERDICT_LABEL, json.dumps(_SCHEMA, sort_keys=True), value)
        if verdicts.seen_valid(cache_root(), kept):
            return []
    import jsonschema

    errors = sorted(
        jsonschema.Draft202012Validator(_SCHEMA).iter_errors(value),
        key=lambda e: list(e.absolute_path),
    )
    if kept is not None and not errors:
        verdicts.keep_valid(cache_root(), kept)
    return errors


_VERDICT_LABEL = "project file: Draft202012Validator, no format checker"


def load_project(root: Path) -> Project:
    """Read `<root>/gitops-compiler.yaml`, or the defaults when there is none."""
    # Imported here: the YAML module is the one loader, and this keeps import order simple.
    from compiler.yamlio import load_layer_yaml

    path = root / PROJECT_FILE
    if not path.is_file():
        return Project(root=root)
    doc = load_layer_yaml(path.read_bytes(), str(path))
    errors = _schema_errors(doc.value)
    if errors:
        first = errors[0]
        at = tuple(first.absolute_path)
        line = doc.lines.get(at, 1)
        raise UsageError(f"{path}:{line}: {format_path(at)}: {first.message}")
    raw: Mapping[str, Any] = doc.value
    argocd = raw.get("argocd", {})
    defaults = ArgoCDSettings()
    return Project(
        root=root,
        table=raw.get("table", Project.table),
        region=raw.get("region", Project.region),
        endpoint_url=raw.get("endpointUrl"),
        kubernetes_version=raw.get("kubernetesVersion", Project.kubernetes_version),
        calico_api=raw.get("calicoAPI", ""),
        stack=tuple(_stack_entry(e) for e in raw.get("layers", DEFAULT_STACK)),
        lists=ListStrategies.from_mapping(raw.get("lists", {})),
        argocd=ArgoCDSettings(
            repo_url=argocd.get("repoURL", defaults.repo_url),
            target_revision=argocd.get("targetRevision", defaults.target_revision),
            project=argocd.get("project", defaults.project),
            namespace=argocd.get("namespace", defaults.namespace),
        ),
        policy=_policy_settings(raw.get("policy", {}), argocd.get("namespace", defaults.namespace)),
        builtin_rule_sets=_rule_sets(raw.get("policy", {}), path, doc.lines),
        source=raw.get("source", DEFAULT_GOLDEN_SOURCE),
        review_required=raw.get("review") == "required",
    )


def _rule_sets(
    raw: Mapping[str, Any], path: Path, lines: Mapping[DocPath, int]
) -> tuple[str, ...] | None:
    if "builtin" not in raw:
        return None
    known = builtin_rule_sets()
    for index, name in enumerate(raw["builtin"]):
        if name not in known:
            line = lines.get(("policy", "builtin", index), 1)
            raise UsageError(
                f"{path}:{line}: policy.builtin[{index}]: no built-in rule set {name!r}; "
                f"the built-in ones are {', '.join(known)}"
            )
    return tuple(raw["builtin"])


def _policy_settings(raw: Mapping[str, Any], argocd_namespace: str) -> GuardSettings:
    defaults = GuardSettings()
    reserved = tuple(raw.get("reservedNamespaces", defaults.reserved_namespaces))
    return GuardSettings(
        # Argo CD's own namespace is always reserved: its service accounts deploy everything.
        reserved_namespaces=tuple(dict.fromkeys((*reserved, argocd_namespace))),
        allowed_servers=tuple(raw.get("allowedServers", defaults.allowed_servers)),
        default_quota_ceiling=dict(raw.get("defaultQuotaCeiling", defaults.default_quota_ceiling)),
    )


def resolve_endpoint(flag: str | None, project: Project) -> str | None:
    """`--endpoint-url`, then boto3's own `AWS_ENDPOINT_URL_DYNAMODB`, then the project file.

    Returning None lets boto3 pick up its environment variable itself. Each is checked
    here, so a URL without a scheme is bad input naming where it came from (exit 2),
    not an internal error inside botocore.
    """
    if flag:
        return check_endpoint(flag, "--endpoint-url")
    for variable in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"):
        value = os.environ.get(variable)
        if value:
            check_endpoint(value, variable)
            return None
    return project.endpoint_url or local_endpoint(project.root)


LOCAL_STATE = ".gitops/local/state.json"  # written by `gitops-compiler local up`


def local_endpoint(root: Path) -> str | None:
    """The endpoint `local up` recorded in the project, so commands need no export."""
    try:
        import json

        raw = json.loads((root / LOCAL_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    endpoint = raw.get("endpoint") if isinstance(raw, dict) else None
    return endpoint if isinstance(endpoint, str) else None


def check_endpoint(url: str, origin: str) -> str:
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        example = f"http://{url}" if "://" not in url else "http://127.0.0.1:8000"
        raise UsageError(
            f"{origin} {url!r} is not an endpoint URL: write the scheme and host, e.g. {example}"
        )
    try:
        parsed.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise UsageError(f"{origin} {url!r}: the port is not a number") from None
    return url
