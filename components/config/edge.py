"""The edge: NGINX ingress, TLS certificate and the AWS WAF in front of it."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    model_validator,
)

from components.config.base import (
    DnsLabel,
    FieldError,
    LogRetentionDays,
    Model,
    int_range,
)

ALB_ARN = re.compile(
    r"^arn:aws[a-z-]*:elasticloadbalancing:(?P<region>[a-z0-9-]+):\d{12}:loadbalancer/app/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$"
)


class WafSettings(Model):
    """The stack's AWS WAFv2 web ACL (regional) on the load balancer in front of NGINX."""

    mode: Literal["count", "block"]
    """`block` enforces the rules; `count` only counts and logs matches (tune before enforcing).
    Required: every stack states it. Block needs loadBalancerArn."""
    load_balancer_arn: Annotated[str, AfterValidator(lambda v: _alb_arn(v))] | None = None
    """ARN of the Application Load Balancer in front of the ingress controller (WAF attaches to
    ALBs only), in the stack's AWS region. Required when mode is block; without it the ACL exists
    but inspects nothing."""
    rate_limit_per_5_minutes: Annotated[int, int_range(100, 2_000_000_000, "a number of requests")] = 2000
    """Requests one client IP may send in any 5 minutes before the rate rule acts (at least
    100). Default 2000."""
    log_retention_days: LogRetentionDays = 90
    """Retention of the WAF log group (a CloudWatch retention value). Default 90."""

    @model_validator(mode="after")
    def _block_needs_a_target(self) -> WafSettings:
        if self.mode == "block" and self.load_balancer_arn is None:
            raise FieldError(
                "loadBalancerArn",
                "required when mode is block (an enforcing ACL attached to nothing protects "
                "nothing); set the ALB's ARN, or use mode count",
            )
        return self


def _alb_arn(value: str) -> str:
    if not ALB_ARN.match(value):
        raise ValueError(
            "must be an Application Load Balancer ARN such as arn:aws:elasticloadbalancing:"
            "us-east-1:123456789012:loadbalancer/app/plexichat/0123456789abcdef (WAF cannot "
            "attach to a Network Load Balancer)"
        )
    return value


class IngressSettings(Model):
    """The NGINX Ingress for the domain (and the blue-green preview host), and its edge."""

    controller: Literal["f5", "community"] = "f5"
    """Which NGINX controller serves the class: `f5` (F5 NGINX Ingress Controller, `nginx.org/*`
    annotations; maintained) or `community` (kubernetes/ingress-nginx, end of life since March
    2026; only for clusters that still run it). Default f5."""
    class_name: DnsLabel = "nginx"
    """IngressClass of that controller. Default nginx."""
    cluster_issuer: DnsLabel = "letsencrypt-prod"
    """cert-manager ClusterIssuer that signs the TLS certificate. Default letsencrypt-prod."""
    rate_limit_requests_per_second: Annotated[int, int_range(1, 100000, "a number of requests")] = 50
    """Sustained requests per second per client IP at NGINX; more get 429. Default 50."""
    rate_limit_burst_multiplier: Annotated[int, int_range(1, 100, "a multiplier")] = 5
    """Burst allowed above the rate, as a multiple of it (1..100). Default 5."""
    hsts_max_age_seconds: Annotated[int, int_range(86400, 63072000, "a number of seconds")] = 31536000
    """HSTS max-age (1 day .. 2 years). Default 31536000 (1 year)."""
    hsts_include_subdomains: bool = True
    """Whether HSTS covers subdomains of the domain (the preview host is one). Default true."""
    websocket_idle_timeout_seconds: Annotated[int, int_range(60, 86400, "a number of seconds")] = 3600
    """NGINX closes a WebSocket after this long without a frame (60..86400). Default 3600."""
    controller_config_map: DnsLabel | None = None
    """The controller's own ConfigMap in kubernetes.ingressNamespace, where the program sets
    `ssl-protocols: TLSv1.3` (a server-side-apply patch of that one key; TLS versions are
    controller-wide in both controllers). Default: `nginx-config` for f5 (its manifests' name),
    `ingress-nginx-controller` for community (its Helm chart's name)."""
    waf: WafSettings
    """The AWS WAF web ACL. Required: `mode` is stated per stack."""

    @property
    def config_map_name(self) -> str:
        default = "nginx-config" if self.controller == "f5" else "ingress-nginx-controller"
        return self.controller_config_map or default
