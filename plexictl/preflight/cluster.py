"""The cluster's checks, through kubectl: room for the new pods, and the mesh's minimum TLS."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from components import naming
from components.config.stack import StackSettings
from components.release.plan import plan_release
from plexictl.capacity import MIB, Resources, free_capacity, millicores, unplaced
from plexictl.preflight.results import CheckError, Outcome, Result, judged

if TYPE_CHECKING:  # the stubs are a development dependency (requirements-dev.txt)
    from mypy_boto3_eks import EKSClient

KUBECTL_TIMEOUT_SECONDS = 60
MESH_MIN_TLS = "TLSV1_3"

Kubectl = Callable[[Sequence[str]], str]
"""Runs `kubectl ARGS` against the stack's cluster and returns its stdout; CheckError if it cannot."""


def cluster_capacity(kubectl: Kubectl, settings: StackSettings) -> Result:
    nodes = _items(kubectl, "nodes")
    pods = [pod for pod in _items(kubectl, "pods", "-A") if pod["status"].get("phase") not in ("Succeeded", "Failed")]
    wanted = new_pods(settings, pods)
    if not wanted:
        return Result(Outcome.PASS, "no new track: every Deployment of the release already has pods")
    free = free_capacity(nodes, pods)
    left = unplaced([w.per_pod for w in wanted for _ in range(w.count)], free)
    total = sum(w.count for w in wanted)
    needed = "; ".join(f"{w.workload} {w.track}: {w.count} × {w.per_pod}" for w in wanted)
    where = f"{len(free)} schedulable node{'s' if len(free) != 1 else ''}"
    if left:
        return Result(Outcome.FAIL, f"{needed}: no room for {left} of the {total} new pods on {where}")
    return Result(Outcome.PASS, f"{needed}: all {total} new pods fit on {where}")


def mesh_mtls(kubectl: Kubectl, istio_namespace: str) -> Result:
    config_map = json.loads(kubectl(["get", "configmap", "istio", "-n", istio_namespace, "-o", "json"]))
    try:
        mesh = yaml.safe_load(config_map.get("data", {}).get("mesh") or "") or {}
    except yaml.YAMLError as error:
        raise CheckError(f"the mesh config in {istio_namespace}/istio is not YAML: {error}") from error
    found = (mesh.get("meshMTLS") or {}).get("minProtocolVersion") or "unset (Istio's default, TLS 1.2)"
    return judged(found == MESH_MIN_TLS, f"meshMTLS.minProtocolVersion {found}; wanted {MESH_MIN_TLS}")


@dataclass(frozen=True)
class NewPods:
    workload: str
    track: str
    count: int
    per_pod: Resources


def new_pods(settings: StackSettings, pods: Iterable[dict[str, Any]]) -> list[NewPods]:
    """The pods a deploy of the stack file starts from nothing.

    Every Deployment the release plan asks for (web: one per track; a worker: the worker track)
    that has no pod in the namespace yet starts at its autoscaler's floor, the workload's
    minReplicas, each pod requesting cpuRequest and memoryMib. So a canary start counts web's
    minReplicas canary pods; a blue-green deploy whose colour is not running counts that colour at
    web's minReplicas (both colours are sized for all traffic, but the autoscaler starts a colour at
    its floor); a first deploy counts every track; a weight change or a flip between running
    colours counts nothing. Not counted: a new version on a running track, which rolls a few pods
    at a time (maxSurge 25%, maxUnavailable 0), the migration Job's one pod, and the Istio
    sidecar's requests (the mesh installation's, not the stack's).
    """
    pods = list(pods)
    plan = plan_release(settings.release)
    wanted = []
    for name, workload in settings.workloads.items():
        for track in plan.tracks if workload.role == "web" else (plan.worker_track,):
            selector = naming.selector_labels(name, track.name)
            if not any(_selected(pod, settings.namespace, selector) for pod in pods):
                per_pod = Resources(millicores(workload.cpu_request), workload.memory_mib * MIB, 1)
                wanted.append(NewPods(name, track.name, workload.min_replicas, per_pod))
    return wanted


def kubectl_command(context: str | None) -> Kubectl:
    """`kubectl --context CONTEXT ARGS` (the kubeconfig's current context if the stack names none)."""
    prefix = ["kubectl", *(["--context", context] if context else [])]

    def run(args: Sequence[str]) -> str:
        command = [*prefix, *args]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_SECONDS, check=False)
        except FileNotFoundError:
            raise CheckError("kubectl is not installed (not on PATH)") from None
        except subprocess.TimeoutExpired:
            raise CheckError(f"`{' '.join(command)}` did not answer in {KUBECTL_TIMEOUT_SECONDS}s") from None
        if done.returncode != 0:
            raise CheckError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")
        return done.stdout

    return run


def _items(kubectl: Kubectl, *what: str) -> list[dict[str, Any]]:
    output = kubectl(["get", *what, "-o", "json"])
    try:
        return json.loads(output)["items"]
    except (ValueError, KeyError, TypeError):
        raise CheckError(f"`kubectl get {' '.join(what)} -o json` did not print a list of objects") from None


def _selected(pod: dict[str, Any], namespace: str, selector: dict[str, str]) -> bool:
    metadata = pod["metadata"]
    labels = metadata.get("labels") or {}
    return metadata.get("namespace") == namespace and all(labels.get(k) == v for k, v in selector.items())


ANYWHERE = ("0.0.0.0/0", "::/0")


def cluster_api_endpoint(eks: EKSClient, cluster: str | None) -> Result:
    """The Kubernetes API is reachable from the VPC, and from the internet only from listed
    ranges, never from anywhere (docs/admin-access.md): it is the way into every Secret."""
    if cluster is None:
        return Result(Outcome.SKIPPED, "no EKS cluster name (plexichat:kubernetes.eksCluster)")
    access = eks.describe_cluster(name=cluster)["cluster"]["resourcesVpcConfig"]
    if not access.get("endpointPrivateAccess"):
        return Result(Outcome.FAIL, f"{cluster}: no private endpoint (endpointPrivateAccess is off)")
    if not access.get("endpointPublicAccess"):
        return Result(Outcome.PASS, f"{cluster}: private endpoint only")
    public = access.get("publicAccessCidrs") or list(ANYWHERE[:1])  # EKS's default is everywhere
    open_to_all = sorted(set(public) & set(ANYWHERE))
    if open_to_all:
        return Result(
            Outcome.FAIL,
            f"{cluster}: the public endpoint admits {', '.join(open_to_all)}; limit publicAccessCidrs to the "
            "deploy runners' and the admins' ranges, or turn the public endpoint off",
        )
    return Result(Outcome.PASS, f"{cluster}: private endpoint, public only from {', '.join(sorted(public))}")
