"""Every rendered object against its schema, strict, as `kubeconform -strict` would.

An object is checked against its kind's schema (`kind_schemas`: the Kubernetes
OpenAPI schemas, the vendored CRDs), then for what OpenAPI schemas do not say:
metadata names and label syntax (`names`), the Calico IPPool rules (`ippool`).

A kind's schema is built at its first object and run by a `TwoStageValidator`.
Findings are cached by content (name and namespace aside), so identical objects
across a fleet are validated once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.model import DocPath, format_path
from compiler.policy import Violation
from compiler.policy.finding import Finding
from compiler.policy.ippool import ippool_findings
from compiler.policy.kind_schemas import KindSchemas, is_crd
from compiler.policy.names import label_findings, name_findings
from compiler.policy.validator import TwoStageValidator
from compiler.render import Rendered, dsl_path
from compiler.yamlio import load_layer_yaml
from compiler.yamlio.dumper import value_digest

if TYPE_CHECKING:
    import jsonschema

FLEET = "(fleet)"  # the cluster named in findings on fleet-wide files (applicationsets/)

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
# Distinct objects of a kind checked by jsonschema alone before its validator is
# compiled. Compiling costs ~30 ms a kind and a run meets dozens of kinds, most with
# a few objects each: only a kind that a fleet repeats is worth it.
_COMPILE_AFTER = 32
_MAX_MESSAGE = 200


@dataclass(frozen=True)
class _KindSchema:
    rule: str
    validator: TwoStageValidator


class ObjectSchemas:
    """The object checks of a run: built once, every schema compiled at most once."""

    def __init__(
        self, policies_dir: Path, kubernetes_version: str, *, cache_dir: Path | None = None
    ) -> None:
        self._schemas = KindSchemas(policies_dir, kubernetes_version)
        self._cache_dir = cache_dir  # where compiled validators are kept; None: nowhere
        self.kubernetes_version = self._schemas.kubernetes_version
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
        for finding in (*self.findings(obj), *name_findings(obj)):
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
            rule = "crd-schema" if is_crd(api_version) else "k8s-schema"
            where = self._schemas.describe()
            yield Finding((), rule, f"no schema for {api_version} {kind} ({where})")
            return
        yield from _schema_findings(schema, obj)
        yield from label_findings(obj)
        if kind == "IPPool" and api_version in ("projectcalico.org/v3", "crd.projectcalico.org/v1"):
            spec = obj.get("spec")
            if isinstance(spec, Mapping) and isinstance(spec.get("cidr"), str):
                yield from ippool_findings(spec)

    def _kind(self, api_version: str, kind: str) -> _KindSchema | None:
        key = (api_version, kind)
        if key not in self._kinds:
            self._kinds[key] = self._build(api_version, kind)
        return self._kinds[key]

    def _build(self, api_version: str, kind: str) -> _KindSchema | None:
        schema = self._schemas.schema(api_version, kind)
        if schema is None:
            return None
        validator = TwoStageValidator(
            schema,
            lambda: _strict_validator(schema),
            full_label=_FULL_LABEL,
            compile_after=_COMPILE_AFTER,
            max_compiled_chars=_COMPILE_LIMIT,
            # fastjsonschema would otherwise write defaults into the object.
            use_default=False,
            use_formats=False,
            cache_dir=self._cache_dir,
        )
        return _KindSchema("crd-schema" if is_crd(api_version) else "k8s-schema", validator)


# How `_strict_validator` builds jsonschema's validator: the key of its kept verdicts.
_FULL_LABEL = "Draft202012Validator, no format checker"


def _strict_validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    import jsonschema  # ~70 ms: only for a document no compiled validator answers

    return jsonschema.Draft202012Validator(schema)


# -- running a schema ---------------------------------------------------------------


def _schema_findings(kind: _KindSchema, obj: Mapping[str, Any]) -> Iterator[Finding]:
    failure = kind.validator.validate(obj)
    if failure is None:
        return
    found = False
    for error in failure.errors:
        for finding in _from_error(kind.rule, error):
            found = True
            yield finding
    fallback = failure.fast
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
            import jsonschema.exceptions

            best = jsonschema.exceptions.best_match(error.context)
            return best.message if best is not None else error.message
        named = choice["type"] if isinstance(choice["type"], list) else [choice["type"]]
        types += [t for t in named if t != "null" and t not in types]
    return f"{error.instance!r} is not of type {' or '.join(map(repr, types))}"


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


# -- placing findings ---------------------------------------------------------------


def _identity(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    namespace = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {namespace}{meta.get('name')}"


def _finding_order(finding: Finding) -> tuple[tuple[str, ...], str, str]:
    return tuple(map(str, finding.field)), finding.rule, finding.text


def _content_key(obj: Mapping[str, Any]) -> bytes | None:
    """A digest of everything but the name and namespace, pickled; None for what pickle
    cannot hold.

    Equal pickles are equal objects, types included (`1`, `1.0` and `True` differ),
    so a hit is always right; an equal object pickled differently (its keys in
    another order) is only a miss. At C=1000 the key is computed for each of 98,000
    objects and misses 2,560 times: a pickle and its digest take ~3.5 us where
    canonical JSON and its digest took ~8 us (0.45 s of a compile). The digest, not
    the pickle, is kept: a pickle is as large as its object.
    """
    meta = obj.get("metadata")
    kept: list[Any] = [obj]
    if isinstance(meta, Mapping):
        anonymous = {k: v for k, v in meta.items() if k not in ("name", "namespace")}
        # The types stay in the key: a name that is not a string is a schema finding.
        types = [type(meta.get("name")).__name__, type(meta.get("namespace")).__name__]
        kept = [{**obj, "metadata": anonymous}, types]
    return value_digest(kept)
