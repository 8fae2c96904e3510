"""Calico's cluster-wide settings that switch its own protections off (guards/calico_config.py)."""

from __future__ import annotations

from typing import Any

import pytest

from compiler.model import ClusterFacts
from compiler.policy.guards import calico_config
from compiler.policy.guards.base import GuardContext, GuardSettings


def run(felix: dict[str, Any], bgp: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    facts = ClusterFacts(name="c1", env="prod", server="https://c1:6443")
    config = {"calico": {"felixConfiguration": felix, "bgpConfiguration": bgp or {}}}
    found = calico_config.check(GuardContext(facts, config, GuardSettings()))
    return [(f.rule, f.path[-1], f.severity) for f in found]


FELIX = "calico-felix-unsafe"


@pytest.mark.parametrize(
    ("felix", "expected"),
    [
        ({"workloadSourceSpoofing": "Any"}, [(FELIX, "workloadSourceSpoofing", "error")]),
        ({"allowIPIPPacketsFromWorkloads": True}, [(FELIX, "allowIPIPPacketsFromWorkloads", "error")]),
        ({"allowVXLANPacketsFromWorkloads": True}, [(FELIX, "allowVXLANPacketsFromWorkloads", "error")]),
        (
            {"failsafeInboundHostPorts": [{"protocol": "TCP", "port": 10250}]},
            [("calico-failsafe-ports", "failsafeInboundHostPorts", "error")],
        ),
        (
            {"failsafeOutboundHostPorts": [{"protocol": "UDP", "port": 53}]},
            [("calico-failsafe-ports", "failsafeOutboundHostPorts", "warning")],
        ),
        # outbound, the kubelet's port only lets the host connect out: a replaced list
        (
            {"failsafeOutboundHostPorts": [{"protocol": "TCP", "port": 10250}]},
            [("calico-failsafe-ports", "failsafeOutboundHostPorts", "warning")],
        ),
        # what stays quiet: no failsafe ports at all, and the defaults said out loud
        ({"failsafeInboundHostPorts": []}, []),
        ({"workloadSourceSpoofing": "Disabled", "allowIPIPPacketsFromWorkloads": False}, []),
        ({"logSeverityScreen": "Info", "bpfEnabled": True}, []),
    ],
)  # fmt: skip
def test_felix_settings(felix: dict[str, Any], expected: list[tuple[Any, ...]]) -> None:
    assert run(felix) == expected


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0", "10.0.0.0/0"])
def test_a_bgp_default_route_is_refused(cidr: str) -> None:
    bgp = {"serviceExternalIPs": [{"cidr": "203.0.113.0/24"}, {"cidr": cidr}]}
    assert run({}, bgp) == [("calico-bgp-default-route", "cidr", "error")]
    assert run({}, {"serviceClusterIPs": [{"cidr": "10.96.0.0/12"}]}) == []
