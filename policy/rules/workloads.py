"""Kubernetes workloads: hardened containers with requests and limits, pinned images and probes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .subject import Subject, get, is_false, is_false_or_absent, is_set, is_true, is_unknown, reveal

_POD_SPEC_PATHS = {
    "kubernetes:core/v1:Pod": "spec",
    "kubernetes:apps/v1:Deployment": "spec.template.spec",
    "kubernetes:apps/v1:StatefulSet": "spec.template.spec",
    "kubernetes:apps/v1:DaemonSet": "spec.template.spec",
    "kubernetes:apps/v1:ReplicaSet": "spec.template.spec",
    "kubernetes:batch/v1:Job": "spec.template.spec",
    "kubernetes:batch/v1:CronJob": "spec.jobTemplate.spec.template.spec",
}
_LONG_RUNNING = {
    "kubernetes:core/v1:Pod",
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:apps/v1:ReplicaSet",
}


def pod_spec(s: Subject) -> Mapping[str, Any] | None:
    path = _POD_SPEC_PATHS.get(s.type)
    spec = get(s.inputs, path) if path else None
    return spec if isinstance(spec, Mapping) else None


def containers(pod: Mapping[str, Any], init: bool = True) -> Iterator[tuple[str, Mapping]]:
    kinds = ("containers", "initContainers") if init else ("containers",)
    for kind in kinds:
        for c in reveal(pod.get(kind)) or []:
            c = reveal(c)
            if isinstance(c, Mapping):
                yield f"container {c.get('name', '?')!r}", c


def container_hardening(s: Subject) -> list[str]:
    """Non-root, no privilege escalation, read-only root fs, all capabilities dropped,
    RuntimeDefault seccomp, not privileged, no host namespaces, ports or paths."""
    pod = pod_spec(s)
    if pod is None:
        return []
    out = []
    pod_sc = get(pod, "securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag) is True:
            out.append(f"pod sets {flag}: true (shares the node's namespace)")
    for volume in reveal(pod.get("volumes")) or []:
        if is_set(get(volume, "hostPath")):
            out.append(f"volume {get(volume, 'name')!r} is a hostPath (node filesystem)")
    pod_seccomp = get(pod_sc, "seccompProfile.type")
    for label, c in containers(pod):
        sc = get(c, "securityContext") or {}
        # A container's own setting wins; otherwise it inherits the pod's.
        run_as_non_root, run_as_user = (
            get(pod_sc, key) if get(sc, key) is None else get(sc, key) for key in ("runAsNonRoot", "runAsUser")
        )
        if not is_true(run_as_non_root):
            out.append(f"{label}: runAsNonRoot must be true")
        if run_as_user == 0:
            out.append(f"{label}: runAsUser must not be 0 (root)")
        if not is_false(get(sc, "allowPrivilegeEscalation")):
            out.append(f"{label}: allowPrivilegeEscalation must be false")
        if not is_true(get(sc, "readOnlyRootFilesystem")):
            out.append(f"{label}: readOnlyRootFilesystem must be true")
        drop = reveal(get(sc, "capabilities.drop")) or []
        if not is_unknown(drop) and "ALL" not in drop:
            out.append(f"{label}: capabilities.drop must include ALL")
        added = [cap for cap in reveal(get(sc, "capabilities.add")) or [] if cap != "NET_BIND_SERVICE"]
        if added:
            out.append(f"{label}: adds capabilities {added}")
        seccomp = get(sc, "seccompProfile.type") or pod_seccomp
        if seccomp != "RuntimeDefault" and not is_unknown(seccomp):
            out.append(f"{label}: seccompProfile.type must be RuntimeDefault (is {seccomp!r})")
        if not is_false_or_absent(get(sc, "privileged")):
            out.append(f"{label}: privileged must be false")
        for port in reveal(c.get("ports")) or []:
            if is_set(get(port, "hostPort")):
                out.append(f"{label}: hostPort {get(port, 'hostPort')} binds a node port")
    return out


def container_resources(s: Subject) -> list[str]:
    """Every container requests and is limited in CPU and memory."""
    pod = pod_spec(s)
    if pod is None:
        return []
    out = []
    for label, c in containers(pod):
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if not is_set(get(c, f"resources.{kind}.{resource}")):
                    out.append(f"{label}: resources.{kind}.{resource} must be set")
    return out


def image_pinned(s: Subject) -> list[str]:
    """Images carry an explicit version tag or a digest; never `:latest` or no tag."""
    pod = pod_spec(s)
    if pod is None:
        return []
    out = []
    for label, c in containers(pod):
        image = reveal(c.get("image"))
        if not isinstance(image, str) or is_unknown(image) or "@sha256:" in image:
            continue
        last = image.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else ""
        if tag in ("", "latest"):
            out.append(
                f"{label}: image {image!r} must be pinned to a version tag or digest, not "
                f"{'latest' if tag else 'untagged'}"
            )
    return out


_RUN_TO_COMPLETION = ("kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob")


def prod_images_by_digest(s: Subject) -> list[str]:
    """Production workloads that keep running run images pinned by digest: a tag can be moved
    to other bytes, a digest cannot. The settings already require digests in a production
    release; this catches a component that ignored them. Jobs are left to `image-pinned` (the
    database bootstrap runs a public psql image by tag, a waived exception)."""
    pod = pod_spec(s)
    if not s.production or pod is None or s.type in _RUN_TO_COMPLETION:
        return []
    out = []
    for label, c in containers(pod):
        image = reveal(c.get("image"))
        if isinstance(image, str) and not is_unknown(image) and "@sha256:" not in image:
            out.append(f"{label}: image {image!r} must be pinned by digest in production (name@sha256:...)")
    return out


def container_probes(s: Subject) -> list[str]:
    """Long-running containers have a readiness and a liveness probe (init containers and Jobs
    run to completion and have none)."""
    if s.type not in _LONG_RUNNING:
        return []
    pod = pod_spec(s)
    if pod is None:
        return []
    return [
        f"{label}: {probe} must be set"
        for label, c in containers(pod, init=False)
        for probe in ("readinessProbe", "livenessProbe")
        if not is_set(reveal(c.get(probe)))
    ]
