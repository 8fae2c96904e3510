"""What OpenAPI schemas do not say about names: metadata names, label and annotation
keys and label values, as the API server's validation reads them (DNS-1123 names,
qualified names)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from compiler.policy.finding import Finding

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
# Kubernetes validates most names as DNS-1123 subdomains; these differ.
_LABEL_NAMED = frozenset({"Namespace"})
_PATH_SEGMENT_NAMED = frozenset({"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"})


def name_findings(obj: Mapping[str, Any]) -> Iterator[Finding]:
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


def label_findings(obj: Mapping[str, Any]) -> Iterator[Finding]:
    """Label keys and values, annotation keys."""
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
