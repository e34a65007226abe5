"""The edge: NGINX Ingresses for the domain (and the blue-green preview host) with their
cert-manager certificate (`ingress.py`), the AWS WAF web ACL on the load balancer in front of
the controller (`waf.py`) and that load balancer's access log bucket, under one component.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from pulumi_aws import wafv2

from components.cluster.app_service import AppService
from components.config.edge import IngressSettings
from components.data.access_log_bucket import (
    LOAD_BALANCER_LOG_PREFIX,
    LoadBalancerAccessLogs,
    access_log_bucket,
    load_balancer_log_bucket_name,
)
from components.edge.ingress import controller_tls, ingresses
from components.edge.waf import OriginVerification, web_acl


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
    origin_verification: OriginVerification | None = None
    """With the CDN: the regional WAF lets only CloudFront reach the asset paths."""
    load_balancer_log_retention_days: int = 90
    """How long the load balancer's access logs are kept (edge.loadBalancerLogRetentionDays)."""
    protect: bool = False
    """`protect` (and retain) on the log bucket, as on the stack's other buckets."""


class Edge(pulumi.ComponentResource):
    """Needs the Kubernetes and the AWS provider (pass both through `providers=`)."""

    web_acl: wafv2.WebAcl
    load_balancer_logs: aws.s3.Bucket | None
    """Where the load balancer must write its access logs; none without its ARN."""

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
            origin=args.origin_verification,
        )

        self.load_balancer_logs = self._load_balancer_logs(name, args)

        self.url = f"https://{args.domain}"
        self.preview_url = f"https://{args.preview_host}" if args.preview_host else None
        self.register_outputs({"url": self.url, "preview_url": self.preview_url, "web_acl_arn": self.web_acl.arn})

    def _load_balancer_logs(self, name: str, args: EdgeArgs) -> aws.s3.Bucket | None:
        """The load balancer is a prerequisite (only its ARN is known); its access log bucket is
        ours, under `alb/`. `plexictl preflight` checks that the load balancer logs there."""
        if args.settings.waf.load_balancer_arn is None:
            return None
        elb_account = aws.elb.get_service_account_output(
            region=args.region, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        return access_log_bucket(
            f"{name}-load-balancer-access-logs",
            pulumi.Output.from_input(args.account_id).apply(
                lambda account: load_balancer_log_bucket_name(args.stack, account)
            ),
            account_id=args.account_id,
            writers=[LoadBalancerAccessLogs(LOAD_BALANCER_LOG_PREFIX, elb_account.arn)],
            retention_days=args.load_balancer_log_retention_days,
            protect=args.protect,
            opts=pulumi.ResourceOptions(parent=self),
        )
