"""NetworkPolicies for the app namespace: deny everything, then allow exactly the flows it needs.

Policies are additive, so each flow is one small, named policy: a reviewer can read what is open
from the object names alone (`allow-web-from-ingress`, `allow-egress-dns`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import naming
from components.config.cluster import KubernetesSettings

POSTGRES_PORT = 5432
REDIS_PORT = 6379
ISTIOD_XDS_PORT = 15012
SIDECAR_METRICS_PORTS = (15020, 15090)
"""Istio's merged app+proxy metrics port and Envoy's own Prometheus port."""


@dataclass(frozen=True)
class NetworkPoliciesArgs:
    stack: str
    namespace: pulumi.Input[str]
    cluster: KubernetesSettings
    vpc_cidr: str
    """PostgreSQL and Redis live in the VPC; their ports are open only towards it."""
    web_workload: str
    web_port: int
    metrics_ports: tuple[int, ...]
    """Every workload's container port, which Prometheus scrapes."""


def _from_namespace(name: str) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(
            match_labels={"kubernetes.io/metadata.name": name}
        )
    )


def _tcp(*ports: int) -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
    return [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=p) for p in ports]


class NetworkPolicies(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: NetworkPoliciesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("plexichat:network:NetworkPolicies", name, None, opts)
        all_pods = k8s.meta.v1.LabelSelectorArgs()
        web_pods = k8s.meta.v1.LabelSelectorArgs(
            match_labels=naming.selector_labels(args.web_workload)
        )
        same_namespace = k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=all_pods)
        anywhere = k8s.networking.v1.NetworkPolicyPeerArgs(
            ip_block=k8s.networking.v1.IPBlockArgs(cidr="0.0.0.0/0")
        )

        def policy(role: str, pod_selector, ingress=None, egress=None) -> None:
            types = (["Ingress"] if ingress is not None else []) + (
                ["Egress"] if egress is not None else []
            )
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{role}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=role, namespace=args.namespace, labels=naming.common_labels(args.stack)
                ),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=pod_selector,
                    policy_types=types,
                    ingress=ingress or None,
                    egress=egress or None,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )

        # Empty rule lists with both types: nothing in, nothing out, unless allowed below.
        policy("default-deny", all_pods, ingress=[], egress=[])
        policy(
            "allow-egress-dns",
            all_pods,
            egress=[
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=[
                        k8s.networking.v1.NetworkPolicyPeerArgs(
                            namespace_selector=_from_namespace("kube-system").namespace_selector,
                            pod_selector=k8s.meta.v1.LabelSelectorArgs(
                                match_labels={"k8s-app": "kube-dns"}
                            ),
                        )
                    ],
                    ports=[
                        k8s.networking.v1.NetworkPolicyPortArgs(protocol=proto, port=53)
                        for proto in ("UDP", "TCP")
                    ],
                )
            ],
        )
        # Pods of the namespace talk to each other through their sidecars (mTLS STRICT), and
        # every sidecar fetches config and certificates from istiod.
        policy(
            "allow-mesh",
            all_pods,
            ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=[same_namespace])],
            egress=[
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[same_namespace]),
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=[_from_namespace(args.cluster.istio_namespace)],
                    ports=_tcp(ISTIOD_XDS_PORT),
                ),
            ],
        )
        policy(
            "allow-web-from-ingress",
            web_pods,
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[_from_namespace(args.cluster.ingress_namespace)],
                    ports=_tcp(args.web_port),
                )
            ],
        )
        policy(
            "allow-prometheus-scrape",
            all_pods,
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[_from_namespace(args.cluster.monitoring_namespace)],
                    ports=_tcp(*sorted(set(args.metrics_ports)), *SIDECAR_METRICS_PORTS),
                )
            ],
        )
        policy(
            "allow-egress-data",
            all_pods,
            egress=[
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=[
                        k8s.networking.v1.NetworkPolicyPeerArgs(
                            ip_block=k8s.networking.v1.IPBlockArgs(cidr=args.vpc_cidr)
                        )
                    ],
                    ports=_tcp(POSTGRES_PORT, REDIS_PORT),
                )
            ],
        )
        # AWS APIs (Secrets Manager, S3, STS) and other HTTPS dependencies.
        policy(
            "allow-egress-https",
            all_pods,
            egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[anywhere], ports=_tcp(443))],
        )
        self.register_outputs({})
