"""One release track of one workload: ServiceAccount, Deployment, HPA and PodDisruptionBudget.

Secure unless loosened on purpose: the pod runs as a non-root user with a read-only root
filesystem, no privilege escalation, every capability dropped and the RuntimeDefault seccomp
profile, which is what Pod Security admission `restricted` demands. The HPA owns the replica
count, so the Deployment never sets `spec.replicas` and Pulumi never fights the autoscaler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import naming
from components.cluster.pod_security import TMP_MOUNT, TMP_VOLUME, container_security_context, pod_security_context
from components.config.versions import image_reference, pull_policy
from components.config.workloads import Workload
from components.release.plan import Track

DR_ROLE_ENV = "PLEXICHAT_DR_ROLE"
"""In a DR stack's pods: `standby` or `active` (dr.role). The app's contract (docs/dr.md): while
`standby`, `/readyz` answers 503 (Route 53 sends no user here) and workers take no jobs."""
SERVICE_REQUEST_RATE_METRIC = "istio_requests_per_second"
"""Custom metric (custom.metrics.k8s.io) on Service objects: requests per second the Service's
pods receive, from Istio's `istio_requests_total`. A metrics adapter serves it (docs/delivery.md)."""


@dataclass(frozen=True)
class WorkloadTrackArgs:
    stack: str
    workload_name: str
    workload: Workload
    track: Track
    image_repository: str
    namespace: pulumi.Input[str]
    """The app namespace's name, taken from the Namespace resource so it is created first."""
    env: Sequence[k8s.core.v1.EnvVarArgs] = ()
    """Extra container environment (data tier endpoints, `secretKeyRef` credentials)."""
    service_account_annotations: Mapping[str, pulumi.Input[str]] | None = None
    """Annotations of the track's ServiceAccount (e.g. the IRSA role ARN)."""
    deployment_annotations: Mapping[str, str] | None = None
    """Annotations of the Deployment object (e.g. which Secrets a reloader watches for it)."""
    wait_for: Sequence[pulumi.Resource] = ()
    """What must be done before the track's pods start: its version's schema migration."""
    standby_replicas: int | None = None
    """A DR standby's size (dr.standbyReplicas): the HPA holds the track at exactly this many
    pods, and the kubelet asks the liveness path whether a pod is ready, because the app's
    readiness path answers 503 while the stack is standby (docs/dr.md "The standby stack"): Pulumi
    waits for a Deployment's pods to be ready. None (every other stack): the workload's range and
    readiness path."""


class WorkloadTrack(pulumi.ComponentResource):
    deployment: k8s.apps.v1.Deployment
    deployment_name: pulumi.Output[str]

    def __init__(self, name: str, args: WorkloadTrackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:workload:WorkloadTrack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.service_account = _service_account(name, args, child)
        self.deployment = _deployment(name, args, pulumi.ResourceOptions.merge(child, _waiting(args)))
        self.autoscaler = _autoscaler(name, args, self.deployment, child)
        self.disruption_budget = _disruption_budget(name, args, child)

        self.deployment_name = self.deployment.metadata.name
        self.register_outputs({"deployment_name": self.deployment_name, "version": args.track.version})


def _waiting(args: WorkloadTrackArgs) -> pulumi.ResourceOptions:
    # Pulumi awaits a Job's completion, so depending on the migration Job keeps every pod of the
    # new version from starting until the schema is migrated.
    return pulumi.ResourceOptions(depends_on=list(args.wait_for))


def _object_name(args: WorkloadTrackArgs) -> str:
    return naming.object_name(args.workload_name, args.track.name)


def _selector(args: WorkloadTrackArgs) -> dict[str, str]:
    """Workload and track only, never the version: a Deployment's selector is immutable."""
    return naming.selector_labels(args.workload_name, args.track.name)


def _metadata(
    args: WorkloadTrackArgs, annotations: Mapping[str, pulumi.Input[str]] | None = None
) -> k8s.meta.v1.ObjectMetaArgs:
    """The track's objects share name, namespace and labels."""
    return k8s.meta.v1.ObjectMetaArgs(
        name=_object_name(args),
        namespace=args.namespace,
        labels={**naming.common_labels(args.stack), **_selector(args)},
        annotations=dict(annotations or {}) or None,
    )


def _service_account(name: str, args: WorkloadTrackArgs, opts: pulumi.ResourceOptions) -> k8s.core.v1.ServiceAccount:
    return k8s.core.v1.ServiceAccount(
        f"{name}-sa",
        metadata=_metadata(args, args.service_account_annotations),
        # The app calls no Kubernetes API; a mounted token would only be something to steal.
        automount_service_account_token=False,
        opts=opts,
    )


def _deployment(name: str, args: WorkloadTrackArgs, opts: pulumi.ResourceOptions) -> k8s.apps.v1.Deployment:
    w, track = args.workload, args.track
    return k8s.apps.v1.Deployment(
        f"{name}-deployment",
        metadata=_metadata(args, args.deployment_annotations),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            # No `replicas`: the HPA owns the count (see module docstring).
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=_selector(args)),
            strategy=k8s.apps.v1.DeploymentStrategyArgs(
                type="RollingUpdate",
                # Never go below the current capacity during a rollout.
                rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge="25%"),
            ),
            min_ready_seconds=5,
            progress_deadline_seconds=w.progress_deadline_seconds,
            revision_history_limit=5,
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    labels=naming.pod_labels(args.stack, args.workload_name, track.name, track.version),
                    annotations={
                        # Start the app only once its sidecar can carry traffic, and keep
                        # the sidecar up until the app has drained.
                        "proxy.istio.io/config": (
                            '{"holdApplicationUntilProxyStarts": true, '
                            f'"terminationDrainDuration": "{w.pre_stop_delay_seconds}s"}}'
                        ),
                        # Prometheus runs outside the mesh, so under mTLS STRICT the sidecar
                        # would refuse its scrapes: the metrics port bypasses the sidecar and
                        # a NetworkPolicy opens it to the monitoring namespace only.
                        "traffic.sidecar.istio.io/excludeInboundPorts": str(w.metrics_port),
                    },
                ),
                spec=_pod_spec(args),
            ),
        ),
        opts=opts,
    )


def _autoscaler(
    name: str, args: WorkloadTrackArgs, deployment: k8s.apps.v1.Deployment, opts: pulumi.ResourceOptions
) -> k8s.autoscaling.v2.HorizontalPodAutoscaler:
    w, track = args.workload, args.track
    return k8s.autoscaling.v2.HorizontalPodAutoscaler(
        f"{name}-hpa",
        metadata=_metadata(args),
        spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
            scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                api_version="apps/v1", kind="Deployment", name=deployment.metadata.name
            ),
            min_replicas=w.min_replicas if args.standby_replicas is None else args.standby_replicas,
            max_replicas=w.max_replicas if args.standby_replicas is None else args.standby_replicas,
            metrics=[
                _utilisation_metric("cpu", w.target_cpu_percent),
                _utilisation_metric("memory", w.target_memory_percent),
                *(
                    [_service_request_rate_metric(args.workload_name, w.requests_per_second_per_pod)]
                    if track.sized_for_all_traffic and w.requests_per_second_per_pod
                    else []
                ),
            ],
            behavior=_scaling_behavior(w),
        ),
        opts=opts,
    )


def _scaling_behavior(w: Workload) -> k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs:
    """Up fast (double, or four more pods if more, every 30 s); down slowly, after the stabilisation
    window, by at most half every minute."""
    return k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
        scale_down=k8s.autoscaling.v2.HPAScalingRulesArgs(
            stabilization_window_seconds=w.scale_down_stabilization_seconds,
            select_policy="Min",
            policies=[k8s.autoscaling.v2.HPAScalingPolicyArgs(type="Percent", value=50, period_seconds=60)],
        ),
        scale_up=k8s.autoscaling.v2.HPAScalingRulesArgs(
            stabilization_window_seconds=0,
            select_policy="Max",
            policies=[
                k8s.autoscaling.v2.HPAScalingPolicyArgs(type="Percent", value=100, period_seconds=30),
                k8s.autoscaling.v2.HPAScalingPolicyArgs(type="Pods", value=4, period_seconds=30),
            ],
        ),
    )


def _disruption_budget(
    name: str, args: WorkloadTrackArgs, opts: pulumi.ResourceOptions
) -> k8s.policy.v1.PodDisruptionBudget:
    return k8s.policy.v1.PodDisruptionBudget(
        f"{name}-pdb",
        metadata=_metadata(args),
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
            # One pod at a time: drains always make progress, whatever the HPA has scaled to,
            # and never take more than one pod of a track away at once.
            max_unavailable=1,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=_selector(args)),
            # A crash-looping pod must not block a node drain.
            unhealthy_pod_eviction_policy="AlwaysAllow",
        ),
        opts=opts,
    )


def _utilisation_metric(resource: str, percent: int) -> k8s.autoscaling.v2.MetricSpecArgs:
    return k8s.autoscaling.v2.MetricSpecArgs(
        type="Resource",
        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
            name=resource,
            target=k8s.autoscaling.v2.MetricTargetArgs(type="Utilization", average_utilization=percent),
        ),
    )


def _service_request_rate_metric(workload_name: str, per_pod: int) -> k8s.autoscaling.v2.MetricSpecArgs:
    """The request rate of the workload's Service, all tracks together, as `AverageValue`: the
    HPA divides it by `per_pod`, so every track with this metric asks for the same size whatever
    share of the traffic it gets (the HPA takes the largest of its metrics' proposals)."""
    return k8s.autoscaling.v2.MetricSpecArgs(
        type="Object",
        object=k8s.autoscaling.v2.ObjectMetricSourceArgs(
            described_object=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                api_version="v1", kind="Service", name=naming.object_name(workload_name)
            ),
            metric=k8s.autoscaling.v2.MetricIdentifierArgs(name=SERVICE_REQUEST_RATE_METRIC),
            target=k8s.autoscaling.v2.MetricTargetArgs(type="AverageValue", average_value=str(per_pod)),
        ),
    )


def _pod_spec(args: WorkloadTrackArgs) -> k8s.core.v1.PodSpecArgs:
    w = args.workload
    selector = _selector(args)

    def spread(topology_key: str) -> k8s.core.v1.TopologySpreadConstraintArgs:
        return k8s.core.v1.TopologySpreadConstraintArgs(
            topology_key=topology_key,
            max_skew=1,
            # Prefer, do not require: a zone outage must not leave pods unschedulable.
            when_unsatisfiable="ScheduleAnyway",
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
            match_label_keys=["pod-template-hash"],
        )

    return k8s.core.v1.PodSpecArgs(
        service_account_name=_object_name(args),  # the track's own ServiceAccount
        automount_service_account_token=False,
        termination_grace_period_seconds=w.termination_grace_period_seconds,
        security_context=pod_security_context(),
        topology_spread_constraints=[
            spread("topology.kubernetes.io/zone"),
            spread("kubernetes.io/hostname"),
        ],
        containers=[_container(args)],
        volumes=[TMP_VOLUME],
    )


def _container(args: WorkloadTrackArgs) -> k8s.core.v1.ContainerArgs:
    w, track = args.workload, args.track
    memory = f"{w.memory_mib}Mi"
    image = image_reference(args.image_repository, track.version)
    return k8s.core.v1.ContainerArgs(
        name=args.workload_name,
        image=image,
        image_pull_policy=pull_policy(image),
        args=list(w.args) or None,
        ports=_ports(w),
        env=[
            k8s.core.v1.EnvVarArgs(name="PLEXICHAT_TRACK", value=track.name),
            k8s.core.v1.EnvVarArgs(name="PLEXICHAT_VERSION", value=track.version),
            k8s.core.v1.EnvVarArgs(name="PLEXICHAT_PORT", value=str(w.port)),
            *args.env,
        ],
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": w.cpu_request, "memory": memory},
            limits={"cpu": w.cpu_limit, "memory": memory},
        ),
        startup_probe=_http_probe(w, w.probes.liveness_path, 2, w.probes.startup_failure_threshold),
        readiness_probe=_http_probe(w, readiness_path(w, args.standby_replicas is not None), 5, 3),
        liveness_probe=_http_probe(w, w.probes.liveness_path, 10, 3),
        lifecycle=k8s.core.v1.LifecycleArgs(
            # Keep serving while endpoints and sidecars learn the pod is going away.
            # The built-in sleep action needs no shell in the image.
            pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                sleep=k8s.core.v1.SleepActionArgs(seconds=w.pre_stop_delay_seconds)
            )
            if w.pre_stop_delay_seconds
            else None,
        ),
        security_context=container_security_context(),
        volume_mounts=[TMP_MOUNT],
    )


def readiness_path(w: Workload, standby: bool) -> str:
    """What the kubelet asks before a pod gets traffic: the readiness path, or on a DR standby the
    liveness path (ready to be promoted, while /readyz tells Route 53 "not serving users")."""
    return w.probes.liveness_path if standby else w.probes.readiness_path


def _ports(w: Workload) -> list[k8s.core.v1.ContainerPortArgs]:
    ports = [k8s.core.v1.ContainerPortArgs(name="metrics", container_port=w.metrics_port, protocol="TCP")]
    if w.role == "web":
        ports.insert(0, k8s.core.v1.ContainerPortArgs(name="http", container_port=w.port, protocol="TCP"))
    return ports


def _http_probe(w: Workload, path: str, period: int, failures: int) -> k8s.core.v1.ProbeArgs:
    # Web serves requests on `http` and metrics on `metrics`; a worker serves health and
    # metrics on `metrics` alone (settings enforce port == metricsPort for workers).
    port_name = "http" if w.role == "web" else "metrics"
    return k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path=path, port=port_name),
        period_seconds=period,
        timeout_seconds=2,
        failure_threshold=failures,
    )
