"""Every rendered object against its schema: Kubernetes OpenAPI or the vendored CRD.

Built-in kinds use the strict JSON schemas shipped in `kubernetes-validate`
at the project's `kubernetesVersion`; CRD kinds (Calico, Argo CD) use the
`openAPIV3Schema` of the served version of the CRDs in `policies/schemas/`,
made strict the same way (an object that lists its properties allows no
others, unless it says `x-kubernetes-preserve-unknown-fields`). On top: the
metadata syntax that OpenAPI schemas do not check, and the Calico IPPool
rules that the CRD keeps in CEL and `format: cidr`, which JSON Schema does not
run (DESIGN.md pitfalls).

A validator is built once per kind and run; identical objects are checked once
(content hash).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from compiler.errors import UsageError
from compiler.model import DocPath, format_path
from compiler.policy import Violation
from compiler.render import Rendered

SCHEMAS_DIR = "schemas"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?)$")
# Kinds whose names must be DNS-1123 labels; other names are subdomains.
_LABEL_NAMED = {"Namespace"}

Validator = Callable[[Mapping[str, Any]], Iterator[tuple[DocPath, str]]]


class ObjectSchemas:
    """Built once per run; `check` every cluster's objects, `check_shared` the fleet files."""

    def __init__(self, policies: Path, kubernetes_version: str) -> None:
        self.kubernetes_version = kubernetes_version
        self._crds = _crd_files(policies / SCHEMAS_DIR)
        self._validators: dict[tuple[str, str], Validator] = {}
        self._seen: dict[str, list[tuple[str, str, str]]] = {}  # content hash -> findings
        self.validated = 0  # objects actually validated (not answered from the cache)
        _check_version(kubernetes_version)

    def check(
        self,
        cluster: str,
        objects: Sequence[Rendered],
        where: Callable[[DocPath], str] | None = None,
    ) -> list[Violation]:
        """Findings on a cluster's objects, at the DSL path each object came from.

        `where` names the layer(s) behind a DSL path (the pipeline passes the
        merge's provenance).
        """
        found = []
        for rendered in objects:
            base = format_path(rendered.source) if rendered.source else rendered.path
            for field, rule, message in self._findings(rendered.obj):
                path = f"{base} ({rendered.path}{': ' + field if field else ''})"
                blame = where(rendered.source) if where is not None else ""
                found.append(Violation(cluster, path, rule, message, blame))
        return found

    def check_shared(self, files: Mapping[str, bytes]) -> list[Violation]:
        """The fleet-wide manifests (`applicationsets/*.yaml`), named by file."""
        found = []
        for rel, data in sorted(files.items()):
            if not rel.endswith(".yaml"):
                continue
            for field, rule, message in self._findings(yaml.safe_load(data)):
                where = f"{rel}: {field}" if field else rel
                found.append(Violation("(fleet)", where, rule, message))
        return found

    def _findings(self, obj: Mapping[str, Any]) -> list[tuple[str, str, str]]:
        key = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()
        if key not in self._seen:
            self.validated += 1
            self._seen[key] = list(self._validate(obj))
        return self._seen[key]

    def _validate(self, obj: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        who = _identity(obj)
        validator = self._validator(api_version, kind)
        rule = (
            "k8s-schema"
            if api_version.count(".") == 0 or ".k8s.io/" in api_version
            else "crd-schema"
        )
        if validator is None:
            yield "", "unknown-kind", f"{who}: no schema for {api_version} {kind}"
            return
        for path, message in validator(obj):
            yield format_path(path), rule, f"{who}: {message}"
        yield from _metadata_findings(obj, who)
        if api_version == "projectcalico.org/v3" and kind == "IPPool":
            yield from _ippool_findings(obj.get("spec") or {}, who)

    def _validator(self, api_version: str, kind: str) -> Validator | None:
        key = (api_version, kind)
        if key not in self._validators:
            crd = self._crds.get((api_version.rpartition("/")[0], kind))
            if crd is not None:
                schema = _strict(_crd_schema(crd, api_version))
                self._validators[key] = _validator_for(jsonschema.Draft7Validator(schema))
            else:
                built_in = _kubernetes_validator(self.kubernetes_version, api_version, kind)
                if built_in is None:
                    return None
                self._validators[key] = built_in
        return self._validators[key]


def _identity(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {ns}{meta.get('name')}"


def _validator_for(validator: jsonschema.protocols.Validator) -> Validator:
    def run(obj: Mapping[str, Any]) -> Iterator[tuple[DocPath, str]]:
        for error in validator.iter_errors(obj):
            yield tuple(error.absolute_path), _short(error.message)

    return run


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


# -- built-in kinds ----------------------------------------------------------


def _check_version(version: str) -> None:
    from kubernetes_validate import utils

    wanted = utils.major_minor(version)
    if not any(utils.major_minor(v) == wanted for v in utils.all_versions()):
        shipped = ", ".join(
            sorted({".".join(map(str, utils.major_minor(v))) for v in utils.all_versions()})[-5:]
        )
        raise UsageError(
            f"kubernetesVersion {version}: kubernetes-validate ships no schemas for it "
            f"(the newest it has: {shipped})"
        )


def _kubernetes_validator(version: str, api_version: str, kind: str) -> Validator | None:
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema_dir = f"kubernetes-json-schema/v{_full_version(version)}-local-strict"
    try:
        schema = utils.schema_contents(f"{schema_dir}/{kind.lower()}-{group_version}.json", version)
    except FileNotFoundError:
        return None
    definitions = utils.schema_contents(f"{schema_dir}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return _validator_for(jsonschema.Draft202012Validator(schema, registry=registry))


def _full_version(version: str) -> str:
    from kubernetes_validate import utils

    wanted = utils.major_minor(version)
    return [v for v in utils.all_versions() if utils.major_minor(v) == wanted][-1]


# -- CRD kinds ---------------------------------------------------------------


def _crd_files(root: Path) -> dict[tuple[str, str], Path]:
    """(group, kind) -> CRD file, from the head of each file: parsing waits for a use."""
    found: dict[tuple[str, str], Path] = {}
    for path in sorted(root.rglob("*.yaml")):
        head = path.read_text("utf-8")[:4000]
        group = re.search(r"^  group: (\S+)$", head, re.MULTILINE)
        kind = re.search(r"^    kind: (\S+)$", head, re.MULTILINE)
        if group and kind:
            found[(group.group(1), kind.group(1))] = path
    return found


def _crd_schema(path: Path, api_version: str) -> dict[str, Any]:
    crd = yaml.load(path.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    wanted = api_version.rpartition("/")[2]
    for version in crd["spec"]["versions"]:
        if version["name"] == wanted and version.get("served", True):
            schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
            return schema
    raise UsageError(f"{path}: the CRD serves no version {wanted}")


def _strict(schema: Any) -> Any:
    """Unknown fields are errors, as `kubeconform -strict` and the API server's strict mode."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("nullable"):
        out.pop("nullable")
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    pattern = out.get("pattern")
    if isinstance(pattern, str) and "(?i)" in pattern[1:]:
        # Go's RE2 takes `(?i)` anywhere (case-insensitive from there on); Python's `re`
        # only at the start. Applied to the whole pattern it is at most looser.
        out["pattern"] = "(?i)" + pattern.replace("(?i)", "")
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    return out


# -- what the schemas do not say ----------------------------------------------


def _metadata_findings(obj: Mapping[str, Any], who: str) -> Iterator[tuple[str, str, str]]:
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    pattern = _DNS_LABEL if obj.get("kind") in _LABEL_NAMED else _DNS_SUBDOMAIN
    limit = 63 if pattern is _DNS_LABEL else 253
    if not pattern.match(name) or len(name) > limit:
        yield "metadata.name", "metadata-name", f"{who}: {name!r} is not a valid name"
    for key, value in (meta.get("labels") or {}).items():
        prefix, _, label = str(key).rpartition("/")
        if (
            (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)))
            or not _LABEL_NAME.match(label)
            or len(label) > 63
        ):
            yield f"metadata.labels.{key}", "label-syntax", f"{who}: label key {key!r} is invalid"
        if not isinstance(value, str) or not _LABEL_VALUE.match(value) or len(value) > 63:
            yield (
                f"metadata.labels.{key}",
                "label-syntax",
                f"{who}: label value {value!r} is invalid (63 characters, alphanumerics, -_.)",
            )


def _ippool_findings(spec: Mapping[str, Any], who: str) -> Iterator[tuple[str, str, str]]:
    cidr = str(spec.get("cidr", ""))
    try:
        network = ipaddress.ip_network(cidr, strict=True)
    except ValueError as err:
        yield "spec.cidr", "calico-ippool-cidr", f"{who}: {cidr!r} is not a masked CIDR ({err})"
        return
    if network.is_link_local:
        yield "spec.cidr", "calico-ippool-cidr", f"{who}: {cidr} is link-local"
    low, high = (20, 32) if network.version == 4 else (116, 128)
    block = spec.get("blockSize", 26 if network.version == 4 else 122)
    if isinstance(block, int) and not low <= block <= high:
        yield (
            "spec.blockSize",
            "calico-ippool-blocksize",
            f"{who}: blockSize {block} is outside {low}-{high}",
        )
    elif isinstance(block, int) and network.prefixlen > block:
        yield (
            "spec.blockSize",
            "calico-ippool-blocksize",
            f"{who}: the pool /{network.prefixlen} is smaller than its blocks /{block}",
        )
    ipip = spec.get("ipipMode", "Never") not in ("Never", None)
    vxlan = spec.get("vxlanMode", "Never") not in ("Never", None)
    if ipip and vxlan:
        yield "spec", "calico-ippool-encapsulation", f"{who}: ipipMode and vxlanMode are both on"
    if ipip and network.version == 6:
        yield "spec.ipipMode", "calico-ippool-encapsulation", f"{who}: IPIP does not carry IPv6"
