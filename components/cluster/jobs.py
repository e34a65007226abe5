"""What every run-to-completion Job of the app (the schema migration, the database bootstrap)
shares: Pulumi awaits it past its own deadline and replaces it when it failed, its pod opts out
of the Istio sidecar (a Job whose sidecar keeps running never completes), and its own
NetworkPolicy lets it reach exactly what it needs (the namespace-wide ones leave Job pods out)."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from components import naming

AWAIT_MARGIN_SECONDS = 300
"""Beyond the Job's own deadline: time to schedule its pod and pull the image."""
JOB_ANNOTATIONS = {"pulumi.com/replaceUnready": "true"}
"""A failed Job is replaced by the next update rather than awaited again."""
POD_ANNOTATIONS = {"sidecar.istio.io/inject": "false"}


def awaited(
    opts: pulumi.ResourceOptions, deadline_seconds: int, after: Sequence[pulumi.Resource]
) -> pulumi.ResourceOptions:
    """Options of a Job that runs after `after`; Pulumi awaits its completion, and the wait
    must outlast the Job's own deadline."""
    timeout = f"{deadline_seconds + AWAIT_MARGIN_SECONDS}s"
    return pulumi.ResourceOptions.merge(
        opts,
        pulumi.ResourceOptions(
            depends_on=list(after), custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout)
        ),
    )


def job_network_policy(
    name: str,
    job: str,
    namespace: pulumi.Input[str],
    labels: dict[str, str],
    egress: list[k8s.networking.v1.NetworkPolicyEgressRuleArgs],
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """`allow-<job>-egress`: nothing in, only `egress` out, for the pods labelled as this Job's."""
    return k8s.networking.v1.NetworkPolicy(
        f"{name}-network-policy",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"allow-{job}-egress", namespace=namespace, labels=labels),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={naming.JOB_LABEL: job}),
            policy_types=["Ingress", "Egress"],
            ingress=[],  # nothing calls a Job
            egress=egress,
        ),
        opts=opts,
    )


def env_from_secret(env_name: str, secret: str, key: str) -> k8s.core.v1.EnvVarArgs:
    return k8s.core.v1.EnvVarArgs(
        name=env_name,
        value_from=k8s.core.v1.EnvVarSourceArgs(secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret, key=key)),
    )
