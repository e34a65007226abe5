"""The load balancer's checks: its listeners' TLS policies, and where its access logs go."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plexictl.preflight.results import Outcome, Result

if TYPE_CHECKING:  # the stubs are a development dependency (requirements-dev.txt)
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

TLS13_LISTENER_POLICY = "ELBSecurityPolicy-TLS13-"
"""Prefix of the load balancer security policies that offer TLS 1.3 (front end and, then, targets)."""
TLS13_ONLY_LISTENER_POLICY = "ELBSecurityPolicy-TLS13-1-3-"
"""Policies that refuse TLS 1.2 clients, Route 53's health checkers among them."""
NO_LOAD_BALANCER = "no load balancer (plexichat:ingress.waf.loadBalancerArn)"


ROUTE53_HEALTH_CHECKERS = "Route 53's health checkers (TLS 1.2 at most)"
"""Who reaches the load balancer with TLS 1.2 where the stack has DNS failover (dr.hostedZoneId)."""
CLOUDFRONT_ORIGIN_FETCHES = "CloudFront's origin requests (edge.cdn; TLS 1.2 at most towards an origin)"
"""... and where the stack has the CDN, whose origin is the app host (docs/edge.md)."""


def load_balancer_tls(
    elbv2: ElasticLoadBalancingv2Client, arn: str | None, tls12_clients: tuple[str, ...] = ()
) -> Result:
    """`tls12_clients`: who must still reach the load balancer with TLS 1.2 (Route 53's HTTPS
    checkers, CloudFront towards its origins), so a TLS 1.3-only policy would shut them out."""
    if arn is None:
        return Result(Outcome.SKIPPED, NO_LOAD_BALANCER)
    listeners = elbv2.describe_listeners(LoadBalancerArn=arn)["Listeners"]
    policies = {
        f"{ln['Protocol']}:{ln['Port']}": ln.get("SslPolicy", "") for ln in listeners if ln["Protocol"] == "HTTPS"
    }
    if not policies:
        return Result(Outcome.FAIL, "the load balancer has no HTTPS listener")
    weak = [
        f"{port} uses {policy}"
        for port, policy in sorted(policies.items())
        if not policy.startswith(TLS13_LISTENER_POLICY)
    ]
    if tls12_clients:
        weak += [
            f"{port} uses {policy}, which {' and '.join(tls12_clients)} cannot reach"
            for port, policy in sorted(policies.items())
            if policy.startswith(TLS13_ONLY_LISTENER_POLICY)
        ]
    if weak:
        return Result(
            Outcome.FAIL, f"{', '.join(weak)}: use an {TLS13_LISTENER_POLICY}* policy (NGINX accepts TLS 1.3 only)"
        )
    return Result(Outcome.PASS, ", ".join(f"{port} {policy}" for port, policy in sorted(policies.items())))


def load_balancer_access_logs(elbv2: ElasticLoadBalancingv2Client, arn: str | None, bucket: str, prefix: str) -> Result:
    """The load balancer writes its access logs into the stack's log bucket, under `prefix`
    (the bucket is the program's; the load balancer, a prerequisite, must be set to use it)."""
    if arn is None:
        return Result(Outcome.SKIPPED, NO_LOAD_BALANCER)
    found = {
        a["Key"]: a.get("Value", "")
        for a in elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
        if a.get("Key", "").startswith("access_logs.s3.")
    }
    where = f"s3://{bucket}/{prefix}/"
    if found.get("access_logs.s3.enabled") != "true":
        return Result(Outcome.FAIL, f"access logs are off (access_logs.s3.enabled); turn them on into {where}")
    logged = f"s3://{found.get('access_logs.s3.bucket', '')}/{found.get('access_logs.s3.prefix', '')}/"
    if logged != where:
        return Result(Outcome.FAIL, f"access logs go to {logged}, not the stack's log bucket {where}")
    return Result(Outcome.PASS, f"access logs into {where}")
