"""Network exposure: the data ports are never open to the whole internet."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from .subject import Subject, get, reveal

DATA_PORTS = {5432: "PostgreSQL", 6379: "Redis"}


def _world(cidrs: Any) -> list[str]:
    cidrs = reveal(cidrs)
    if isinstance(cidrs, str):
        cidrs = [cidrs]
    out = []
    for cidr in cidrs or []:
        try:
            if ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0:
                out.append(str(cidr))
        except ValueError:
            continue
    return out


def _data_ports_in(from_port: Any, to_port: Any, protocol: Any) -> list[int]:
    if str(protocol) in ("-1", "all"):
        return sorted(DATA_PORTS)
    if str(protocol).lower() not in ("tcp", "6"):
        return []
    try:
        low, high = int(from_port), int(to_port)
    except (TypeError, ValueError):
        return []
    return [p for p in sorted(DATA_PORTS) if low <= p <= high]


def _exposure(ports: list[int], world: list[str], where: str) -> list[str]:
    if not ports or not world:
        return []
    names = ", ".join(f"{p} ({DATA_PORTS[p]})" for p in ports)
    return [f"{where} opens {names} to {', '.join(world)}"]


def no_world_data_ports(s: Subject) -> list[str]:
    """No security group rule or NetworkPolicy lets the whole internet reach PostgreSQL/Redis."""
    i = s.inputs
    if s.type == "aws:ec2/securityGroup:SecurityGroup":
        return [
            msg
            for rule in reveal(get(i, "ingress")) or []
            for msg in _exposure(
                _data_ports_in(get(rule, "fromPort"), get(rule, "toPort"), get(rule, "protocol")),
                _world(get(rule, "cidrBlocks")) + _world(get(rule, "ipv6CidrBlocks")),
                "security group ingress",
            )
        ]
    if s.type == "aws:ec2/securityGroupRule:SecurityGroupRule" and get(i, "type") == "ingress":
        return _exposure(
            _data_ports_in(get(i, "fromPort"), get(i, "toPort"), get(i, "protocol")),
            _world(get(i, "cidrBlocks")) + _world(get(i, "ipv6CidrBlocks")),
            "security group rule",
        )
    if s.type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        return _exposure(
            _data_ports_in(get(i, "fromPort"), get(i, "toPort"), get(i, "ipProtocol")),
            _world(get(i, "cidrIpv4")) + _world(get(i, "cidrIpv6")),
            "security group ingress rule",
        )
    if s.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy":
        return _network_policy_exposure(i)
    return []


def _network_policy_exposure(inputs: Mapping[str, Any]) -> list[str]:
    out = []
    for n, rule in enumerate(reveal(get(inputs, "spec.ingress")) or []):
        peers = reveal(get(rule, "from")) or []
        # No `from` at all admits every source; otherwise only an ipBlock can reach outside.
        world = ["any source"] if not peers else [c for peer in peers for c in _world(get(peer, "ipBlock.cidr"))]
        ports = reveal(get(rule, "ports")) or []
        if not ports:
            exposed = sorted(DATA_PORTS)
        else:
            exposed = []
            for port in ports:
                number, end = get(port, "port"), get(port, "endPort")
                if number is None:
                    exposed = sorted(DATA_PORTS)
                elif isinstance(number, (int, float)):
                    exposed += _data_ports_in(number, end or number, get(port, "protocol") or "TCP")
        out += _exposure(sorted(set(exposed)), world, f"NetworkPolicy ingress rule {n}")
    return out
