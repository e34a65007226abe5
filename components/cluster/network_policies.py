"""NetworkPolicies for the app namespace: deny everything, then allow exactly the flows it needs.

Policies are additive, so each flow is one small, named policy: a reviewer can read what is open
from the object names alone (`allow-web-from-ingress`, `allow-egress-dns`, ...).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import naming
from components.config.cluster import KubernetesSettings, NetworkSettings

POSTGRES_PORT = 5432
REDIS_PORT = 6379
HTTPS_PORT = 443
ISTIOD_XDS_PORT = 15012
SIDECAR_METRICS_PORTS = (15020, 15090)
"""Istio's merged app+proxy metrics port and Envoy's own Prometheus port."""
ALL_PODS = k8s.meta.v1.LabelSelectorArgs()
"""The empty selector: every pod of the namespace."""
APP_PODS = k8s.meta.v1.LabelSelectorArgs(
    match_expressions=[k8s.meta.v1.LabelSelectorRequirementArgs(key=naming.JOB_LABEL, operator="DoesNotExist")]
)
"""Every pod but a Job's: a Job (the migration) brings its own, narrower NetworkPolicy."""
SAME_NAMESPACE = k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=ALL_PODS)


@dataclass(frozen=True)
class NetworkPoliciesArgs:
    stack: str
    namespace: pulumi.Input[str]
    cluster: KubernetesSettings
    network: NetworkSettings
    """The data subnets (PostgreSQL and Redis) and the HTTPS allow-list (AWS endpoints, S3)."""
    web_workload: str
    web_port: int
    serving_ports: tuple[int, ...]
    """The ports workloads serve through their sidecars (mTLS): the only ones open inside the
    namespace."""
    metrics_ports: tuple[int, ...]
    """Every workload's metrics port, which bypasses the sidecar: open to Prometheus only."""


class NetworkPolicies(pulumi.ComponentResource):
    def __init__(self, name: str, args: NetworkPoliciesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:network:NetworkPolicies", name, None, opts)
        cluster = args.cluster
        web_pods = k8s.meta.v1.LabelSelectorArgs(match_labels=naming.selector_labels(args.web_workload))

        policy = functools.partial(self._policy, name, args)
        # Empty rule lists with both types: nothing in, nothing out, unless allowed below.
        policy("default-deny", ALL_PODS, ingress=[], egress=[])
        policy("allow-egress-dns", APP_PODS, egress=[egress_to_cluster_dns()])
        # Pods of the namespace reach each other's serving ports only, through their sidecars
        # (mTLS STRICT; the AuthorizationPolicies decide which identity may call which), never
        # the metrics ports, which bypass the sidecar. Every sidecar fetches config and
        # certificates from istiod.
        if not args.serving_ports:
            raise ValueError("no serving port: a rule with no port would open every port")
        serving = tcp_ports(*sorted(set(args.serving_ports)))
        policy(
            "allow-mesh",
            APP_PODS,
            ingress=[_from(SAME_NAMESPACE, serving)],
            egress=[
                egress_to(SAME_NAMESPACE, serving),
                egress_to(namespace_peer(cluster.istio_namespace), tcp_ports(ISTIOD_XDS_PORT)),
            ],
        )
        policy(
            "allow-web-from-ingress",
            web_pods,
            ingress=[_from(namespace_peer(cluster.ingress_namespace), tcp_ports(args.web_port))],
        )
        policy(
            "allow-prometheus-scrape",
            APP_PODS,
            ingress=[
                _from(
                    namespace_peer(cluster.monitoring_namespace),
                    tcp_ports(*sorted(set(args.metrics_ports)), *SIDECAR_METRICS_PORTS),
                )
            ],
        )
        network = args.network
        policy("allow-egress-data", APP_PODS, egress=egress_to_cidrs(network.data_cidrs, POSTGRES_PORT, REDIS_PORT))
        # The AWS APIs through their VPC interface endpoints (STS for IRSA, KMS, Secrets
        # Manager), and S3 through the gateway endpoint: its prefix list's CIDRs.
        https = [*network.https_cidrs, *network.s3_prefix_list_cidrs]
        policy("allow-egress-https", APP_PODS, egress=egress_to_cidrs(https, HTTPS_PORT))
        self.register_outputs({})

    def _policy(
        self,
        name: str,
        args: NetworkPoliciesArgs,
        role: str,
        pod_selector: k8s.meta.v1.LabelSelectorArgs,
        ingress: list[k8s.networking.v1.NetworkPolicyIngressRuleArgs] | None = None,
        egress: list[k8s.networking.v1.NetworkPolicyEgressRuleArgs] | None = None,
    ) -> None:
        network_policy(f"{name}-{role}", role, args.stack, args.namespace, pod_selector, ingress, egress, self)


def network_policy(
    resource_name: str,
    role: str,
    stack: str,
    namespace: pulumi.Input[str],
    pod_selector: k8s.meta.v1.LabelSelectorArgs,
    ingress: list[k8s.networking.v1.NetworkPolicyIngressRuleArgs] | None,
    egress: list[k8s.networking.v1.NetworkPolicyEgressRuleArgs] | None,
    parent: pulumi.Resource,
) -> k8s.networking.v1.NetworkPolicy:
    """A NetworkPolicy named `role`; its policy types follow from which rule lists are given.
    Components that bring a flow of their own (tracing's collector) add theirs through it."""
    types = (["Ingress"] if ingress is not None else []) + (["Egress"] if egress is not None else [])
    return k8s.networking.v1.NetworkPolicy(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=role, namespace=namespace, labels=naming.common_labels(stack)),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=pod_selector,
            policy_types=types,
            ingress=ingress or None,
            egress=egress or None,
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _from(
    peer: k8s.networking.v1.NetworkPolicyPeerArgs,
    ports: list[k8s.networking.v1.NetworkPolicyPortArgs] | None = None,
) -> k8s.networking.v1.NetworkPolicyIngressRuleArgs:
    return k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=[peer], ports=ports)


def egress_to(
    peer: k8s.networking.v1.NetworkPolicyPeerArgs,
    ports: list[k8s.networking.v1.NetworkPolicyPortArgs] | None = None,
) -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[peer], ports=ports)


def namespace_peer(name: str) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": name})
    )


def cidr_peer(cidr: str) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr))


def egress_to_cidrs(cidrs: Sequence[str], *ports: int) -> list[k8s.networking.v1.NetworkPolicyEgressRuleArgs]:
    """One rule to `cidrs` on `ports`, or none for no CIDR: a rule without peers would allow
    every destination."""
    if not cidrs:
        return []
    return [
        k8s.networking.v1.NetworkPolicyEgressRuleArgs(
            to=[cidr_peer(c) for c in dict.fromkeys(cidrs)], ports=tcp_ports(*ports)
        )
    ]


def tcp_ports(*ports: int) -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
    return [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=p) for p in ports]


def egress_to_cluster_dns() -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """The cluster DNS pods only, over UDP and TCP (large answers fall back to TCP)."""
    return egress_to(
        k8s.networking.v1.NetworkPolicyPeerArgs(
            namespace_selector=namespace_peer("kube-system").namespace_selector,
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}),
        ),
        [k8s.networking.v1.NetworkPolicyPortArgs(protocol=proto, port=53) for proto in ("UDP", "TCP")],
    )
