"""Every rendered object against its schema, strict, as `kubeconform -strict` would.

- Built-in kinds: the Kubernetes OpenAPI schemas that `kubernetes-validate`
  ships, at the project's `kubernetesVersion` (its `-strict` variant: unknown
  fields are errors).
- CRD kinds: the `openAPIV3Schema` of the served version of the vendored CRDs
  in `policies/schemas/` (README.md there), made strict the way the API server
  reads a structural schema: an object allows only the fields it lists unless
  it says `x-kubernetes-preserve-unknown-fields`; `metadata` is Kubernetes'
  own ObjectMeta.
- What OpenAPI schemas do not say: metadata names and label syntax, and the
  Calico IPPool rules that the CRD keeps in CEL and `format: cidr`
  (DESIGN.md, "Pitfalls known upstream").

Speed (issue 7): a kind's schema is built at its first object, with its
`$ref`s made local, and compiled with fastjsonschema; jsonschema runs only on
an object that failed, for the complete and located errors. Findings are
cached by content (name and namespace aside), so identical objects across a
fleet are validated once.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema
import yaml
from kubernetes_validate import utils as kubernetes_schemas

from compiler.cachedir import cached_json
from compiler.errors import UsageError
from compiler.model import DocPath, format_path
from compiler.policy import Violation
from compiler.render import Rendered, dsl_path
from compiler.yamlio import load_layer_yaml

SCHEMAS_DIR = "schemas"  # under policies/
FLEET = "(fleet)"  # the cluster named in findings on fleet-wide files (applicationsets/)

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
    ("argoproj.io/v1alpha1", "ApplicationSet"): "argocd/applicationset-crd.yaml",
    ("argoproj.io/v1alpha1", "Application"): "argocd/application-crd.yaml",
}

# Rule ids: the one line each is documented by.
RULES: Mapping[str, str] = {
    "k8s-schema": "a built-in kind against the Kubernetes OpenAPI schema (strict)",
    "crd-schema": "a CRD kind against the vendored CRD's openAPIV3Schema (strict)",
    "metadata-name": "metadata.name (and .namespace) is a DNS-1123 name as the kind needs",
    "label-syntax": "label keys are qualified names, values 63 characters of [A-Za-z0-9-_.]",
    "annotation-syntax": "annotation keys are qualified names",
    "calico-ippool-cidr": "IPPool cidr is a strictly masked CIDR, not link-local",
    "calico-ippool-blocksize": "IPPool blockSize 20-32 (IPv4) or 116-128 (IPv6), pool >= block",
    "calico-ippool-encapsulation": "IPPool: not IPIP and VXLAN together, no IPIP on IPv6",
}

# Above this size (characters of JSON) a schema is not compiled: fastjsonschema
# takes 6 s on the ApplicationSet CRD (370k), and a run has two ApplicationSets.
_COMPILE_LIMIT = 50_000
_COMPILE_AFTER = 32  # distinct objects of a kind validated before its validator is compiled
_MAX_MESSAGE = 200
_KUBERNETES_VALIDATE = importlib.metadata.version("kubernetes-validate")
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_REF = re.compile(r"^(?:/api/_definitions\.json)?#/\$defs/(.+)$")
_DEFS_REF = re.compile(r'"#/\$defs/([^"]+)"')
_GO_FLAGS = re.compile(r"\(\?([a-zA-Z]+)\)")  # RE2 `(?i)` mid-pattern: Python wants it scoped
# Keys a validator does not read; dropped so that schemas compile small.
_INERT = frozenset({"description", "default", "example", "format", "$schema", "$id", "nullable"})

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
# Kubernetes validates most names as DNS-1123 subdomains; these differ.
_LABEL_NAMED = frozenset({"Namespace"})
_PATH_SEGMENT_NAMED = frozenset({"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"})


@dataclass(frozen=True, order=True)
class Finding:
    """One problem in one object, before it is placed in a cluster and the DSL."""

    field: DocPath  # in the object: ("spec", "hard", "cpu")
    rule: str
    text: str


@dataclass
class _KindSchema:
    rule: str
    schema: dict[str, Any]
    full: jsonschema.protocols.Validator
    fast: Callable[[Any], Any] | None = None
    uses: int = 0

    @property
    def compilable(self) -> bool:
        return len(json.dumps(self.schema)) <= _COMPILE_LIMIT


class ObjectSchemas:
    """The object checks of a run: built once, every schema compiled at most once."""

    def __init__(self, policies_dir: Path, kubernetes_version: str) -> None:
        self._crd_dir = policies_dir / SCHEMAS_DIR
        self.kubernetes_version = _shipped_version(kubernetes_version)
        self._definitions: dict[str, Any] | None = None
        self._kinds: dict[tuple[str, str], _KindSchema | None] = {}
        self._cache: dict[bytes, tuple[Finding, ...]] = {}
        self.validated = 0  # objects validated, not answered from the cache

    def check(
        self,
        cluster: str,
        objects: Sequence[Rendered],
        where: Callable[[DocPath], str] | None = None,
    ) -> list[Violation]:
        """Every finding on a cluster's objects, at the DSL path each came from.

        `where` names the layer(s) behind a DSL path; the pipeline passes
        `lambda path: where_set(merged, path)`. Without it provenance is "".
        """
        found: list[Violation] = []
        for rendered in objects:
            found += self.check_document(
                cluster, rendered.path, rendered.obj, source=rendered.source, where=where
            )
        return found

    def check_shared(self, files: Mapping[str, bytes]) -> list[Violation]:
        """The fleet-wide manifests (`applicationsets/*.yaml`), named by file."""
        found: list[Violation] = []
        for rel, data in sorted(files.items()):
            if rel.endswith(".yaml"):
                found += self.check_document(FLEET, rel, load_layer_yaml(data, rel).value)
        return found

    def check_document(
        self,
        cluster: str,
        file: str,
        obj: Any,
        *,
        source: DocPath = (),
        where: Callable[[DocPath], str] | None = None,
    ) -> list[Violation]:
        """One object: at its DSL `source` when it has one, else at `object:<file>`."""
        if not isinstance(obj, Mapping):
            return [Violation(cluster, f"object:{file}", "k8s-schema", "not a mapping")]
        who = _identity(obj)
        out = []
        for finding in (*self.findings(obj), *_name_findings(obj)):
            field = format_path(finding.field) if finding.field else "(root)"
            message = f"{who}: {field}: {finding.text}"
            if source:
                path = dsl_path(str(obj.get("kind")), source, finding.field)
                blame = where(path) if where is not None else ""
                out.append(Violation(cluster, format_path(path), finding.rule, message, blame))
            else:
                place = f"object:{file}" + (f":{field}" if finding.field else "")
                out.append(Violation(cluster, place, finding.rule, message))
        return out

    def findings(self, obj: Mapping[str, Any]) -> tuple[Finding, ...]:
        """What is wrong with an object's content (not its name), cached by content."""
        key = _content_key(obj)
        cached = self._cache.get(key) if key is not None else None
        if cached is None:
            self.validated += 1
            cached = tuple(sorted(set(self._validate(obj)), key=_finding_order))
            if key is not None:
                self._cache[key] = cached
        return cached

    def _validate(self, obj: Mapping[str, Any]) -> Iterator[Finding]:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            yield Finding((), "k8s-schema", "an object needs a string apiVersion and kind")
            return
        schema = self._kind(api_version, kind)
        if schema is None:
            rule = "crd-schema" if _is_crd(api_version) else "k8s-schema"
            yield Finding((), rule, f"no schema for {api_version} {kind} ({self._where()})")
            return
        yield from _schema_findings(schema, obj)
        yield from _label_findings(obj)
        if (api_version, kind) == ("projectcalico.org/v3", "IPPool"):
            spec = obj.get("spec")
            if isinstance(spec, Mapping) and isinstance(spec.get("cidr"), str):
                yield from ippool_findings(spec)

    def _where(self) -> str:
        return f"Kubernetes {self.kubernetes_version}, CRDs in {self._crd_dir}"

    def _kind(self, api_version: str, kind: str) -> _KindSchema | None:
        key = (api_version, kind)
        if key not in self._kinds:
            self._kinds[key] = self._build(api_version, kind)
        return self._kinds[key]

    def _build(self, api_version: str, kind: str) -> _KindSchema | None:
        file = CRD_FILES.get((api_version, kind))
        if file is not None:
            rule, schema = "crd-schema", self._crd_schema(self._crd_dir / file, api_version)
        elif _is_crd(api_version):
            return None
        else:
            found = self._builtin_schema(api_version, kind)
            if found is None:
                return None
            rule, schema = "k8s-schema", found
        return _KindSchema(rule, schema, jsonschema.Draft202012Validator(schema))

    # -- schemas ------------------------------------------------------------------

    def _defs(self) -> dict[str, Any]:
        if self._definitions is None:
            defs = self._k8s_file("_definitions.json")["$defs"]
            self._definitions = {name: _local(d) for name, d in defs.items()}
        return self._definitions

    def _k8s_file(self, name: str) -> Any:
        version = self.kubernetes_version
        return kubernetes_schemas.schema_contents(
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
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        crd = yaml.load(data, Loader=loader)
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


# -- running a schema ---------------------------------------------------------------


def _schema_findings(kind: _KindSchema, obj: Mapping[str, Any]) -> Iterator[Finding]:
    kind.uses += 1
    if kind.uses == _COMPILE_AFTER and kind.compilable:
        # Compiling costs ~30 ms a kind: worth it for a fleet, not for a hook's few objects.
        # use_default=False: fastjsonschema would otherwise write defaults into the object.
        kind.fast = fastjsonschema.compile(kind.schema, use_default=False, use_formats=False)
    if kind.fast is not None:
        try:
            kind.fast(obj)
            return
        except fastjsonschema.JsonSchemaValueException as fast_error:
            fallback = fast_error
    else:
        fallback = None
    found = False
    for error in kind.full.iter_errors(obj):
        for finding in _from_error(kind.rule, error):
            found = True
            yield finding
    if not found and fallback is not None:
        # The validators disagree (a corner of regex or draft semantics): keep the fast one.
        field = tuple(int(p) if p.isdigit() else p for p in fallback.path[1:])
        text = fallback.message.removeprefix(fallback.name or "").strip()
        yield Finding(field, kind.rule, _short(text or fallback.message))


def _from_error(rule: str, error: jsonschema.ValidationError) -> Iterator[Finding]:
    path: DocPath = tuple(error.absolute_path)
    instance = error.instance
    if error.validator == "additionalProperties" and isinstance(instance, Mapping):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        for key in sorted(k for k in instance if k not in known):
            yield Finding((*path, key), rule, "unknown field")
    elif error.validator == "required" and isinstance(instance, Mapping):
        for key in error.validator_value:
            if key not in instance:
                yield Finding((*path, key), rule, "required field is missing")
    elif error.validator in ("anyOf", "oneOf"):
        yield Finding(path, rule, _short(_no_alternative(error)))
    else:
        yield Finding(path, rule, _short(error.message))


def _no_alternative(error: jsonschema.ValidationError) -> str:
    """`True is not of type 'string' or 'number'` for a quantity or an int-or-string."""
    choices = error.validator_value if isinstance(error.validator_value, list) else []
    types: list[str] = []
    for choice in choices:
        if not (isinstance(choice, dict) and set(choice) == {"type"}):
            best = jsonschema.exceptions.best_match(error.context)
            return best.message if best is not None else error.message
        named = choice["type"] if isinstance(choice["type"], list) else [choice["type"]]
        types += [t for t in named if t != "null" and t not in types]
    return f"{error.instance!r} is not of type {' or '.join(map(repr, types))}"


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


# -- what the schemas do not say ----------------------------------------------------


def _name_findings(obj: Mapping[str, Any]) -> Iterator[Finding]:
    """metadata.name as the kind needs it, and metadata.namespace (a DNS-1123 label)."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return
    name, kind = meta.get("name"), obj.get("kind")
    if not isinstance(name, str) or not name:
        yield Finding(("metadata", "name"), "metadata-name", "a name is required")
    elif kind in _PATH_SEGMENT_NAMED:
        if name in (".", "..") or "/" in name or "%" in name:
            yield Finding(("metadata", "name"), "metadata-name", f"{name!r}: no '/', '%', '..'")
    elif kind in _LABEL_NAMED:
        if not _is_dns_label(name):
            text = f"{name!r} is not a DNS-1123 label (63 characters of a-z, 0-9, '-')"
            yield Finding(("metadata", "name"), "metadata-name", text)
    elif not _is_dns_subdomain(name):
        text = f"{name!r} is not a DNS-1123 subdomain (253 characters of a-z, 0-9, '-', '.')"
        yield Finding(("metadata", "name"), "metadata-name", text)
    namespace = meta.get("namespace")
    if isinstance(namespace, str) and not _is_dns_label(namespace):
        text = f"{namespace!r} is not a DNS-1123 label"
        yield Finding(("metadata", "namespace"), "metadata-name", text)


def _label_findings(obj: Mapping[str, Any]) -> Iterator[Finding]:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return
    labels, annotations = meta.get("labels"), meta.get("annotations")
    for key, value in labels.items() if isinstance(labels, Mapping) else ():
        field = ("metadata", "labels", key)
        if not is_qualified_name(key):
            yield Finding(field, "label-syntax", f"key {key!r} is not a qualified name")
        if isinstance(value, str) and not (len(value) <= 63 and _LABEL_VALUE.fullmatch(value)):
            text = f"value {value!r}: 63 characters of [A-Za-z0-9-_.], alphanumeric at the ends"
            yield Finding(field, "label-syntax", text)
    for key in annotations if isinstance(annotations, Mapping) else ():
        if not is_qualified_name(key):
            field = ("metadata", "annotations", key)
            yield Finding(field, "annotation-syntax", f"key {key!r} is not a qualified name")


def is_qualified_name(key: Any) -> bool:
    """`[prefix/]name`: a DNS-1123 subdomain prefix, a 63-character name."""
    if not isinstance(key, str):
        return False
    prefix, slash, name = key.rpartition("/")
    if slash and not _is_dns_subdomain(prefix):
        return False
    return len(name) <= 63 and _QUALIFIED.fullmatch(name) is not None


def _is_dns_label(text: str) -> bool:
    return len(text) <= 63 and _DNS_LABEL.fullmatch(text) is not None


def _is_dns_subdomain(text: str) -> bool:
    return len(text) <= 253 and _DNS_SUBDOMAIN.fullmatch(text) is not None


_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))


def ippool_findings(spec: Mapping[str, Any]) -> Iterator[Finding]:
    """The IPPool CEL rules of the Calico v3 CRD that the compiler relies on."""
    cidr = spec["cidr"]
    at = ("spec", "cidr")
    try:
        if "/" not in cidr:
            raise ValueError(cidr)
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        yield Finding(at, "calico-ippool-cidr", f"{cidr!r} is not a CIDR (address/prefix)")
        return
    if ipaddress.ip_interface(cidr).ip != network.network_address:
        text = f"{cidr} has host bits set (the pool would be {network}): mask it"
        yield Finding(at, "calico-ippool-cidr", text)
    for link_local in _LINK_LOCAL:
        if network.version == link_local.version and network.overlaps(link_local):
            yield Finding(at, "calico-ippool-cidr", f"{cidr} overlaps link-local {link_local}")
    v4 = network.version == 4
    low, high, default = (20, 32, 26) if v4 else (116, 128, 122)
    block = spec.get("blockSize")
    at = ("spec", "blockSize")
    if isinstance(block, bool) or not isinstance(block, int):
        block = 0  # the schema reports a wrong type; CEL reads an absent or 0 as the default
    if block != 0 and not low <= block <= high:
        text = f"{block} is outside {low}-{high} for IPv{network.version} pools"
        yield Finding(at, "calico-ippool-blocksize", text)
    elif not spec.get("disabled"):
        size = block or default
        if network.prefixlen > size:
            text = f"the pool /{network.prefixlen} is smaller than its blocks /{size}"
            yield Finding(at, "calico-ippool-blocksize", text)
    ipip, vxlan = _encapsulates(spec.get("ipipMode")), _encapsulates(spec.get("vxlanMode"))
    if ipip and vxlan:
        yield Finding(
            ("spec",), "calico-ippool-encapsulation", "ipipMode and vxlanMode are both on"
        )
    if ipip and not v4:
        text = "IPIP is not supported on IPv6 pools"
        yield Finding(("spec", "ipipMode"), "calico-ippool-encapsulation", text)


def _encapsulates(mode: Any) -> bool:
    return isinstance(mode, str) and mode not in ("", "Never")


# -- placing findings ---------------------------------------------------------------


def _identity(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    namespace = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {namespace}{meta.get('name')}"


def _finding_order(finding: Finding) -> tuple[tuple[str, ...], str, str]:
    return tuple(map(str, finding.field)), finding.rule, finding.text


def _content_key(obj: Mapping[str, Any]) -> bytes | None:
    """A hash of everything but the name and namespace; None for what JSON cannot hold."""
    meta = obj.get("metadata")
    kept: list[Any] = [obj]
    if isinstance(meta, Mapping):
        anonymous = {k: v for k, v in meta.items() if k not in ("name", "namespace")}
        # The types stay in the key: a name that is not a string is a schema finding.
        types = [type(meta.get("name")).__name__, type(meta.get("namespace")).__name__]
        kept = [{**obj, "metadata": anonymous}, types]
    try:
        text = json.dumps(kept, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _is_crd(api_version: str) -> bool:
    group = api_version.rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def _shipped_version(version: str) -> str:
    """The newest patch release of `kubernetesVersion` (`1.31`) that kubernetes-validate ships."""
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
