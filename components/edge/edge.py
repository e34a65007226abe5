"""The edge: NGINX Ingresses for the domain (and the blue-green preview host) with their
cert-manager certificate (`ingress.py`), and the AWS WAF web ACL on the load balancer in front of
the controller (`waf.py`), under one component.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_aws import wafv2

from components.cluster.app_service import AppService
from components.config.edge import IngressSettings
from components.edge.ingress import controller_tls, ingresses
from components.edge.waf import web_acl


def preview_host(domain: str) -> str:
    """`preview.<domain>`: where the inactive blue-green colour is smoke-tested before a flip."""
    return f"preview.{domain}"


@dataclass(frozen=True)
class EdgeArgs:
    stack: str
    namespace: pulumi.Input[str]
    domain: str
    preview_host: str | None
    """Only for blue-green; None otherwise (no preview Ingress)."""
    service: AppService
    settings: IngressSettings
    controller_namespace: str
    """Where the NGINX controller and its ConfigMap live (kubernetes.ingressNamespace)."""
    account_id: pulumi.Input[str]
    region: str
    """Where the WAF logs' key lets CloudWatch Logs use it."""
    health_host: str | None = None
    """With DNS failover: the host Route 53 checks (naming.dns_health_host); None otherwise."""
    readiness_path: str = "/readyz"
    """The one path the health host serves."""


class Edge(pulumi.ComponentResource):
    """Needs the Kubernetes and the AWS provider (pass both through `providers=`)."""

    web_acl: wafv2.WebAcl

    def __init__(self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:ingress:Edge", name, None, opts)
        # Ingress and WAF resources are direct children of this component, named from `name`
        # as they always were: an intermediate component would change every URN.
        self.ingress, self.preview_ingress, self.health_ingress = ingresses(
            name,
            self,
            stack=args.stack,
            namespace=args.namespace,
            domain=args.domain,
            preview_host=args.preview_host,
            service=args.service,
            settings=args.settings,
            health_host=args.health_host,
            health_path=args.readiness_path,
        )
        controller_tls(name, self, stack=args.stack, namespace=args.controller_namespace, settings=args.settings)
        self.web_acl = web_acl(
            name,
            self,
            stack=args.stack,
            settings=args.settings.waf,
            account_id=args.account_id,
            region=args.region,
        )

        self.url = f"https://{args.domain}"
        self.preview_url = f"https://{args.preview_host}" if args.preview_host else None
        self.register_outputs({"url": self.url, "preview_url": self.preview_url, "web_acl_arn": self.web_acl.arn})
