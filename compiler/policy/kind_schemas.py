"""The strict JSON Schema of each kind an object can be.

- Built-in kinds: the Kubernetes OpenAPI schemas that `kubernetes-validate`
  ships, at the project's `kubernetesVersion` (its `-strict` variant: unknown
  fields are errors), with their `$ref`s made local.
- CRD kinds: the `openAPIV3Schema` of the served version of the vendored CRDs
  in `policies/schemas/` (README.md there), made strict the way the API server
  reads a structural schema: an object allows only the fields it lists unless
  it says `x-kubernetes-preserve-unknown-fields`; `metadata` is Kubernetes'
  own ObjectMeta.

Deriving a schema is slow (0.6 s for the ApplicationSet CRD), so each is
cached on disk by what it is derived from.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from compiler.cachedir import cached_json
from compiler.errors import UsageError
from compiler.yamlio import load_vendored_yaml

SCHEMAS_DIR = "schemas"  # under policies/

# The vendored CRDs, by the (apiVersion, kind) they serve (policies/schemas/README.md).
CRD_FILES: Mapping[tuple[str, str], str] = {
    ("projectcalico.org/v3", "IPPool"): "calico/v3/projectcalico.org_ippools.yaml",
    ("projectcalico.org/v3", "NetworkPolicy"): "calico/v3/projectcalico.org_networkpolicies.yaml",
    ("projectcalico.org/v3", "GlobalNetworkPolicy"): (
        "calico/v3/projectcalico.org_globalnetworkpolicies.yaml"
    ),
    ("projectcalico.org/v3", "BGPConfiguration"): (
        "calico/v3/projectcalico.org_bgpconfigurations.yaml"
    ),
    ("projectcalico.org/v3", "FelixConfiguration"): (
        "calico/v3/projectcalico.org_felixconfigurations.yaml"
    ),
    # crd.projectcalico.org/v1: the storage CRDs many installs serve instead (issue 19).
    **{
        ("crd.projectcalico.org/v1", kind): f"calico/crd.projectcalico.org_{plural}.yaml"
        for kind, plural in (
            ("IPPool", "ippools"),
            ("NetworkPolicy", "networkpolicies"),
            ("GlobalNetworkPolicy", "globalnetworkpolicies"),
            ("BGPConfiguration", "bgpconfigurations"),
            ("FelixConfiguration", "felixconfigurations"),
        )
    },
    ("argoproj.io/v1alpha1", "ApplicationSet"): "argocd/applicationset-crd.yaml",
    ("argoproj.io/v1alpha1", "Application"): "argocd/application-crd.yaml",
}

_KUBERNETES_VALIDATE = importlib.metadata.version("kubernetes-validate")
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_REF = re.compile(r"^(?:/api/_definitions\.json)?#/\$defs/(.+)$")
_DEFS_REF = re.compile(r'"#/\$defs/([^"]+)"')
_GO_FLAGS = re.compile(r"\(\?([a-zA-Z]+)\)")  # RE2 `(?i)` mid-pattern: Python wants it scoped
# Keys a validator does not read; dropped so that schemas compile small.
_INERT = frozenset({"description", "default", "example", "format", "$schema", "$id", "nullable"})


class KindSchemas:
    """Each kind's schema, derived at its first object and kept for the run."""

    def __init__(self, policies_dir: Path, kubernetes_version: str) -> None:
        self.crd_dir = policies_dir / SCHEMAS_DIR
        self.kubernetes_version = shipped_version(kubernetes_version)
        self._definitions: dict[str, Any] | None = None

    def schema(self, api_version: str, kind: str) -> dict[str, Any] | None:
        """The kind's strict schema; None for a kind that none is known for."""
        file = CRD_FILES.get((api_version, kind))
        if file is not None:
            return self._crd_schema(self.crd_dir / file, api_version)
        if is_crd(api_version):
            return None
        return self._builtin_schema(api_version, kind)

    def describe(self) -> str:
        """Where schemas are looked for, for a message about a kind without one."""
        return f"Kubernetes {self.kubernetes_version}, CRDs in {self.crd_dir}"

    def _defs(self) -> dict[str, Any]:
        if self._definitions is None:
            defs = self._k8s_file("_definitions.json")["$defs"]
            self._definitions = {name: _local(d) for name, d in defs.items()}
        return self._definitions

    def _k8s_file(self, name: str) -> Any:
        version = self.kubernetes_version
        return _kubernetes_schemas().schema_contents(
            f"kubernetes-json-schema/v{version}-local-strict/{name}", version
        )

    def _builtin_schema(self, api_version: str, kind: str) -> dict[str, Any] | None:
        # As kubernetes-validate names its files: rbac.authorization.k8s.io/v1 -> rbac-v1.
        group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        name = f"{kind.lower()}-{group_version}.json"

        def derive() -> dict[str, Any] | None:
            try:
                schema = self._k8s_file(name)
            except FileNotFoundError:
                return None
            return self._with_defs(_local(schema))

        # The package's files change only with its version: that names the content.
        source = f"{_KUBERNETES_VALIDATE}\0{self.kubernetes_version}\0{name}".encode()
        found: dict[str, Any] | None = cached_json("k8s-schema", source, derive)
        return found

    def _crd_schema(self, path: Path, api_version: str) -> dict[str, Any]:
        # Vendored data, not a layer. Parsing the YAML and deriving the schema cost 0.6 s
        # for the 1.4 MB ApplicationSet CRD, every run; cached by the file's bytes (and
        # what else the result depends on), it reads in 20 ms.
        data = path.read_bytes()
        source = data + f"\0{api_version}\0{self.kubernetes_version}".encode()
        schema: dict[str, Any] = cached_json(
            "crd-schema", source, lambda: self._derive_crd_schema(path, data, api_version)
        )
        return schema

    def _derive_crd_schema(self, path: Path, data: bytes, api_version: str) -> dict[str, Any]:
        crd = load_vendored_yaml(data)
        served = api_version.rpartition("/")[2]
        for version in crd["spec"]["versions"]:
            if version["name"] == served and version.get("served", False):
                schema = structural(version["schema"]["openAPIV3Schema"])
                # The API server checks metadata as ObjectMeta, whatever the CRD says.
                schema.setdefault("properties", {})["metadata"] = {
                    "$ref": f"#/$defs/{_OBJECT_META}"
                }
                return self._with_defs(schema)
        raise UsageError(f"{path}: the CRD does not serve {api_version}")

    def _with_defs(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The schema with the Kubernetes definitions it reaches, one self-contained document."""
        defs = self._defs()
        reached: dict[str, Any] = {}
        todo = [schema]
        while todo:
            for name in _DEFS_REF.findall(json.dumps(todo.pop())):
                if name not in reached:
                    reached[name] = defs[name]
                    todo.append(defs[name])
        return {**schema, "$defs": dict(sorted(reached.items()))} if reached else schema


# -- schema transforms --------------------------------------------------------------


def _local(schema: Any) -> Any:
    """A kubernetes-validate schema with its `$ref`s local and its inert keys dropped."""
    if isinstance(schema, list):
        return [_local(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _INERT or key.startswith("x-"):
            continue
        if key == "$ref":
            local = _REF.match(value)
            out[key] = f"#/$defs/{local.group(1)}" if local else value
        elif key in ("properties", "patternProperties", "$defs"):
            out[key] = {name: _local(sub) for name, sub in value.items()}
        elif key in ("enum", "required"):
            out[key] = value
        else:
            out[key] = _local(value)
    return out


def structural(schema: Any) -> Any:
    """A CRD's OpenAPI v3 structural schema as strict JSON Schema.

    Unknown fields are errors where the API server would prune them (an object
    without `x-kubernetes-preserve-unknown-fields` or `additionalProperties`);
    int-or-string and nullable become their JSON Schema forms; Go's `(?i)`
    inside a pattern becomes Python's scoped `(?i:...)`.
    """
    if isinstance(schema, list):
        return [structural(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _INERT or key.startswith("x-kubernetes-"):
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: structural(sub) for name, sub in value.items()}
        elif key in ("enum", "required"):
            out[key] = value
        elif key == "pattern":
            out[key] = _python_pattern(value)
        else:
            out[key] = structural(value)
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    is_object = schema.get("type") == "object" or "properties" in schema
    if schema.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    if (
        is_object
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _python_pattern(pattern: str) -> str:
    """`^(?i)(Drop|Accept)?$` (RE2: the flag holds to the end) -> `^(?i:(Drop|Accept)?$)`."""
    found = _GO_FLAGS.search(pattern)
    if found is None or found.start() == 0:
        return pattern
    head, tail = pattern[: found.start()], pattern[found.end() :]
    return f"{head}(?{found.group(1)}:{_python_pattern(tail)})"


def is_crd(api_version: str) -> bool:
    """Whether a group is served by a CRD: a dotted name outside `*.k8s.io`."""
    group = api_version.rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def _kubernetes_schemas() -> ModuleType:
    """kubernetes-validate's file access: imported when a schema is derived, not read
    from the cache dir (it imports jsonschema, ~70 ms)."""
    from kubernetes_validate import utils

    return utils


def shipped_version(version: str) -> str:
    """The newest patch release of `kubernetesVersion` (`1.31`) that kubernetes-validate
    ships; cached by the package's version, as the schemas derived from its files are."""
    source = f"{_KUBERNETES_VALIDATE}\0{version}".encode()
    found: str = cached_json("k8s-version", source, lambda: _shipped_version(version))
    return found


def _shipped_version(version: str) -> str:
    kubernetes_schemas = _kubernetes_schemas()
    wanted = kubernetes_schemas.major_minor(version.removeprefix("v"))
    shipped = kubernetes_schemas.all_versions()
    matching = [v for v in shipped if kubernetes_schemas.major_minor(v) == wanted]
    if not matching:
        minors = sorted({kubernetes_schemas.major_minor(v) for v in shipped}, key=_minor_key)
        raise UsageError(
            f"kubernetesVersion {version!r}: kubernetes-validate ships no schemas for it "
            f"(it has {minors[0]} to {minors[-1]}); change kubernetesVersion in "
            "gitops-compiler.yaml or upgrade kubernetes-validate"
        )
    return matching[-1]


def _minor_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())
