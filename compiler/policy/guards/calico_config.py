"""Calico's cluster-wide settings that switch its own protections off.

The DSL passes `calico.felixConfiguration` and `calico.bgpConfiguration` to the
singletons `default` as their spec. A few of their fields undo what the network
policies promise, for every pod of the cluster at once (Calico's FelixConfiguration
and BGPConfiguration references):

- `workloadSourceSpoofing: Any` lets a pod that asks for it (the annotation
  `cni.projectcalico.org/allowedSourcePrefixes`) send with any source address:
  policies that allow by source selector or net then admit it as someone else.
- `allowIPIPPacketsFromWorkloads` / `allowVXLANPacketsFromWorkloads: true` accept
  encapsulated packets from pods: the inner packet is routed as if it came from
  the node, past the pod's egress policy.
- `failsafeInboundHostPorts` / `failsafeOutboundHostPorts` replace Calico's list
  of ports that host endpoint policy never blocks; one that names the kubelet's
  port opens the kubelet API to whatever reaches the node.
- a BGP `serviceClusterIPs`, `serviceExternalIPs` or `serviceLoadBalancerIPs` CIDR
  of `0.0.0.0/0` or `::/0` advertises a default route from every node to its
  BGP peers: the cluster attracts traffic for the whole internet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from compiler.model import DocPath
from compiler.policy.guards.base import GuardContext, GuardFinding, Rule

FELIX_ID = "calico-felix-unsafe"
FAILSAFE_ID = "calico-failsafe-ports"
BGP_ID = "calico-bgp-default-route"
_DOCS = "https://docs.tigera.io/calico/latest/reference/resources/"
_KUBELET_PORTS = frozenset({10250, 10255})  # the kubelet API, and its read-only port

RULES: tuple[Rule, ...] = (
    Rule(
        id=FELIX_ID,
        severity="error",
        what="felixConfiguration neither allows workloads to spoof their source address "
        "(workloadSourceSpoofing: Any) nor accepts IP-in-IP or VXLAN packets from them.",
        why="a pod then sends as another address, or tunnels a packet out as the node, "
        "past the network policies that admit traffic by source or police its egress",
        reference=_DOCS + "felixconfig",
        fix="calico: {felixConfiguration: {workloadSourceSpoofing: null, "
        "allowIPIPPacketsFromWorkloads: null, allowVXLANPacketsFromWorkloads: null}}",
    ),
    Rule(
        id=FAILSAFE_ID,
        severity="warning",
        what="felixConfiguration keeps Calico's own failsafe ports; an error where the "
        "list it sets opens the kubelet's ports (10250, 10255).",
        why="failsafe ports bypass host endpoint policy: a list of one's own replaces "
        "Calico's defaults, and the kubelet's port there exposes its API (exec into any "
        "pod of the node) to whatever reaches the node",
        reference=_DOCS + "felixconfig",
        fix="calico: {felixConfiguration: {failsafeInboundHostPorts: null}}",
    ),
    Rule(
        id=BGP_ID,
        severity="error",
        what="bgpConfiguration advertises no service CIDR of 0.0.0.0/0 or ::/0.",
        why="every node announces a default route to its BGP peers: the network sends "
        "the cluster traffic meant for anywhere",
        reference=_DOCS + "bgpconfig",
        fix="calico: {bgpConfiguration: {serviceExternalIPs: [{cidr: 203.0.113.0/24}]}}",
    ),
)

_TUNNELS = ("allowIPIPPacketsFromWorkloads", "allowVXLANPacketsFromWorkloads")
_FAILSAFE = ("failsafeInboundHostPorts", "failsafeOutboundHostPorts")
_ADVERTISED = ("serviceClusterIPs", "serviceExternalIPs", "serviceLoadBalancerIPs")


def check(context: GuardContext) -> Iterator[GuardFinding]:
    calico = context.config.get("calico") or {}
    felix: Mapping[str, Any] = calico.get("felixConfiguration") or {}
    bgp: Mapping[str, Any] = calico.get("bgpConfiguration") or {}
    name = context.facts.name
    base: DocPath = ("calico", "felixConfiguration")
    if felix.get("workloadSourceSpoofing") == "Any":
        yield GuardFinding(
            (*base, "workloadSourceSpoofing"),
            FELIX_ID,
            f"cluster {name}: workloadSourceSpoofing: Any lets a pod send with any source "
            "address, and policies that allow by source then admit it as someone else; "
            "leave it Disabled",
        )
    for field in _TUNNELS:
        if felix.get(field) is True:
            yield GuardFinding(
                (*base, field),
                FELIX_ID,
                f"cluster {name}: {field}: true accepts tunnelled packets from pods, routed "
                "on as the node's, past the pods' egress policy; leave it false",
            )
    for field in _FAILSAFE:
        yield from _failsafe(name, (*base, field), felix.get(field))
    for field in _ADVERTISED:
        for index, entry in enumerate(bgp.get(field) or []):
            cidr = entry.get("cidr") if isinstance(entry, Mapping) else None
            if isinstance(cidr, str) and _everything(cidr):
                yield GuardFinding(
                    ("calico", "bgpConfiguration", field, index, "cidr"),
                    BGP_ID,
                    f"cluster {name}: {field} advertises {cidr}: every node announces a "
                    "default route to its BGP peers; advertise the services' own range",
                )


def _failsafe(name: str, path: DocPath, ports: Any) -> Iterator[GuardFinding]:
    # An empty list removes the failsafe exposure altogether: nothing to say. Outbound
    # failsafe ports only let the host connect out: the kubelet's port there opens nothing.
    if not isinstance(ports, list) or not ports:
        return
    opened = {p.get("port") for p in ports if isinstance(p, Mapping)} & _KUBELET_PORTS
    kubelet = sorted(opened, key=str) if path[-1] == "failsafeInboundHostPorts" else []
    if kubelet:
        yield GuardFinding(
            path,
            FAILSAFE_ID,
            f"cluster {name}: {path[-1]} opens the kubelet's port "
            f"{', '.join(map(str, kubelet))}, which host endpoint policy then never "
            "blocks: the kubelet API runs commands in every pod of the node; drop it",
        )
        return
    yield GuardFinding(
        path,
        FAILSAFE_ID,
        f"cluster {name}: {path[-1]} replaces Calico's own failsafe ports with "
        f"{len(ports)} port(s), which host endpoint policy never blocks; keep the "
        "defaults unless a host endpoint policy needs otherwise",
        severity="warning",
    )


def _everything(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False  # the object schemas refuse a malformed CIDR
