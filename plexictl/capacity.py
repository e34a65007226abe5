"""Kubernetes capacity, from `kubectl get nodes|pods -o json`: what pods request, what room nodes
have left, and whether new pods fit, as the scheduler counts it (requests, not usage)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

MIB = 2**20


class InvalidQuantity(ValueError):
    """A CPU or memory value that is not a Kubernetes quantity."""


@dataclass(frozen=True)
class Resources:
    """Requests (of pods), or room for them (on nodes): CPU, memory and pod slots."""

    cpu_millicores: int = 0
    memory_bytes: int = 0
    pods: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(*(a + b for a, b in zip(self.amounts(), other.amounts(), strict=True)))

    def __sub__(self, other: Resources) -> Resources:
        return Resources(*(a - b for a, b in zip(self.amounts(), other.amounts(), strict=True)))

    def peak(self, other: Resources) -> Resources:
        return Resources(*(max(a, b) for a, b in zip(self.amounts(), other.amounts(), strict=True)))

    def covers(self, other: Resources) -> bool:
        return all(a >= b for a, b in zip(self.amounts(), other.amounts(), strict=True))

    def amounts(self) -> tuple[int, int, int]:
        return self.cpu_millicores, self.memory_bytes, self.pods

    def __str__(self) -> str:
        return f"{self.cpu_millicores}m CPU, {math.ceil(self.memory_bytes / MIB)}Mi"


def free_capacity(nodes: Iterable[dict[str, Any]], pods: Iterable[dict[str, Any]]) -> dict[str, Resources]:
    """Allocatable minus what running pods request, per node that takes the app's pods: Ready, not
    cordoned, and without a NoSchedule or NoExecute taint (the app's pods tolerate none)."""
    free = {node["metadata"]["name"]: _allocatable(node) for node in nodes if _takes_app_pods(node)}
    for pod in pods:
        node_name = pod["spec"].get("nodeName")
        if node_name in free:
            free[node_name] -= pod_requests(pod)
    return free


def unplaced(wanted: Iterable[Resources], free: dict[str, Resources]) -> int:
    """How many new pods find no node with room, placed largest first on the first node that
    fits: an estimate of the scheduler, which spreads pods by preference only (ScheduleAnyway)."""
    room = list(free.values())
    left = 0
    for pod in sorted(wanted, key=Resources.amounts, reverse=True):
        node = next((i for i, r in enumerate(room) if r.covers(pod)), None)
        if node is None:
            left += 1
        else:
            room[node] -= pod
    return left


def pod_requests(pod: dict[str, Any]) -> Resources:
    """What the scheduler reserves for a pod: its containers and sidecars (init containers with
    restartPolicy Always), or more while an init container runs, plus the pod overhead."""
    spec = pod["spec"]
    sidecars = init = Resources()
    for container in spec.get("initContainers", []):
        if container.get("restartPolicy") == "Always":
            sidecars += _container_requests(container)
            init = init.peak(sidecars)
        else:
            init = init.peak(sidecars + _container_requests(container))
    app = sum((_container_requests(c) for c in spec.get("containers", [])), Resources())
    overhead = _resources(spec.get("overhead") or {})
    return (app + sidecars).peak(init) + overhead + Resources(pods=1)


def _takes_app_pods(node: dict[str, Any]) -> bool:
    spec, conditions = node.get("spec", {}), node.get("status", {}).get("conditions", [])
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    tainted = any(taint.get("effect") in ("NoSchedule", "NoExecute") for taint in spec.get("taints", []))
    return ready and not spec.get("unschedulable", False) and not tainted


def _allocatable(node: dict[str, Any]) -> Resources:
    allocatable = node["status"]["allocatable"]
    return _resources(allocatable) + Resources(pods=int(allocatable.get("pods", 110)))


def _container_requests(container: dict[str, Any]) -> Resources:
    resources = container.get("resources") or {}
    # A container with a limit and no request requests its limit (Kubernetes defaults it so).
    return _resources({**resources.get("limits", {}), **resources.get("requests", {})})


def _resources(values: dict[str, Any]) -> Resources:
    return Resources(millicores(values.get("cpu", "0")), math.ceil(quantity(values.get("memory", "0"))))


def millicores(cpu: object) -> int:
    return math.ceil(quantity(cpu) * 1000)


_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?)$")
_SCALES = {
    **{suffix: Decimal(2) ** (10 * power) for power, suffix in enumerate(("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{
        suffix: Decimal(10) ** (3 * power)
        for power, suffix in enumerate(("n", "u", "m", "", "k", "M", "G", "T", "P", "E"), -3)
    },
}


def quantity(text: object) -> Decimal:
    """A Kubernetes quantity (`250m`, `1.5`, `7291468Ki`, `1e3`, `2G`) as a number."""
    match = _QUANTITY.match(str(text))
    if match is None:
        raise InvalidQuantity(f"not a Kubernetes quantity: {text!r}")
    number, exponent, suffix = match.groups()
    return Decimal(number) * (Decimal(10) ** int(exponent) if exponent else _SCALES[suffix or ""])
