"""Kubernetes capacity as the scheduler counts it: quantities, a pod's requests, room on nodes."""

from __future__ import annotations

import pytest

from plexictl.capacity import MIB, InvalidQuantity, Resources, free_capacity, pod_requests, quantity, unplaced


@pytest.mark.parametrize(
    "text, value",
    [("250m", "0.25"), ("2", "2"), ("1.5", "1.5"), ("7291468Ki", "7466463232"), ("1Gi", "1073741824"),
     ("2G", "2000000000"), ("1e3", "1000"), ("129e6", "129000000"), ("100k", "100000"), ("1E", "1e18")],
)  # fmt: skip
def test_quantities(text, value):
    assert quantity(text) == pytest.approx(float(value))


@pytest.mark.parametrize("text", ["", "1.5.5", "250 m", "-1", "1Mb", "m"])
def test_a_value_that_is_not_a_quantity_is_an_error(text):
    with pytest.raises(InvalidQuantity, match="not a Kubernetes quantity"):
        quantity(text)


def container(cpu: str, memory: str, **extra) -> dict:
    return {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}, **extra}


def test_a_pod_requests_its_containers_and_sidecars_or_its_largest_init_step_plus_overhead():
    spec = {
        "initContainers": [
            container("10m", "40Mi"),  # istio-init, before the sidecar
            container("100m", "128Mi", restartPolicy="Always"),  # istio-proxy, a native sidecar
            container("2", "64Mi"),  # a migration-like step while the sidecar runs
        ],
        "containers": [container("500m", "1Gi"), {"name": "limits-only", "resources": {"limits": {"cpu": "250m"}}}],
        "overhead": {"cpu": "50m", "memory": "10Mi"},
    }
    # CPU: the init step (2 + 0.1) beats the app (0.5 + 0.25 + 0.1); memory: the app does.
    assert pod_requests({"spec": spec}) == Resources(2100 + 50, (1024 + 128 + 10) * MIB, 1)


def test_room_is_allocatable_minus_requests_on_nodes_that_take_pods_and_new_pods_fill_it_largest_first():
    nodes = [
        {
            "metadata": {"name": name},
            "spec": {},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "10"}, "conditions": [ready]},
        }
        for name, ready in (("a", {"type": "Ready", "status": "True"}), ("b", {"type": "Ready", "status": "Unknown"}))
    ]
    pods = [{"spec": {"nodeName": "a", "containers": [container("1500m", "1Gi")]}}]
    free = free_capacity(nodes, pods)
    assert free == {"a": Resources(500, 3 * 1024 * MIB, 9)}
    small, large = Resources(200, MIB, 1), Resources(400, MIB, 1)
    assert unplaced([small, large], free) == 1  # 500m of room: not 400m and 200m
    assert unplaced([small, small], free) == 0
