"""Workloads: the PlexiChat process types and how each release track of them is sized."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    model_validator,
)

from components.config.base import (
    DNS_LABEL,
    Cpu,
    FieldError,
    HttpPath,
    Model,
    Port,
    Replicas,
    Seconds,
    int_range,
)

# ---------------------------------------------------------------------------------------------
# Workloads


class Probes(Model):
    readiness_path: HttpPath = "/readyz"
    """Answers 200 only when the pod can serve (dependencies reachable). Default /readyz."""
    liveness_path: HttpPath = "/livez"
    """Answers 200 while the process is not wedged; must not check dependencies. Default /livez."""
    startup_failure_threshold: Annotated[int, int_range(1, 120, "a number of 2-second checks")] = 30
    """How many 2 s startup checks may fail before the pod is restarted. Default 30 (60 s)."""


class Workload(Model):
    """One PlexiChat process type. Every release track gets its own Deployment, HPA and PDB."""

    role: Literal["web", "worker"]
    """`web` serves HTTP and runs every release track; `worker` consumes background jobs and runs
    only the stable (canary) or active (blue-green) version."""
    port: Port = 8080
    """Container port: HTTP (and health) for `web`; health for `worker`, where it must equal
    metricsPort. Default 8080."""
    metrics_port: Port = 9090
    """Where Prometheus scrapes `/metrics`. It is kept out of the sidecar (mTLS STRICT would
    refuse Prometheus, which is outside the mesh) and open only to the monitoring namespace.
    Default 9090."""
    args: list[str] = []
    """Container arguments (the image's entrypoint is kept). Default none."""
    min_replicas: Replicas = 2
    """HPA floor per track. Default 2; keep at least 2 where a PDB must allow node drains."""
    max_replicas: Replicas = 10
    """HPA ceiling per track; must be >= minReplicas. Default 10."""
    target_cpu_percent: Annotated[int, int_range(10, 95, "a CPU utilisation percent")] = 70
    """HPA CPU target (percent of request). Default 70, under the runbook's 80% CPU target."""
    target_memory_percent: Annotated[int, int_range(10, 95, "a memory utilisation percent")] = 75
    """HPA memory target (percent of request). Default 75, under the runbook's 85% limit."""
    scale_down_stabilization_seconds: Seconds = 300
    """How long the HPA waits before removing pods. Default 300."""
    requests_per_second_per_pod: Annotated[int, int_range(1, 100000, "a number of requests per second")] | None = None
    """Web only: requests per second one pod serves at its target load. With it, both blue-green
    colours also scale on the whole web Service's request rate (Istio's, through a custom
    metrics adapter: docs/delivery.md prerequisites), so the idle colour is as large as the live one and a
    flip moves traffic onto full capacity. Default none: each colour scales on its own CPU and
    memory, and the idle one sits at minReplicas."""
    cpu_request: Cpu = "250m"
    """CPU request per pod (HPA utilisation is relative to it). Default 250m."""
    cpu_limit: Cpu = "1"
    """CPU limit per pod. Default 1."""
    memory_mib: Annotated[int, int_range(64, 65536, "a memory size in MiB")] = 512
    """Memory request and limit (equal, so the pod is never OOM-killed for a neighbour). 512."""
    termination_grace_period_seconds: Seconds = 60
    """Time to drain on shutdown (WebSocket clients reconnect elsewhere). Default 60."""
    pre_stop_delay_seconds: Annotated[int, int_range(0, 120, "a number of seconds")] = 10
    """Sleep before SIGTERM so endpoints and the mesh stop sending new requests. Default 10."""
    progress_deadline_seconds: Seconds = 600
    """A rollout that makes no progress for this long is reported failed. Default 600."""
    probes: Probes = Probes()
    """HTTP health endpoints on `port`."""

    @model_validator(mode="after")
    def _consistent(self) -> Workload:
        if self.role == "web" and self.metrics_port == self.port:
            raise FieldError(
                "metricsPort",
                f"must differ from port ({self.port}): the metrics port bypasses the mesh, the serving port must not",
            )
        if self.role == "worker" and self.metrics_port != self.port:
            raise FieldError(
                "metricsPort",
                f"must equal port ({self.port}) for a worker: it serves health and metrics on one port",
            )
        if self.role == "worker" and self.requests_per_second_per_pod is not None:
            raise FieldError("requestsPerSecondPerPod", "applies to web workloads only (a worker serves no requests)")
        if self.max_replicas < self.min_replicas:
            raise FieldError("maxReplicas", f"must be >= minReplicas ({self.min_replicas}), got {self.max_replicas}")
        if self.pre_stop_delay_seconds >= self.termination_grace_period_seconds:
            raise FieldError(
                "preStopDelaySeconds",
                f"must be shorter than terminationGracePeriodSeconds ({self.termination_grace_period_seconds})",
            )
        return self


def check_workloads(value: dict[str, Workload]) -> dict[str, Workload]:
    bad = [name for name in value if not DNS_LABEL.match(name) or len(name) > 40]
    if bad:
        raise ValueError(f"workload names must be DNS labels of at most 40 characters, got {bad}")
    web = [name for name, w in value.items() if w.role == "web"]
    if web != ["web"]:
        raise ValueError(
            "exactly one workload must have role 'web' and it must be named 'web' "
            f"(the ingress backend); found {web or 'none'}"
        )
    return value
