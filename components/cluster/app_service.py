"""The web workload's ClusterIP Service: one stable name in front of every release track.

The selector deliberately omits the track label, so the Service (and its cluster IP, which NGINX
and the mesh address) never changes during a release; the mesh picks the track per request.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import naming


@dataclass(frozen=True)
class AppServiceArgs:
    stack: str
    workload_name: str
    port: int
    namespace: pulumi.Input[str]


class AppService(pulumi.ComponentResource):
    service_name: pulumi.Output[str]
    fqdn: pulumi.Output[str]
    """`<service>.<namespace>.svc.cluster.local`: the host the mesh routes on."""
    port: int

    def __init__(self, name: str, args: AppServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:service:AppService", name, None, opts)
        self.port = args.port
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=naming.object_name(args.workload_name),
                namespace=args.namespace,
                labels={**naming.common_labels(args.stack), **naming.selector_labels(args.workload_name)},
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=naming.selector_labels(args.workload_name),
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        # The `http-` name and appProtocol tell Istio to treat this as HTTP.
                        name="http",
                        app_protocol="http",
                        port=args.port,
                        target_port="http",
                        protocol="TCP",
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.service_name = self.service.metadata.name
        self.fqdn = pulumi.Output.concat(
            self.service.metadata.name, ".", self.service.metadata.namespace, ".svc.cluster.local"
        )
        self.register_outputs({"service_name": self.service_name, "fqdn": self.fqdn})
