"""The edge: NGINX ingress, TLS certificate and the AWS WAF in front of it."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    model_validator,
)

from components.config.base import (
    DnsLabel,
    DomainName,
    FieldError,
    LogRetentionDays,
    Model,
    int_range,
)
from components.config.dr import HostedZoneId

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


# ---------------------------------------------------------------------------------------------
# CloudFront for the static assets (docs/edge.md)

RESERVED_PATH_ROOTS = ("api", "ws")
"""First path segments the distribution never serves: the API and the WebSocket endpoint (the
traffic.websocketPath's first segment is added per stack)."""
_ASSET_PATTERN = re.compile(r"^/(?P<root>[A-Za-z0-9._~-]+)/[A-Za-z0-9._~/*?-]*$")


def _asset_path_pattern(value: str) -> str:
    matched = _ASSET_PATTERN.match(value)
    if matched is None or len(value) > 255 or matched["root"] in (".", ".."):
        raise ValueError(
            "must be a CloudFront path pattern under one asset directory, such as /static/* or "
            "/assets/*.js: a literal first directory, then any of letters, digits, . _ ~ - / and "
            "the wildcards * and ?; a pattern such as *, /* or /static* would also match paths "
            "that are no assets"
        )
    if matched["root"].lower() in RESERVED_PATH_ROOTS:
        raise ValueError(f"must not be under /{matched['root']}/: the API and WebSockets never go through the CDN")
    return value


AssetPathPattern = Annotated[str, AfterValidator(_asset_path_pattern)]


def asset_root(pattern: str) -> str:
    """The literal first directory of a validated pattern: `/static/*` -> `static`."""
    return pattern.split("/")[1]


class CdnSettings(Model):
    """A CloudFront distribution for the app's static assets on a host of their own (docs/edge.md)."""

    enabled: bool = False
    """Whether the stack has the distribution. Default false (off); on in staging and prod.
    Needs ingress.waf.loadBalancerArn (the regional WAF enforces the origin protection) and a
    hosted zone; not in a DR standby (docs/dr.md "DNS")."""
    host: DomainName | None = None
    """The static-assets host the distribution serves. Default `static.<domain>`. Must differ
    from the domain and the preview host."""
    hosted_zone_id: HostedZoneId | None = None
    """The Route 53 zone of the host: its alias records and its certificate's DNS validation.
    Default dr.hostedZoneId; required when enabled without it."""
    path_patterns: Annotated[list[AssetPathPattern], Field(min_length=1, max_length=20)] = ["/static/*", "/assets/*"]
    """The paths the distribution caches and serves (CloudFront path patterns), each under a
    literal asset directory that is neither /api/ nor /ws/ nor traffic.websocketPath's; any
    other path gets 404 from the edge. 1 to 20 patterns. Default [/static/*, /assets/*]."""
    default_ttl_seconds: Annotated[int, int_range(0, 31536000, "a number of seconds")] = 86400
    """How long an asset is cached when the app sends no Cache-Control (0 .. 1 year). Default
    86400 (a day)."""
    max_ttl_seconds: Annotated[int, int_range(0, 31536000, "a number of seconds")] = 31536000
    """The longest the app's Cache-Control may keep an asset cached (0 .. 1 year). Default
    31536000 (a year), for fingerprinted assets."""
    price_class: Literal["PriceClass_100", "PriceClass_200", "PriceClass_All"] = "PriceClass_All"
    """Which edge locations serve the assets: PriceClass_All (every one, for global users),
    PriceClass_200 or PriceClass_100 (cheaper, fewer regions). Default PriceClass_All."""
    rate_limit_per_5_minutes: Annotated[int, int_range(100, 2_000_000_000, "a number of requests")] = 10000
    """Asset requests one viewer IP may send in any 5 minutes before the CloudFront WAF's rate
    rule acts (at least 100; a page loads many assets). Default 10000."""
    log_retention_days: Annotated[int, int_range(1, 3653, "a number of days")] = 90
    """How long the access logs (S3) and the WAF logs are kept (1 .. 3653). Default 90."""

    @model_validator(mode="after")
    def _ttls_ordered(self) -> CdnSettings:
        if self.default_ttl_seconds > self.max_ttl_seconds:
            raise FieldError("defaultTtlSeconds", "must not exceed maxTtlSeconds")
        return self


class EdgeSettings(Model):
    """What serves users before the load balancer: the CDN for static assets."""

    cdn: CdnSettings = CdnSettings()
    """CloudFront for the static assets. Default off."""
    load_balancer_log_retention_days: Annotated[int, int_range(1, 3653, "a number of days")] = 90
    """How long the load balancer's access logs are kept in their bucket (made when
    ingress.waf.loadBalancerArn is set; the load balancer must log there: `plexictl preflight`).
    1 .. 3653. Default 90."""


def path_pattern_matches(pattern: str, path: str) -> bool:
    """CloudFront's matching of a path pattern: `*` any characters (slashes too), `?` exactly
    one, everything else literal and case-sensitive, against the whole path."""
    return re.fullmatch(path_pattern_regex(pattern), path) is not None


def path_pattern_regex(pattern: str) -> str:
    """The pattern as a regular expression (also what the regional WAF matches asset paths with)."""
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


def static_host(cdn: CdnSettings, domain: str) -> str:
    """The host the distribution serves: edge.cdn.host, or `static.<domain>`."""
    return cdn.host or f"static.{domain}"


def static_zone(cdn: CdnSettings, dr_hosted_zone_id: str | None) -> str | None:
    """The Route 53 zone of the static host: edge.cdn.hostedZoneId, else dr.hostedZoneId."""
    return cdn.hosted_zone_id or dr_hosted_zone_id


def cdn_problems(
    cdn: CdnSettings,
    *,
    domain: str,
    load_balancer_arn: str | None,
    dr_hosted_zone_id: str | None,
    dr_replicates_from_primary: bool,
    websocket_path: str,
) -> list[FieldError]:
    """What the CDN needs from the rest of the stack (each problem names its key under `edge.cdn`)."""
    if not cdn.enabled:
        return []
    problems = []
    if load_balancer_arn is None:
        problems.append(
            FieldError(
                "edge.cdn.enabled",
                "needs ingress.waf.loadBalancerArn: the regional WAF on that load balancer is what lets only "
                "CloudFront reach the asset paths (docs/edge.md 'Origin protection'); set the ARN, or turn the CDN off",
            )
        )
    if static_zone(cdn, dr_hosted_zone_id) is None:
        problems.append(
            FieldError(
                "edge.cdn.hostedZoneId",
                "required when the CDN is enabled (and dr.hostedZoneId is not set): the Route 53 zone of "
                "the static host, for its alias records and its certificate's validation",
            )
        )
    if dr_replicates_from_primary:
        problems.append(
            FieldError(
                "edge.cdn.enabled",
                "must be false in a DR standby (or a promoted one): a host belongs to one CloudFront "
                "distribution, the primary's, whose origin is the app host and follows its DNS failover "
                "(docs/dr.md 'DNS')",
            )
        )
    host = static_host(cdn, domain)
    if host in (domain, f"preview.{domain}"):
        problems.append(
            FieldError(
                "edge.cdn.host",
                f"must be a host of its own, not the app's ({domain}) or the preview host, got {host!r}: "
                "the app host stays on the load balancer",
            )
        )
    websocket_root = websocket_path.strip("/").split("/")[0]
    for index, pattern in enumerate(cdn.path_patterns):
        if websocket_root and asset_root(pattern) == websocket_root:
            problems.append(
                FieldError(
                    f"edge.cdn.pathPatterns.{index}",
                    f"must not be under traffic.websocketPath ({websocket_path}), got {pattern!r}",
                )
            )
    return problems
