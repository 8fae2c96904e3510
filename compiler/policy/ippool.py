"""The Calico IPPool rules that the CRD keeps in CEL and `format: cidr`, which its
OpenAPI schema cannot carry (DESIGN.md, "Pitfalls known upstream")."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from compiler.policy.finding import Finding

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
